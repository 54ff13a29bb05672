"""manager.views.pareto: which trials of a multi-objective experiment are on the front, and each
trial's rank and feasibility (constrained domination: the constraints are met first)."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from manager.store import TrialRecord
from manager.views.pareto import experiment_objectives, pareto
from trials.objectives import ObjectiveError, Objectives, dominates, front_ranks, non_dominated_sort
from trials.status import TrialStatus

ACC_LAT = Objectives.from_config(
    [{"metric": "accuracy", "mode": "maximize"}, {"metric": "latency_ms", "mode": "minimize"}]
)
FAST_ENOUGH = Objectives.from_config(ACC_LAT.to_json()["objectives"], ["latency_ms <= 10"])


def trial(seq: int, result: Any, status: TrialStatus = TrialStatus.SUCCEEDED) -> TrialRecord:
    return TrialRecord(
        id=f"t{seq}", experiment_id="e", sequence_id=seq, parameter_id=seq, parameters={}, status=status,
        created_at=0, start_time=0, end_time=1, exit_code=0, signal=None, reason=None, waiting_reason=None,
        final_metric=None, final_metric_data=result, gpus=(), trial_dir=Path("/t"), pid=None,
        pid_create_time=None, metrics_offset=0,
    )  # fmt: skip


def trials(*results: Any) -> list[TrialRecord]:
    return [trial(i, r) for i, r in enumerate(results)]


def front_ids(objectives: Objectives, records: list[TrialRecord]) -> list[str]:
    return [p.trial.id for p in pareto(objectives, records).front]


def test_the_front_holds_the_trials_no_other_trial_beats_on_every_objective() -> None:
    records = trials(
        {"accuracy": 0.9, "latency_ms": 20},  # best accuracy
        {"accuracy": 0.8, "latency_ms": 5},  # fastest
        {"accuracy": 0.7, "latency_ms": 25},  # beaten by t0 on both
        {"accuracy": 0.85, "latency_ms": 10},  # in between: on the front
    )
    assert front_ids(ACC_LAT, records) == ["t0", "t1", "t3"]


def test_ranks_are_the_non_dominated_fronts_in_order() -> None:
    records = trials(
        {"accuracy": 0.9, "latency_ms": 5},
        {"accuracy": 0.8, "latency_ms": 6},
        {"accuracy": 0.7, "latency_ms": 7},
    )
    assert pareto(ACC_LAT, records).ranks() == {"t0": 1, "t1": 2, "t2": 3}


def test_an_infeasible_trial_is_never_on_the_front_when_a_feasible_one_exists() -> None:
    records = trials({"accuracy": 0.99, "latency_ms": 50}, {"accuracy": 0.5, "latency_ms": 9})
    result = pareto(FAST_ENOUGH, records)
    assert [p.trial.id for p in result.front] == ["t1"]
    assert [(p.trial.id, p.feasible) for p in result.points] == [("t0", False), ("t1", True)]


def test_infeasible_trials_rank_after_every_feasible_one_by_their_violation() -> None:
    records = trials(
        {"accuracy": 0.9, "latency_ms": 30},  # violation 20
        {"accuracy": 0.5, "latency_ms": 12},  # violation 2
        {"accuracy": 0.6, "latency_ms": 8},  # feasible
        {"accuracy": 0.4, "latency_ms": 9},  # feasible, dominated
    )
    assert pareto(FAST_ENOUGH, records).ranks() == {"t2": 1, "t3": 2, "t1": 3, "t0": 4}


def test_when_no_trial_is_feasible_the_least_violating_ones_are_the_front() -> None:
    records = trials({"accuracy": 0.9, "latency_ms": 30}, {"accuracy": 0.5, "latency_ms": 12})
    result = pareto(FAST_ENOUGH, records)
    assert [p.trial.id for p in result.front] == ["t1"] and result.infeasible == 2


def test_trials_that_did_not_succeed_or_lack_a_metric_are_not_ranked() -> None:
    records = [
        trial(0, {"accuracy": 0.9, "latency_ms": 5}),
        trial(1, {"accuracy": 0.95}),  # no latency
        trial(2, 0.99),  # a plain number
        trial(3, None, TrialStatus.FAILED),
        trial(4, {"accuracy": 0.99, "latency_ms": 1}, TrialStatus.EARLY_STOPPED),
    ]
    assert [p.trial.id for p in pareto(ACC_LAT, records).points] == ["t0"]


def test_counts_split_the_ranked_trials_into_front_dominated_and_infeasible() -> None:
    records = trials(
        {"accuracy": 0.9, "latency_ms": 8},
        {"accuracy": 0.8, "latency_ms": 9},
        {"accuracy": 0.99, "latency_ms": 40},
    )
    result = pareto(FAST_ENOUGH, records)
    assert (len(result.front), result.dominated, result.infeasible) == (1, 1, 1)


def test_points_carry_the_reported_values_not_the_oriented_ones() -> None:
    result = pareto(ACC_LAT, trials({"accuracy": 0.9, "latency_ms": 8, "loss": 0.3}))
    assert result.points[0].values == {"accuracy": 0.9, "latency_ms": 8.0}


def test_a_config_with_two_objectives_is_multi_objective() -> None:
    config = {"objectives": ACC_LAT.to_json()["objectives"], "constraints": ["latency_ms <= 10"]}
    assert experiment_objectives(config) == FAST_ENOUGH


@pytest.mark.parametrize("config", [{}, {"objectives": None}, {"objectives": [{"metric": "accuracy"}]}])
def test_a_config_without_two_objectives_is_single_objective(config: dict[str, Any]) -> None:
    assert experiment_objectives(config) is None


def test_a_malformed_stored_objective_names_the_entry() -> None:
    with pytest.raises(ObjectiveError, match=r"objectives\[1\]\.mode"):
        experiment_objectives({"objectives": [{"metric": "a"}, {"metric": "b", "mode": "up"}]})


@pytest.mark.parametrize("objectives", [2, 3])
def test_front_ranks_agree_with_peeling_fronts_by_definition_ties_included(objectives: int) -> None:
    def by_definition(vectors: list[tuple[float, ...]]) -> list[int]:
        ranks, left, depth = [0] * len(vectors), set(range(len(vectors))), 0
        while left:
            depth += 1
            front = {i for i in left if not any(dominates(vectors[j], vectors[i]) for j in left)}
            for i in front:
                ranks[i] = depth
            left -= front
        return ranks

    rng = random.Random(objectives)
    for _ in range(200):
        values = [0.0, 0.5, 1.0, 2.0, -math.inf]
        vectors = [tuple(rng.choice(values) for _ in range(objectives)) for _ in range(rng.randint(0, 30))]
        expected = by_definition(vectors)
        assert front_ranks(vectors) == expected, vectors
        assert non_dominated_sort(vectors) == [
            [i for i, r in enumerate(expected) if r == d] for d in range(1, max(expected, default=0) + 1)
        ]


def test_ten_thousand_trials_on_one_front_are_all_rank_one() -> None:
    vectors = [(i / 10_000, 1 - i / 10_000) for i in range(10_000)]
    assert set(front_ranks(vectors)) == {1}
