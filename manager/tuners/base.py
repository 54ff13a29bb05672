"""The Tuner contract (NNI's, so a user's NNI tuner ports in minutes) and the wrappers the registry adds.

:class:`Tuner` is what every built-in subclasses. A user's tuner may instead be written against
NNI's signatures and not subclass anything; :class:`NniStyleTuner` adapts it. Whatever the tuner,
the registry hands the daemon a :class:`CheckedTuner`, which checks each proposed architecture
against the search space and returns it in the full ``{_value, _idx}`` form, so a tuner's bug
becomes one clear :class:`TunerError` instead of a broken trial.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import Any

from manager.plugins import optional_method, restore_user_checkpoint, user_checkpoint
from trials.metrics import OPTIMIZE_MODES
from trials.objectives import Objectives
from trials.searchspace import SearchSpace, architecture_to_json

Parameters = dict[str, Any]
#: What ``receive_trial_result`` gets: a float, or with objectives the trial's whole metric dict.
Result = float | dict[str, Any]


def check_optimize_mode(mode: Any) -> None:
    """The ``optimize_mode`` class argument every built-in tuner takes, checked the same way."""
    if mode not in OPTIMIZE_MODES:
        raise TunerError(f"tuner.classArgs.optimize_mode: must be maximize or minimize, got {mode!r}")


def signed_score(value: Any, mode: str) -> float | None:
    """A result as the number a built-in maximizes (negated for ``minimize``); None when it is not a
    finite number (a failed or NaN result teaches nothing)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return number if mode == "maximize" else -number


class NoMoreTrials(Exception):
    """The search space is exhausted: this tuner will propose nothing more."""


class TunerBusy(Exception):
    """The tuner must see results first; the daemon asks again after the next result arrives."""


class TunerError(ValueError):
    """Bad ``classArgs``, an unusable search space, or a tuner that broke its contract; names the field."""


