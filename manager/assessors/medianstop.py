"""Medianstop: stop a trial whose best value so far is worse than the median of completed trials.

NNI's median stopping rule (Golovin et al. 2017, "Google Vizier"): from ``start_step`` results
on, a trial is Bad when its best value so far is worse than the median, over the trials that
completed successfully, of their running averages at the same step (the mean of their first
``step`` values). Completed trials that reported fewer values than the step do not count; with
none to compare with the trial is Good. Each trial's history is its own, kept from its last
assessment, so a completed trial counts with every value it reported.
"""

from __future__ import annotations

import statistics
from typing import Any

from manager.assessors.base import Assessor, AssessResult
from manager.assessors.common import (
    best,
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

KIND = "Medianstop"
VERSION = 1


class MedianstopAssessor(Assessor):
    """NNI's ``Medianstop`` with its class arguments."""

    def __init__(self, optimize_mode: str = "maximize", start_step: int = 0) -> None:
        self.validate_class_args(optimize_mode=optimize_mode, start_step=start_step)
        self.optimize_mode = optimize_mode
        self.start_step = start_step
        #: Trials still running (or ended unsuccessfully): their last history.
        self.running: dict[str, list[float]] = {}
        #: Completed trials: their running averages, step ``i + 1`` at index ``i``.
        self.completed: dict[str, list[float]] = {}
        self.reasons: dict[str, str] = {}

    @classmethod
    def validate_class_args(cls, **class_args: Any) -> None:
        check_optimize_mode(class_args.get("optimize_mode", "maximize"))
        check_int("start_step", class_args.get("start_step", 0), 0)

    def assess_trial(self, trial_id: str, trial_history: list[float]) -> AssessResult:
        history = clean(trial_history, self.optimize_mode)
        self.running[trial_id] = history
        step = len(history)
        if step == 0 or step < self.start_step:
            return AssessResult.Good
        averages = [avg[step - 1] for avg in self.completed.values() if len(avg) >= step]
        if not averages:
            return AssessResult.Good
        median = statistics.median(averages)
        so_far = best(history, self.optimize_mode)
        if better(median, so_far, self.optimize_mode):
            self.reasons[trial_id] = (
                f"{KIND}: best {fmt(so_far)} {'<' if self.optimize_mode == 'maximize' else '>'} median "
                f"{fmt(median)} of {len(averages)} completed trials at step {step}"
            )
            return AssessResult.Bad
        return AssessResult.Good

    def trial_end(self, trial_id: str, success: bool) -> None:
        history = self.running.pop(trial_id, None)
        if success and history:
            total = 0.0
            averages = []
            for i, value in enumerate(history, start=1):
                total += value
                averages.append(total / i)
            self.completed[trial_id] = averages

    def reason(self, trial_id: str) -> str:
        return self.reasons.get(trial_id, KIND)

    def save_checkpoint(self) -> dict[str, Any]:
        return envelope(
            KIND,
            VERSION,
            running={k: values_to_json(v) for k, v in self.running.items()},
            completed={k: values_to_json(v) for k, v in self.completed.items()},
            reasons=dict(self.reasons),
        )

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        state = open_checkpoint(KIND, VERSION, state)
        mode = self.optimize_mode
        with reading(KIND):
            running = {str(k): values_from_json(v, mode) for k, v in state["running"].items()}
            completed = {str(k): values_from_json(v, mode) for k, v in state["completed"].items()}
            reasons = {str(k): str(v) for k, v in state["reasons"].items()}
        self.running, self.completed, self.reasons = running, completed, reasons


__all__ = ["MedianstopAssessor"]
