"""The Assessor contract (NNI's, so a user's NNI assessor ports in minutes).

An assessor watches the intermediate results of running trials and says, after each one, whether
the trial is worth finishing. The daemon stops a trial judged ``Bad`` with its whole process
tree and records it as ``EARLY_STOPPED`` with the assessor's reason.
"""

from __future__ import annotations

import abc
import enum
from typing import Any


class AssessResult(enum.Enum):
    """NNI's verdicts, with NNI's member names."""

    Good = True
    Bad = False


class AssessorError(ValueError):
    """Bad ``classArgs``, or an assessor that broke its contract; names the field."""


class Assessor(abc.ABC):
    """Judges running trials from their intermediate results.

    Contract:
    - The daemon calls an assessor from one thread only; an assessor needs no locks.
    - ``assess_trial(trial_id, trial_history)`` comes after every intermediate result a trial
      reports, with every value that trial has reported so far, oldest first (floats; the
      ``default`` of a dict metric). It returns :attr:`AssessResult.Good` to let the trial go on
      or :attr:`AssessResult.Bad` to stop it. It is never called again for a trial judged Bad.
    - ``trial_end(trial_id, success)`` comes once when a trial ends for any reason (``success``
      is True only for a trial that succeeded; an early-stopped trial ends with False). An
      assessor learns from finished trials here (their last history is the one last assessed).
    - ``reason(trial_id)`` says in a few words why the last verdict for the trial was Bad
      (e.g. ``"Medianstop: best 0.41 < median 0.63 of 5 completed trials at step 4"``); the
      daemon stores it as the trial's reason. Default: the assessor's class name.
    - ``save_checkpoint`` / ``load_checkpoint`` carry JSON-able state across a daemon restart;
      the daemon saves one after every ``trial_end`` and every Bad verdict.
    - Class arguments (``classArgs``) are the constructor's keyword arguments; an assessor may
      check their values early in :meth:`validate_class_args` so that ``create`` refuses bad ones.
    """

    @classmethod  # noqa: B027 - optional hook
    def validate_class_args(cls, **class_args: Any) -> None:
        """Optional: raise :class:`AssessorError` naming a bad class argument, without side effects."""

    @abc.abstractmethod
    def assess_trial(self, trial_id: str, trial_history: list[float]) -> AssessResult:
        """Whether the trial that reported ``trial_history`` so far should go on."""

    def trial_end(self, trial_id: str, success: bool) -> None:  # noqa: B027 - optional hook
        """Optional: a trial ended (False for failures, cancellations and early stops)."""

    def reason(self, trial_id: str) -> str:
        """Why the last verdict for ``trial_id`` was Bad, in a few words."""
        return type(self).__name__

    def save_checkpoint(self) -> dict[str, Any] | None:
        """Optional: JSON-able state to resume from; None when the assessor keeps none."""
        return None

    def load_checkpoint(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Optional: restore what :meth:`save_checkpoint` returned."""
