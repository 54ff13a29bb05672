"""What the registry wraps around an assessor: NNI-style classes adapted, every verdict checked.

A user's assessor may be written against NNI's ``nni.assessor.Assessor`` signatures without
subclassing ours; :class:`NniStyleAssessor` adapts it. NNI's verdict is its own ``AssessResult``
enum, which the user's code imports from ``nni``; any object named ``Good`` or ``Bad`` (an enum
member) or a bool is understood. :class:`CheckedAssessor`, what the daemon holds, turns every
verdict into our :class:`AssessResult` and anything else into one :class:`AssessorError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from manager.assessors.base import Assessor, AssessorError, AssessResult
from manager.plugins import optional_method, restore_user_checkpoint, user_checkpoint

NNI_METHODS = ("assess_trial", "trial_end")


def is_nni_style(cls: type) -> bool:
    """True for a class that is not an :class:`Assessor` but has NNI's two assessor methods."""
    return all(callable(getattr(cls, name, None)) for name in NNI_METHODS)


def to_verdict(answer: Any, label: str) -> AssessResult:
    """``answer`` as our AssessResult: ours, a bool, or anything whose ``name`` is Good or Bad."""
    if isinstance(answer, AssessResult):
        return answer
    if isinstance(answer, bool):
        return AssessResult.Good if answer else AssessResult.Bad
    name = getattr(answer, "name", None)
    if name in ("Good", "Bad"):
        return AssessResult[name]
    raise AssessorError(
        f"assessor {label}: assess_trial returned {answer!r}; expected AssessResult.Good or .Bad"
    )


class NniStyleAssessor(Assessor):
    """Forwards to a user's NNI-style assessor, exactly as NNI calls it.

    ``assess_trial(trial_job_id, trial_history)`` and ``trial_end(trial_job_id, success)``;
    ``save_checkpoint()`` / ``load_checkpoint(state)`` and ``reason(trial_id)`` when the object
    has them with a matching arity (NNI's own checkpoint methods take no argument and are skipped).
    """

    def __init__(self, user_assessor: Any, label: str) -> None:
        self.user_assessor = user_assessor
        self.label = label

    def assess_trial(self, trial_id: str, trial_history: list[float]) -> AssessResult:
        answer = self.user_assessor.assess_trial(trial_id, trial_history)
        return to_verdict(answer, self.label)

    def trial_end(self, trial_id: str, success: bool) -> None:
        self.user_assessor.trial_end(trial_id, success)

    def reason(self, trial_id: str) -> str:
        method = self._method("reason", 1)
        return str(method(trial_id)) if method is not None else type(self.user_assessor).__name__

    def save_checkpoint(self) -> dict[str, Any] | None:
        return user_checkpoint(self.user_assessor)

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        restore_user_checkpoint(self.user_assessor, state)

    def _method(self, name: str, arity: int) -> Callable[..., Any] | None:
        return optional_method(self.user_assessor, name, arity)


class CheckedAssessor(Assessor):
    """What the registry returns: forwards to ``inner`` and makes each verdict an AssessResult."""

    def __init__(self, inner: Assessor, label: str) -> None:
        self.inner = inner
        self.label = label

    def assess_trial(self, trial_id: str, trial_history: list[float]) -> AssessResult:
        return to_verdict(self.inner.assess_trial(trial_id, list(trial_history)), self.label)

    def trial_end(self, trial_id: str, success: bool) -> None:
        self.inner.trial_end(trial_id, success)

    def reason(self, trial_id: str) -> str:
        return self.inner.reason(trial_id)

    def save_checkpoint(self) -> dict[str, Any] | None:
        return self.inner.save_checkpoint()

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        self.inner.load_checkpoint(state)
