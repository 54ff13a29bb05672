"""Medianstop's rule on hand-made curves: best so far against the median of completed running averages."""

from __future__ import annotations

import math

from manager.assessors.base import AssessResult
from manager.assessors.medianstop import MedianstopAssessor

Good, Bad = AssessResult.Good, AssessResult.Bad


def finished(mode: str = "maximize", start_step: int = 0, sign: float = 1.0) -> MedianstopAssessor:
    """Three completed trials whose running averages at step 2 are 1.0, 0.6 and 0.2 (times ``sign``)."""
    assessor = MedianstopAssessor(optimize_mode=mode, start_step=start_step)
    for trial_id, history in {"A": [1, 1, 1], "B": [0.5, 0.7, 0.9], "C": [0.2, 0.2, 0.2]}.items():
        assessor.assess_trial(trial_id, [sign * v for v in history])
        assessor.trial_end(trial_id, True)
    return assessor


def test_good_while_no_trial_has_completed() -> None:
    assessor = MedianstopAssessor()
    assert [assessor.assess_trial("t", [0.0] * n) for n in range(1, 6)] == [Good] * 5


def test_bad_when_the_best_so_far_is_below_the_median_of_running_averages_at_that_step() -> None:
    assessor = finished()
    assert assessor.assess_trial("t", [0.5, 0.55]) is Bad
    assert assessor.reason("t") == "Medianstop: best 0.55 < median 0.6 of 3 completed trials at step 2"


def test_good_when_the_best_so_far_reaches_the_median() -> None:
    assert finished().assess_trial("t", [0.1, 0.61]) is Good
    assert finished().assess_trial("t", [0.6, 0.1]) is Good  # the best so far, not the latest


def test_nothing_is_judged_before_start_step() -> None:
    assessor = finished(start_step=3)
    assert assessor.assess_trial("t", [0.0, 0.0]) is Good
    assert assessor.assess_trial("t", [0.0, 0.0, 0.0]) is Bad


def test_completed_trials_shorter_than_the_step_do_not_count() -> None:
    assessor = finished()
    assessor.assess_trial("D", [0.3, 0.3, 0.3, 0.3])
    assessor.trial_end("D", True)
    assert assessor.assess_trial("t", [0.35] * 4) is Good  # at step 4 only D compares: median 0.3
    assert assessor.assess_trial("u", [0.25] * 4) is Bad
    assert assessor.assess_trial("v", [-5.0] * 5) is Good  # at step 5 nobody compares


def test_failed_and_early_stopped_trials_do_not_count() -> None:
    assessor = MedianstopAssessor()
    assessor.assess_trial("loser", [0.0, 0.0])
    assessor.trial_end("loser", False)
    assert assessor.assess_trial("t", [-5.0, -5.0]) is Good


def test_minimize_mirrors_the_rule() -> None:
    assessor = finished(mode="minimize", sign=-1.0)  # running averages -1.0, -0.6, -0.2: median -0.6
    assert assessor.assess_trial("t", [-0.5, -0.55]) is Bad
    assert assessor.reason("t") == "Medianstop: best -0.55 > median -0.6 of 3 completed trials at step 2"
    assert assessor.assess_trial("u", [-0.1, -0.61]) is Good


def test_a_nan_value_counts_as_the_worst_in_a_running_average() -> None:
    assessor = MedianstopAssessor()
    for trial_id in ("A", "B"):
        assessor.assess_trial(trial_id, [math.nan, 0.9])
        assessor.trial_end(trial_id, True)
    assert assessor.assess_trial("t", [-100.0, -100.0]) is Good  # their averages at step 2 are -inf
    assert assessor.assess_trial("u", [math.nan]) is Good  # a tie with -inf is not worse