class Tuner(abc.ABC):
    """Proposes architectures and learns from their results.

    Contract:
    - The daemon calls a tuner from one thread only; a tuner needs no locks.
    - ``update_search_space`` comes first and may come again; a tuner must accept a new space at
      any time and may refuse it with ``SearchSpaceError`` (or :class:`TunerError`) naming the key
      it cannot handle.
    - ``generate_parameters`` returns an architecture for the space (the full ``{_value, _idx}``
      form, hyper-parameters as plain values); it raises :class:`NoMoreTrials` when the space is
      exhausted and :class:`TunerBusy` when it must wait for results first.
    - ``receive_trial_result`` gets the final metric (the ``default`` of a dict metric) as a float.
      Results arrive in any order and possibly after ``trial_end``.
    - Several objectives (the config's ``objectives``): only a tuner whose class sets
      :attr:`multi_objective` is accepted (the registry refuses the others). The daemon calls
      :meth:`update_objectives` once, right after construction and before
      ``update_search_space``; from then on ``receive_trial_result`` and ``import_data`` (and the
      resume replay) give the trial's whole final metric dict, which holds every metric of
      ``objectives.metrics`` (a trial lacking one is FAILED and its result never reaches the
      tuner). Without objectives nothing changes: no call, and floats.
    - ``save_checkpoint`` / ``load_checkpoint`` carry JSON-able state across a daemon restart.
      The daemon saves one with every new trial and, unless :attr:`learns_from_results` is
      False, after every result (results the checkpoint missed are replayed on resume).
    - Class arguments (``classArgs``) are the constructor's keyword arguments; a tuner may check
      their values early in :meth:`validate_class_args` so that ``create`` refuses bad ones.
    """

    #: False for a tuner whose state no result changes (random search, a grid): the daemon then
    #: skips the checkpoint after each result, a database write per trial.
    learns_from_results: bool = True
    #: True for a tuner that searches several objectives (takes metric dicts as results).
    multi_objective: bool = False
    #: The experiment's objectives once :meth:`update_objectives` gave them; None: one objective.
    objectives: Objectives | None = None

    @classmethod  # noqa: B027 - optional hook
    def validate_class_args(cls, **class_args: Any) -> None:
        """Optional: raise :class:`TunerError` naming a bad class argument, without side effects."""

    @abc.abstractmethod
    def update_search_space(self, space: SearchSpace) -> None:
        """Take a (new) search space; refuse it with ``SearchSpaceError`` naming the key if unusable."""

    @abc.abstractmethod
    def generate_parameters(self, parameter_id: int) -> Parameters:
        """One architecture for trial ``parameter_id``, in the full JSON form."""

    @abc.abstractmethod
    def receive_trial_result(self, parameter_id: int, parameters: Parameters, value: Result) -> None:
        """The final metric of the trial that ran ``parameters``."""

    def trial_end(self, parameter_id: int, success: bool) -> None:  # noqa: B027 - optional hook
        """Optional: a trial ended; ``success`` is False for failures and cancellations."""

    def update_objectives(self, objectives: Objectives) -> None:
        """The experiment's objectives (only for a :attr:`multi_objective` tuner); kept here."""
        self.objectives = objectives

    def import_data(self, records: list[dict[str, Any]]) -> None:  # noqa: B027 - optional hook
        """Optional: earlier results, ``{"parameter": {...}, "value": float}`` each (resume, import)."""

    def save_checkpoint(self) -> dict[str, Any] | None:
        """Optional: JSON-able state to resume from; None when the tuner keeps none."""
        return None

    def load_checkpoint(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Optional: restore what :meth:`save_checkpoint` returned."""


NNI_METHODS = ("update_search_space", "generate_parameters", "receive_trial_result")


def is_nni_style(cls: type) -> bool:
    """True for a class that is not a :class:`Tuner` but has NNI's three required tuner methods."""
    return all(callable(getattr(cls, name, None)) for name in NNI_METHODS)


class NniStyleTuner(Tuner):
    """Adapts a tuner written against NNI's ``nni.tuner.Tuner`` signatures without subclassing ours.

    The user's object gets the search space as the plain JSON dict (``update_search_space(dict)``),
    is asked ``generate_parameters(parameter_id)`` and told ``receive_trial_result(parameter_id,
    parameters, value)``, exactly as NNI does; its ``**kwargs`` stay empty. An exception whose class
    is named ``NoMoreTrialError`` (NNI's) counts as :class:`NoMoreTrials`. ``trial_end``,
    ``import_data`` and checkpoints are forwarded when the object has them with a matching arity.
    Its answers may be in NNI's full form or the short form; :class:`CheckedTuner` normalizes them.
    """

    def __init__(self, user_tuner: Any) -> None:
        self.user_tuner = user_tuner
        self.multi_objective = bool(getattr(user_tuner, "multi_objective", False))

    def update_objectives(self, objectives: Objectives) -> None:
        self.objectives = objectives
        method = self._method("update_objectives", 1)
        if method is not None:
            method(objectives)

    def update_search_space(self, space: SearchSpace) -> None:
        self.user_tuner.update_search_space(space.to_json())

    def generate_parameters(self, parameter_id: int) -> Parameters:
        try:
            return self.user_tuner.generate_parameters(parameter_id)
        except Exception as exc:
            if type(exc).__name__ == "NoMoreTrialError":
                raise NoMoreTrials(str(exc)) from exc
            raise

    def receive_trial_result(self, parameter_id: int, parameters: Parameters, value: Result) -> None:
        self.user_tuner.receive_trial_result(parameter_id, parameters, value)

    def trial_end(self, parameter_id: int, success: bool) -> None:
        method = self._method("trial_end", 2)
        if method is not None:
            method(parameter_id, success)

    def import_data(self, records: list[dict[str, Any]]) -> None:
        method = self._method("import_data", 1)
        if method is not None:
            method(records)

    def save_checkpoint(self) -> dict[str, Any] | None:
        return user_checkpoint(self.user_tuner)

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        restore_user_checkpoint(self.user_tuner, state)

    def _method(self, name: str, arity: int) -> Callable[..., Any] | None:
        return optional_method(self.user_tuner, name, arity)


class CheckedTuner(Tuner):
    """What the registry returns: forwards to ``inner`` and checks what it proposes.

    Every architecture goes through ``SearchSpace.parse_architecture`` and comes back in the
    full form, so the daemon stores and sends one format whatever the tuner wrote.
    """

    def __init__(self, inner: Tuner, label: str) -> None:
        self.inner = inner
        self.label = label
        self.space: SearchSpace | None = None
        self.learns_from_results = getattr(inner, "learns_from_results", True)
        self.multi_objective = getattr(inner, "multi_objective", False)

    def update_objectives(self, objectives: Objectives) -> None:
        self.inner.update_objectives(objectives)
        self.objectives = objectives

    def update_search_space(self, space: SearchSpace) -> None:
        self.inner.update_search_space(space)
        self.space = space

    def generate_parameters(self, parameter_id: int) -> Parameters:
        if self.space is None:
            raise TunerError(f"tuner {self.label}: update_search_space must come before generate_parameters")
        proposed = self.inner.generate_parameters(parameter_id)
        try:
            decisions = self.space.parse_architecture(proposed, source=f"tuner {self.label}: parameters")
        except (ValueError, TypeError) as exc:
            raise TunerError(f"{exc} (parameter {parameter_id})") from None
        return architecture_to_json(decisions)

    def receive_trial_result(self, parameter_id: int, parameters: Parameters, value: Result) -> None:
        self.inner.receive_trial_result(parameter_id, parameters, value)

    def trial_end(self, parameter_id: int, success: bool) -> None:
        self.inner.trial_end(parameter_id, success)

    def import_data(self, records: list[dict[str, Any]]) -> None:
        self.inner.import_data(records)

    def save_checkpoint(self) -> dict[str, Any] | None:
        return self.inner.save_checkpoint()

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        self.inner.load_checkpoint(state)
