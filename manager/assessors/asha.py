"""ASHA: asynchronous successive halving (Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning").

Rungs are at ``grace_period * reduction_factor**k`` results (k = 0, 1, ...; only those below
``max_t`` when it is given). When a trial reaches a rung, the value it reported there (its latest)
is recorded for that rung, and the trial goes on only if it ranks in the top
``1 / reduction_factor`` of every value recorded at the rung so far, itself included: with ``n``
values recorded, it goes on while ``reduction_factor * rank <= n``, where its rank is one plus the
number of values strictly better than its own (so ties keep it). With fewer than
``reduction_factor`` values at the rung it goes on. Nothing waits for stragglers: a trial is judged
against whoever reached the rung before it, and the values stay recorded after trials end.
"""

from __future__ import annotations

from typing import Any

from manager.assessors.base import Assessor, AssessorError, AssessResult
from manager.assessors.common import (
    better,
    check_int,
    check_optimize_mode,
    clean,
    envelope,
    fmt,
    open_checkpoint,
    reading,
    values_from_json,
    values_to_json,
)

KIND = "ASHA"
VERSION = 1


class ASHAAssessor(Assessor):
    """Asynchronous successive halving over the steps (intermediate results) of trials."""

    def __init__(
        self,
        optimize_mode: str = "maximize",
        grace_period: int = 1,
        reduction_factor: int = 3,
        max_t: int | None = None,
    ) -> None:
        self.validate_class_args(
            optimize_mode=optimize_mode,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
            max_t=max_t,
        )
        self.optimize_mode = optimize_mode
        self.grace_period = grace_period
        self.reduction_factor = reduction_factor
        self.max_t = max_t
        #: Rung (its step, as a string for JSON) -> every value recorded there, in arrival order.
        self.rungs: dict[str, list[float]] = {}
        #: Trial -> how many of its results were looked at (rungs at or below it are recorded).
        self.seen: dict[str, int] = {}
        self.reasons: dict[str, str] = {}

    @classmethod
    def validate_class_args(cls, **class_args: Any) -> None:
        check_optimize_mode(class_args.get("optimize_mode", "maximize"))
        grace = class_args.get("grace_period", 1)
        check_int("grace_period", grace, 1)
        check_int("reduction_factor", class_args.get("reduction_factor", 3), 2)
        max_t = class_args.get("max_t")
        if max_t is not None:
            check_int("max_t", max_t, 1)
            if max_t <= grace:
                raise AssessorError(
                    f"assessor.classArgs.max_t: must be greater than grace_period ({grace}), got {max_t}"
                )

    def rung_steps(self, up_to: int) -> list[int]:
        """The rungs at or below ``up_to`` results."""
        steps = []
        step = self.grace_period
        while step <= up_to and (self.max_t is None or step < self.max_t):
            steps.append(step)
            step *= self.reduction_factor
        return steps

    def assess_trial(self, trial_id: str, trial_history: list[float]) -> AssessResult:
        history = clean(trial_history, self.optimize_mode)
        seen = self.seen.get(trial_id, 0)
        self.seen[trial_id] = max(seen, len(history))
        for step in self.rung_steps(len(history)):
            if step <= seen:
                continue  # judged at this rung already
            value = history[step - 1]
            recorded = self.rungs.setdefault(str(step), [])
            recorded.append(value)
            rank = 1 + sum(better(other, value, self.optimize_mode) for other in recorded)
            if len(recorded) >= self.reduction_factor and self.reduction_factor * rank > len(recorded):
                keep = len(recorded) // self.reduction_factor
                self.reasons[trial_id] = (
                    f"{KIND}: {fmt(value)} at rung {step} ranks {rank} of {len(recorded)}; "
                    f"only the top {keep} (1/{self.reduction_factor}) go on"
                )
                return AssessResult.Bad
        return AssessResult.Good

    def trial_end(self, trial_id: str, success: bool) -> None:
        self.seen.pop(trial_id, None)  # its rung values stay: later trials are judged against them

    def reason(self, trial_id: str) -> str:
        return self.reasons.get(trial_id, KIND)

    def save_checkpoint(self) -> dict[str, Any]:
        return envelope(
            KIND,
            VERSION,
            rungs={k: values_to_json(v) for k, v in self.rungs.items()},
            seen=dict(self.seen),
            reasons=dict(self.reasons),
        )

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        state = open_checkpoint(KIND, VERSION, state)
        with reading(KIND):
            rungs = {str(int(k)): values_from_json(v, self.optimize_mode) for k, v in state["rungs"].items()}
            seen = {str(k): int(v) for k, v in state["seen"].items()}
            reasons = {str(k): str(v) for k, v in state["reasons"].items()}
        self.rungs, self.seen, self.reasons = rungs, seen, reasons
