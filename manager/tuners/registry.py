"""Tuners by name: the built-in registry, custom tuners from a user's folder, and their checks.

A built-in is one line in :data:`BUILTIN_TUNERS` (``"PPO": "manager.tuners.ppo:PPOTuner"``); its
module is imported only when an experiment asks for it, so the daemon starts without torch.
``classArgs`` are the constructor's keyword arguments and are checked against its signature.
A custom tuner is a class in the user's ``codeDirectory``: a :class:`~manager.tuners.base.Tuner`
subclass, or a class written against NNI's signatures (adapted by ``NniStyleTuner``).
Either way :func:`create_tuner` returns a ``CheckedTuner``, whose architectures are always
in the full ``{_value, _idx}`` form. The finding and checking is :mod:`manager.plugins`, shared
with the assessors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from manager import plugins
from manager.tuners.base import CheckedTuner, NniStyleTuner, Tuner, TunerError, is_nni_style

if TYPE_CHECKING:
    from manager.config.schema import TunerConfig
    from trials.objectives import Objectives

#: Built-in tuner name (NNI's spelling, plus aliases) -> ``"module:Class"``.
BUILTIN_TUNERS: dict[str, str] = {
    "Random": "manager.tuners.random:RandomTuner",
    "RandomTuner": "manager.tuners.random:RandomTuner",
    "RandomNAS": "manager.tuners.random:RandomTuner",
    "PPO": "manager.tuners.ppo:PPOTuner",
    "PPOTuner": "manager.tuners.ppo:PPOTuner",
    "RegularizedEvolution": "manager.tuners.evolution:RegularizedEvolutionTuner",
    "RegularizedEvolutionTuner": "manager.tuners.evolution:RegularizedEvolutionTuner",
    "Evolution": "manager.tuners.evolution:RegularizedEvolutionTuner",
    "GridSearch": "manager.tuners.gridsearch:GridSearchTuner",
    "Optuna": "manager.tuners.optuna_tuner:OptunaTuner",
    "OptunaTuner": "manager.tuners.optuna_tuner:OptunaTuner",
    "TPE": "manager.tuners.optuna_tuner:TPETuner",
    "Predictor": "manager.tuners.predictor:PredictorTuner",
    "PredictorTuner": "manager.tuners.predictor:PredictorTuner",
}

#: NNI's hyper-parameter tuners that nasctl does not build in -> the Optuna sampler that stands in.
NNI_HPO_TUNERS: dict[str, str] = {
    "Anneal": "TPE",
    "SMAC": "TPE",
    "MetisTuner": "GP",
    "GPTuner": "GP",
    "DNGOTuner": "GP",
    "BatchTuner": "TPE",
    "Hyperband": "TPE",
    "BOHB": "TPE",
    "PBTTuner": "NSGAII",
    "NetworkMorphism": "TPE",
}

TUNERS = plugins.PluginKind(
    key="tuner",
    builtins=BUILTIN_TUNERS,
    base=Tuner,
    is_nni_style=is_nni_style,
    nni_methods="update_search_space, generate_parameters and receive_trial_result",
    error=TunerError,
)

__all__ = ["BUILTIN_TUNERS", "builtin_names", "check_tuner_config", "create_tuner", "load_tuner_class"]


def builtin_names() -> tuple[str, ...]:
    """Every built-in tuner name a config may give, aliases included; no tuner module is imported."""
    return tuple(BUILTIN_TUNERS)


def create_tuner(config: TunerConfig, objectives: Objectives | None = None) -> Tuner:
    """Build the tuner ``config`` names with its ``class_args``; :class:`TunerError` says what is wrong.

    A custom tuner's module is imported here (its folder is on ``sys.path`` while it loads, so it may
    import its neighbours), never in :func:`check_tuner_config`. With ``objectives`` the tuner must
    be a multi-objective one, and hears them (``update_objectives``) before anything else.
    """
    refuse_nni_hpo_tuner(config)
    if objectives is not None:
        check_multi_objective(load_tuner_class(config), config)
    instance = plugins.construct(TUNERS, config)
    inner = instance if isinstance(instance, Tuner) else NniStyleTuner(instance)
    tuner = CheckedTuner(inner, plugins.label(config))
    if objectives is not None:
        tuner.update_objectives(objectives)
    return tuner


def check_multi_objective(cls: Any, config: TunerConfig) -> None:
    """Refuse a tuner class that searches one objective only (the config has several)."""
    if not getattr(cls, "multi_objective", False):
        raise TunerError(
            f"{plugins.label(config)} searches one objective; remove objectives or use Random or Evolution"
        )


def check_tuner_config(config: TunerConfig, objectives: Objectives | None = None) -> None:
    """Check ``config`` at create time without running a user's code.

    A built-in is checked fully (name, argument names, argument values when it validates them).
    A custom tuner is checked as far as its files go: the folder, the class file or the module
    path; whether the class exists is known only when :func:`create_tuner` imports it.
    """
    refuse_nni_hpo_tuner(config)
    if objectives is not None and config.name is not None:  # first: PPO's missing optimize_mode is moot
        check_multi_objective(load_tuner_class(config), config)
    plugins.check_config(TUNERS, config)


def refuse_nni_hpo_tuner(config: TunerConfig) -> None:
    """One line for an NNI hyper-parameter tuner's name: which Optuna sampler stands in for it."""
    sampler = NNI_HPO_TUNERS.get(config.name or "")
    if sampler is not None:
        raise TunerError(
            f"tuner.name: NNI's {config.name} is not built in; Optuna's samplers stand in for NNI's "
            f"hyper-parameter tuners: name: Optuna with classArgs.sampler: {sampler} "
            "(samplers: TPE, GP, NSGAII, QMC, CmaEs, Random)"
        )


def load_tuner_class(config: TunerConfig) -> type:
    """The tuner class: a built-in's, or a custom one imported from its folder."""
    refuse_nni_hpo_tuner(config)
    return plugins.load_class(TUNERS, config)
