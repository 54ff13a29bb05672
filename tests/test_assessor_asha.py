"""ASHA's rule on hand-made values: rungs, the top 1/reduction_factor at each, no waiting."""

from __future__ import annotations

import pytest

from manager.assessors.asha import ASHAAssessor
from manager.assessors.base import AssessResult

Good, Bad = AssessResult.Good, AssessResult.Bad


def at_rung_one(assessor: ASHAAssessor, values: list[float]) -> list[AssessResult]:
    """Trials t0, t1, ... each reporting one value (rung 1)."""
    return [assessor.assess_trial(f"t{i}", [v]) for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("args", "steps"),
    [
        ({}, [1, 3, 9, 27, 81]),
        ({"grace_period": 2, "reduction_factor": 2}, [2, 4, 8, 16, 32, 64]),
        ({"max_t": 10}, [1, 3, 9]),
        ({"max_t": 9}, [1, 3]),
    ],
)
def test_rungs_are_at_grace_period_times_powers_of_the_reduction_factor_below_max_t(
    args: dict[str, int], steps: list[int]
) -> None:
    assert ASHAAssessor(**args).rung_steps(100) == steps


def test_a_trial_goes_on_only_in_the_top_third_of_values_recorded_at_the_rung() -> None:
    assessor = ASHAAssessor()
    assert at_rung_one(assessor, [0.5, 0.7, 0.6, 0.8, 0.65]) == [Good, Good, Bad, Good, Bad]
    assert assessor.reason("t2") == "ASHA: 0.6 at rung 1 ranks 2 of 3; only the top 1 (1/3) go on"


def test_with_fewer_values_than_the_reduction_factor_the_trial_goes_on() -> None:
    assert at_rung_one(ASHAAssessor(reduction_factor=4), [0.9, 0.1, 0.0]) == [Good, Good, Good]


def test_ties_keep_the_trial() -> None:
    assert at_rung_one(ASHAAssessor(reduction_factor=2), [0.5, 0.5, 0.5, 0.5]) == [Good] * 4


def test_between_rungs_nothing_is_judged() -> None:
    assessor = ASHAAssessor()
    at_rung_one(assessor, [0.9, 0.9, 0.9])
    assert assessor.assess_trial("late", [0.9, -1e9]) is Good  # step 2 is no rung
    assert [assessor.assess_trial(t, [0.9, 0.0, v]) for t, v in (("x", 0.1), ("y", 0.2), ("z", 0.3))] == [
        Good,
        Good,
        Good,  # z is the best of three at rung 3
    ]


def test_the_value_at_the_rung_is_the_one_judged_later_values_are_not() -> None:
    assessor = ASHAAssessor(reduction_factor=2)
    assessor.assess_trial("a", [0.9])
    assert assessor.assess_trial("b", [0.1]) is Bad


def test_no_rung_at_or_beyond_max_t() -> None:
    assessor = ASHAAssessor(reduction_factor=2, max_t=2)
    assert at_rung_one(assessor, [0.9]) == [Good]
    assert assessor.assess_trial("b", [0.1]) is Bad
    assessor.assess_trial("c", [0.95])
    assert assessor.assess_trial("c", [0.95, -5.0]) is Good  # 2 is max_t: no rung


def test_values_stay_recorded_after_their_trials_end() -> None:
    assessor = ASHAAssessor(reduction_factor=2)
    assessor.assess_trial("a", [0.9])
    assessor.trial_end("a", True)
    assert assessor.assess_trial("b", [0.5]) is Bad


def test_minimize_mirrors_the_rule() -> None:
    assessor = ASHAAssessor(optimize_mode="minimize")
    assert at_rung_one(assessor, [0.5, 0.3, 0.4, 0.2, 0.35]) == [Good, Good, Bad, Good, Bad]


def test_a_trial_reaching_several_rungs_at_once_is_judged_at_each() -> None:
    assessor = ASHAAssessor(reduction_factor=2)
    assessor.assess_trial("a", [0.5, 0.9])
    assert assessor.assess_trial("b", [0.6, 0.1]) is Bad  # best at rung 1, worst at rung 2
    assert assessor.reason("b").startswith("ASHA: 0.1 at rung 2 ranks 2 of 2")
