"""Curvefitting's rule on hand-made curves: the extrapolated value at epoch_num against the standard."""

from __future__ import annotations

import math

import pytest

from manager.assessors.base import AssessResult
from manager.assessors.curvefitting import CurvefittingAssessor, predict

Good, Bad = AssessResult.Good, AssessResult.Bad


def rising(top: float, steps: int, rate: float = 0.3) -> list[float]:
    return [top * (1 - math.exp(-rate * t)) for t in range(1, steps + 1)]


def with_best(final: float, mode: str = "maximize", **args: float) -> CurvefittingAssessor:
    """An assessor (epoch_num 30) that saw one trial complete with ``final`` as its last value."""
    assessor = CurvefittingAssessor(epoch_num=30, optimize_mode=mode, **args)  # type: ignore[arg-type]
    assessor.assess_trial("done", [final])
    assessor.trial_end("done", True)
    return assessor


def judge(assessor: CurvefittingAssessor, trial_id: str, history: list[float]) -> list[AssessResult]:
    """The verdicts, one per result, until the first Bad (the daemon asks no more after it)."""
    verdicts = []
    for n in range(1, len(history) + 1):
        verdicts.append(assessor.assess_trial(trial_id, history[:n]))
        if verdicts[-1] is Bad:
            break
    return verdicts


def test_predict_extrapolates_a_saturating_curve() -> None:
    truth = rising(0.9, 30)
    assert predict(truth[:10], 30) == pytest.approx(truth[-1], abs=0.03)
    power = [0.9 - 0.5 * t**-0.7 for t in range(1, 51)]
    assert predict(power[:10], 50) == pytest.approx(power[-1], abs=0.03)


def test_predict_keeps_a_flat_curve_flat_and_refuses_too_few_points() -> None:
    assert predict([0.4] * 8, 30) == 0.4
    assert predict([0.1, 0.2], 30) is None


def test_predict_says_worst_for_a_curve_whose_latest_value_diverged() -> None:
    assert predict([0.1, 0.2, 0.3, -math.inf], 30) == -math.inf


def test_good_while_no_trial_has_completed() -> None:
    assessor = CurvefittingAssessor(epoch_num=30, start_step=3)
    assert judge(assessor, "t", [0.01] * 10) == [Good] * 10


def test_bad_when_the_predicted_final_value_is_below_threshold_times_the_best() -> None:
    assessor = with_best(0.8, start_step=6)
    verdicts = judge(assessor, "t", rising(0.2, 8))
    assert verdicts == [Good] * 5 + [Bad]  # judged from step 6 on
    reason = assessor.reason("t")
    assert reason.startswith("Curvefitting: predicted 0.2") and "< 0.76 (threshold 0.95 of best 0.8" in reason


def test_a_curve_still_rising_towards_the_best_goes_on() -> None:
    history = rising(0.9, 10)  # 0.75 at step 6, below the standard 0.76, but rising to 0.9
    assert history[5] < 0.76
    assert judge(with_best(0.8), "t", history) == [Good] * 10


def test_only_every_gap_results_are_judged() -> None:
    hopeless = [0.1, 0.11, 0.12, 0.125, 0.13, 0.132, 0.134, 0.135]
    fresh = with_best(0.8, start_step=4, gap=3)
    assert fresh.assess_trial("u", hopeless[:4]) is Bad
    assert fresh.assess_trial("v", hopeless[:5]) is Good and fresh.assess_trial("v", hopeless[:6]) is Good
    assert fresh.assess_trial("w", hopeless[:7]) is Bad  # steps 4, 7, 10, ...


def test_the_best_final_value_is_each_completed_trials_own_last_value() -> None:
    assessor = CurvefittingAssessor(epoch_num=30, start_step=4)
    judge(assessor, "strong", rising(0.9, 10))
    judge(assessor, "weak", [0.01, 0.02])  # assessed last, still running
    assessor.trial_end("strong", True)  # NNI would take weak's 0.02 as the best final value here
    assert judge(assessor, "t", rising(0.3, 6))[-1] is Bad


def test_a_trial_that_already_reached_the_standard_goes_on() -> None:
    assessor = with_best(0.8, start_step=3)
    assert judge(assessor, "t", [0.79, 0.5, 0.4, 0.3, 0.2]) == [Good] * 5


def test_minimize_mirrors_the_rule() -> None:
    assessor = with_best(0.2, mode="minimize", start_step=6)  # standard 0.2 / 0.95 = 0.2105
    plateau = [0.6 + 0.4 * math.exp(-0.5 * t) for t in range(1, 9)]
    assert judge(assessor, "t", plateau)[-1] is Bad
    assert "> 0.2105" in assessor.reason("t")
    improving = [0.1 + 0.9 * math.exp(-0.3 * t) for t in range(1, 11)]
    assert judge(assessor, "u", improving) == [Good] * 10


@pytest.mark.parametrize(
    ("mode", "best", "standard"),
    [
        ("maximize", 0.8, 0.76),
        ("maximize", -1.0, -1 / 0.95),
        ("minimize", 0.19, 0.2),
        ("minimize", -1.0, -0.95),
    ],
)
def test_the_standard_lies_on_the_worse_side_of_the_best(mode: str, best: float, standard: float) -> None:
    assert CurvefittingAssessor(epoch_num=5, optimize_mode=mode).standard(best) == pytest.approx(standard)


def test_a_diverged_trial_is_stopped_at_its_next_judgement() -> None:
    assessor = with_best(0.8, start_step=3)
    assert judge(assessor, "t", [0.1, 0.2, math.nan]) == [Good, Good, Bad]


def test_without_scipy_curvefitting_is_refused_at_create_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from manager.assessors.base import AssessorError
    from manager.assessors.curvefitting import CurvefittingAssessor

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "scipy" else real(name, *a)
    )
    with pytest.raises(AssessorError, match="Curvefitting fits curves with scipy, which is not installed"):
        CurvefittingAssessor.validate_class_args(epoch_num=10)
