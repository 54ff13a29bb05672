"""Assessors by name: the built-in registry, custom assessors from a user's folder, and their checks.

A built-in is one line in :data:`BUILTIN_ASSESSORS` (NNI's spellings ``Medianstop`` and
``Curvefitting``, plus ``ASHA``); its module is imported only when an experiment asks for it, so
the daemon starts without numpy or scipy. ``classArgs`` are the constructor's keyword arguments,
checked against its signature with a did-you-mean, then by the class's ``validate_class_args``.
A custom assessor is a class in the user's ``codeDirectory``: an
:class:`~manager.assessors.base.Assessor` subclass, or a class with NNI's ``assess_trial`` and
``trial_end`` that subclasses nothing (adapted by ``NniStyleAssessor``). Finding and checking
is :mod:`manager.plugins`, shared with the tuners.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from manager import plugins
from manager.assessors.adapter import CheckedAssessor, NniStyleAssessor, is_nni_style
from manager.assessors.base import Assessor, AssessorError

if TYPE_CHECKING:
    from manager.config.schema import TunerConfig

#: Built-in assessor name (NNI's spelling, plus aliases) -> ``"module:Class"``.
BUILTIN_ASSESSORS: dict[str, str] = {
    "Medianstop": "manager.assessors.medianstop:MedianstopAssessor",
    "Curvefitting": "manager.assessors.curvefitting:CurvefittingAssessor",
    "ASHA": "manager.assessors.asha:ASHAAssessor",
    "SuccessiveHalving": "manager.assessors.asha:ASHAAssessor",
}

ASSESSORS = plugins.PluginKind(
    key="assessor",
    builtins=BUILTIN_ASSESSORS,
    base=Assessor,
    is_nni_style=is_nni_style,
    nni_methods="assess_trial and trial_end",
    error=AssessorError,
)

__all__ = ["BUILTIN_ASSESSORS", "builtin_assessor_names", "check_assessor_config", "create_assessor"]


def builtin_assessor_names() -> tuple[str, ...]:
    """Every built-in assessor name a config may give, aliases included; no assessor module is imported."""
    return tuple(BUILTIN_ASSESSORS)


def create_assessor(config: TunerConfig) -> Assessor:
    """Build the assessor ``config`` names with its ``class_args``; :class:`AssessorError` says what is wrong.

    The result is a ``CheckedAssessor``: every verdict it gives is an :class:`AssessResult`.
    A custom assessor's module is imported here, never in :func:`check_assessor_config`.
    """
    instance = plugins.construct(ASSESSORS, config)
    label = plugins.label(config)
    inner = instance if isinstance(instance, Assessor) else NniStyleAssessor(instance, label)
    return CheckedAssessor(inner, label)


def check_assessor_config(config: TunerConfig) -> None:
    """Check ``config`` without running a user's code: a built-in fully, a custom one as far as its files go."""
    plugins.check_config(ASSESSORS, config)


def load_assessor_class(config: TunerConfig) -> type:
    """The assessor class: a built-in's, or a custom one imported from its folder."""
    return plugins.load_class(ASSESSORS, config)
