"""Curvefitting: stop a trial whose learning curve, extrapolated, ends clearly below the best completed one.

NNI's rule (after Domhan et al. 2015): from ``start_step`` results on, every ``gap`` results,
the value at ``epoch_num`` is predicted from the curve so far, and the trial is Bad when the
prediction is worse than the *standard*, ``threshold`` times the best final value of the trials
that completed successfully. The standard is always on the worse side of that best value:
maximize: ``best * threshold`` (``best / threshold`` for a negative best); minimize, mirrored:
``best / threshold`` (``best * threshold`` for a negative best). With no completed trial, no
usable fit, or a trial whose best value so far already meets the standard, the trial is Good.

Unlike NNI's (which only maximizes and takes "the best final value" from whichever trial was
assessed last), this one works in both modes and keeps each trial's own history.

The prediction is simpler than NNI's MCMC over 12 families: a few monotone, saturating curve
families are fitted by bounded least squares (:mod:`scipy.optimize`) to the finite values, scaled
to [0, 1] and turned so that higher is better; the predictions of the fits whose error is low
(RMSE within twice the best fit's and under 10% of the observed range) are averaged. A trial
whose latest value is NaN or infinite is predicted to end at the worst value.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections.abc import Callable
from typing import Any

from manager.assessors.base import Assessor, AssessorError, AssessResult
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
    worst,
)

KIND = "Curvefitting"
VERSION = 1
#: A fit is usable when its RMSE on the scaled curve is under this and under twice the best one's.
MAX_RMSE = 0.1
#: A scaled prediction beyond this (10 ranges away) is an extrapolation gone wild; that fit is dropped.
MAX_SCALED = 10.0
#: Function evaluations per fit: a curve that needs more is not one of the family (and would cost time).
MAX_EVALUATIONS = 400


def _families() -> list[tuple[str, Callable[..., Any], list[float], tuple[list[float], list[float]]]]:
    """(name, f(x, *params), initial params, (lower, upper) bounds); all rise and level off."""
    import numpy as np

    return [
        ("pow3", lambda x, c, a, alpha: c - a * x ** (-alpha), [1.0, 1.0, 0.5], ([-10, 0, 0], [10, 50, 5])),
        ("exp3", lambda x, c, a, b: c - a * np.exp(-b * x), [1.0, 1.0, 0.3], ([-10, 0, 0], [10, 50, 5])),
        (
            "log_power",
            lambda x, a, b, c: a / (1.0 + (x / np.exp(b)) ** (-c)),
            [1.0, 1.0, 1.0],
            ([-10, -10, 0], [10, 10, 10]),
        ),
        (
            "weibull",
            lambda x, c, a, k, d: c - a * np.exp(-((k * x) ** d)),
            [1.0, 1.0, 0.3, 1.0],
            ([-10, 0, 0, 0.05], [10, 50, 10, 5]),
        ),
        ("log_linear", lambda x, a, b: a + b * np.log(x), [0.0, 0.5], ([-10, 0], [10, 10])),
    ]


def predict(scores: list[float], at: int) -> float | None:
    """The score (higher is better) a curve reaching ``scores`` at steps 1..n will have at step ``at``.

    None when nothing fits well; the worst value when the latest score is not finite.
    """
    import numpy as np
    from scipy.optimize import curve_fit

    if not scores or not math.isfinite(scores[-1]):
        return -math.inf
    if at <= len(scores):
        return scores[at - 1]
    points = [(i + 1.0, s) for i, s in enumerate(scores) if math.isfinite(s)]
    if len(points) < 3:
        return None
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    low, span = float(y.min()), float(y.max() - y.min())
    if span <= 1e-12 * max(1.0, abs(low)):
        return scores[-1]  # a flat curve stays flat
    z = (y - low) / span
    fits: list[tuple[float, float]] = []
    for _, func, start, bounds in _families():
        if len(points) <= len(start):
            continue
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                params, _ = curve_fit(func, x, z, p0=start, bounds=bounds, maxfev=MAX_EVALUATIONS)
                rmse = float(np.sqrt(np.mean((func(x, *params) - z) ** 2)))
                guess = float(func(float(at), *params))
        except (RuntimeError, ValueError, FloatingPointError, OverflowError):
            continue
        if math.isfinite(rmse) and math.isfinite(guess) and abs(guess) <= MAX_SCALED:
            fits.append((rmse, guess))
    if not fits:
        return None
    best_rmse = min(rmse for rmse, _ in fits)
    good = [guess for rmse, guess in fits if rmse <= MAX_RMSE and rmse <= 2 * best_rmse + 1e-9]
    if not good:
        return None
    return low + span * sum(good) / len(good)


class CurvefittingAssessor(Assessor):
    """NNI's ``Curvefitting`` with its class arguments."""

    def __init__(
        self,
        epoch_num: int,
        optimize_mode: str = "maximize",
        start_step: int = 6,
        threshold: float = 0.95,
        gap: int = 1,
    ) -> None:
        self.validate_class_args(
            epoch_num=epoch_num,
            optimize_mode=optimize_mode,
            start_step=start_step,
            threshold=threshold,
            gap=gap,
        )
        self.epoch_num = epoch_num
        self.optimize_mode = optimize_mode
        self.start_step = start_step
        self.threshold = float(threshold)
        self.gap = gap
        #: Running trials: their last history.
        self.running: dict[str, list[float]] = {}
        #: Completed trials: their final (last) value.
        self.finals: dict[str, float] = {}
        self.reasons: dict[str, str] = {}

    @classmethod
    def validate_class_args(cls, **class_args: Any) -> None:
        if importlib.util.find_spec("scipy") is None:  # checked at create time, without importing it
            raise AssessorError(
                "assessor.name: Curvefitting fits curves with scipy, which is not installed: pip install scipy"
            )
        if "epoch_num" not in class_args:
            raise AssessorError("assessor.classArgs.epoch_num: missing; Curvefitting requires it")
        check_int("epoch_num", class_args["epoch_num"], 1)
        check_optimize_mode(class_args.get("optimize_mode", "maximize"))
        check_int("start_step", class_args.get("start_step", 6), 1)
        check_int("gap", class_args.get("gap", 1), 1)
        threshold = class_args.get("threshold", 0.95)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
            raise AssessorError(
                f"assessor.classArgs.threshold: must be a number in (0, 1], got {threshold!r}"
            )

    def standard(self, best_final: float) -> float:
        """The value a trial must be predicted to reach: ``best_final`` moved by ``threshold`` to the worse side."""
        shrink = (best_final >= 0) == (self.optimize_mode == "maximize")
        return best_final * self.threshold if shrink else best_final / self.threshold

    def assess_trial(self, trial_id: str, trial_history: list[float]) -> AssessResult:
        mode = self.optimize_mode
        history = clean(trial_history, mode)
        self.running[trial_id] = history
        step = len(history)
        if step < self.start_step or (step - self.start_step) % self.gap != 0 or not self.finals:
            return AssessResult.Good
        best_final = best(self.finals.values(), mode)
        if not math.isfinite(best_final):
            return AssessResult.Good  # every completed trial diverged: nothing to fall short of
        standard = self.standard(best_final)
        if not better(standard, best(history, mode), mode):
            return AssessResult.Good  # it has already reached the standard
        sign = 1.0 if mode == "maximize" else -1.0
        score = predict([sign * v for v in history], self.epoch_num)
        if score is None:
            return AssessResult.Good
        predicted = sign * score if math.isfinite(score) else worst(mode)
        if better(standard, predicted, mode):
            word = "<" if mode == "maximize" else ">"
            self.reasons[trial_id] = (
                f"{KIND}: predicted {fmt(predicted)} at epoch {self.epoch_num} {word} {fmt(standard)} "
                f"(threshold {fmt(self.threshold)} of best {fmt(best_final)} of {len(self.finals)} "
                f"completed trials) at step {step}"
            )
            return AssessResult.Bad
        return AssessResult.Good

    def trial_end(self, trial_id: str, success: bool) -> None:
        history = self.running.pop(trial_id, None)
        if success and history:
            self.finals[trial_id] = history[-1]

    def reason(self, trial_id: str) -> str:
        return self.reasons.get(trial_id, KIND)

    def save_checkpoint(self) -> dict[str, Any]:
        return envelope(
            KIND,
            VERSION,
            running={k: values_to_json(v) for k, v in self.running.items()},
            finals=dict(zip(self.finals, values_to_json(self.finals.values()), strict=True)),
            reasons=dict(self.reasons),
        )

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        state = open_checkpoint(KIND, VERSION, state)
        mode = self.optimize_mode
        with reading(KIND):
            running = {str(k): values_from_json(v, mode) for k, v in state["running"].items()}
            finals_in = state["finals"]
            finals = dict(
                zip(map(str, finals_in), values_from_json(list(finals_in.values()), mode), strict=True)
            )
            reasons = {str(k): str(v) for k, v in state["reasons"].items()}
        self.running, self.finals, self.reasons = running, finals, reasons
