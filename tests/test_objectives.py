"""trials.objectives: the shared words of multi-objective search, with hand-checked numbers."""

from __future__ import annotations

import math

import pytest

from trials.objectives import (
    Constraint,
    Objective,
    ObjectiveError,
    Objectives,
    crowding_distance,
    dominates,
    hypervolume_2d,
    non_dominated_sort,
    pareto_front,
    parse_constraint,
)

ACC_LAT = [{"metric": "accuracy", "mode": "maximize"}, {"metric": "latency_ms", "mode": "minimize"}]


def objectives(constraints: list[str] | None = None) -> Objectives:
    return Objectives.from_config(ACC_LAT, constraints)


# -- Objective and Constraint --------------------------------------------------------------------


def test_an_objective_orients_values_so_that_larger_is_better() -> None:
    assert Objective("accuracy", "maximize").oriented(0.9) == 0.9
    assert Objective("latency_ms", "minimize").oriented(12.0) == -12.0


def test_a_nan_objective_value_is_the_worst_possible() -> None:
    assert Objective("a", "maximize").oriented(math.nan) == -math.inf
    assert Objective("a", "minimize").oriented(math.nan) == -math.inf


def test_a_constraint_violation_is_the_distance_outside_its_bound() -> None:
    at_most = Constraint("latency_ms", "<=", 20.0)
    assert at_most.violation(15.0) == 0.0
    assert at_most.violation(20.0) == 0.0
    assert at_most.violation(23.5) == 3.5
    at_least = Constraint("accuracy", ">=", 0.5)
    assert at_least.violation(0.75) == 0.0
    assert at_least.violation(0.25) == 0.25
    assert at_most.violation(math.nan) == math.inf


def test_a_constraint_prints_as_it_is_written_and_parses_back_exactly() -> None:
    assert str(parse_constraint("latency_ms<=20")) == "latency_ms <= 20"
    precise = Constraint("latency_ms", "<=", 0.123456789)
    assert parse_constraint(str(precise)) == precise
    assert parse_constraint("params >= -inf") == Constraint("params", ">=", -math.inf)


@pytest.mark.parametrize(
    "text", ["latency_ms < 20", "latency_ms <= fast", "<= 20", "latency_ms <= 1.2.3", 20]
)
def test_a_constraint_that_does_not_read_metric_op_number_is_refused_naming_its_index(text: object) -> None:
    with pytest.raises(ObjectiveError, match=r"^constraints\[3\]: must read 'METRIC <= NUMBER'"):
        parse_constraint(text, 3)


# -- Objectives ----------------------------------------------------------------------------------


def test_metrics_are_the_objectives_then_the_other_constrained_metrics() -> None:
    parsed = objectives(["latency_ms <= 20", "params <= 1e6"])
    assert parsed.metrics == ("accuracy", "latency_ms", "params")


def test_missing_names_absent_and_non_numeric_metrics() -> None:
    parsed = objectives(["params <= 1e6"])
    assert parsed.missing({"accuracy": 0.9, "latency_ms": True, "params": "big"}) == ["latency_ms", "params"]
    assert parsed.missing({"accuracy": 0.9, "latency_ms": 3, "params": 1.0}) == []


def test_vector_orients_each_objective_and_violation_sums_the_constraints() -> None:
    parsed = objectives(["latency_ms <= 20", "accuracy >= 0.5"])
    result = {"accuracy": 0.4, "latency_ms": 25.0}
    assert parsed.vector(result) == (0.4, -25.0)
    assert parsed.violation(result) == pytest.approx(5.1)


def test_a_feasible_result_beats_every_infeasible_one() -> None:
    parsed = objectives(["latency_ms <= 20"])
    feasible_but_poor = {"accuracy": 0.1, "latency_ms": 19.0}
    infeasible_but_accurate = {"accuracy": 0.99, "latency_ms": 21.0}
    assert parsed.beats(feasible_but_poor, infeasible_but_accurate)
    assert not parsed.beats(infeasible_but_accurate, feasible_but_poor)


def test_infeasible_results_compare_by_total_violation() -> None:
    parsed = objectives(["latency_ms <= 20"])
    assert parsed.beats({"accuracy": 0.1, "latency_ms": 22.0}, {"accuracy": 0.9, "latency_ms": 30.0})
    assert not parsed.beats({"accuracy": 0.9, "latency_ms": 30.0}, {"accuracy": 0.1, "latency_ms": 22.0})


def test_feasible_results_compare_by_pareto_dominance() -> None:
    parsed = objectives()
    assert parsed.beats({"accuracy": 0.9, "latency_ms": 10.0}, {"accuracy": 0.8, "latency_ms": 10.0})
    assert not parsed.beats({"accuracy": 0.9, "latency_ms": 12.0}, {"accuracy": 0.8, "latency_ms": 10.0})
    assert not parsed.beats({"accuracy": 0.8, "latency_ms": 10.0}, {"accuracy": 0.9, "latency_ms": 12.0})


def test_to_json_round_trips_through_from_config() -> None:
    parsed = objectives(["latency_ms <= 20", "params <= 0.1234567"])
    stored = parsed.to_json()
    assert stored == {
        "objectives": ACC_LAT,
        "constraints": ["latency_ms <= 20", "params <= 0.1234567"],
    }
    assert Objectives.from_config(stored["objectives"], stored["constraints"]) == parsed


def test_mode_defaults_to_maximize() -> None:
    assert Objectives.from_config([{"metric": "accuracy"}]).objectives == (Objective("accuracy", "maximize"),)


@pytest.mark.parametrize(
    ("objectives_value", "constraints_value", "message"),
    [
        ([], None, r"^objectives: must be a non-empty list"),
        ({"metric": "a"}, None, r"^objectives: must be a non-empty list"),
        (["accuracy"], None, r"^objectives\[0\]: must be \{metric: NAME"),
        ([{"metric": "a", "goal": "max"}], None, r"^objectives\[0\]: must be \{metric: NAME"),
        ([{"metric": "a"}, {"metric": ""}], None, r"^objectives\[1\]\.metric: must be a metric name"),
        ([{"metric": "a", "mode": "max"}], None, r"^objectives\[0\]\.mode: must be maximize or minimize"),
        (
            [{"metric": "a"}, {"metric": "a", "mode": "minimize"}],
            None,
            r"^objectives: a metric is named twice",
        ),
        ([{"metric": "a"}], "a <= 1", r"^constraints: must be a list"),
        ([{"metric": "a"}], ["a <= 1", "a = 2"], r"^constraints\[1\]: must read"),
    ],
)
def test_config_errors_name_the_field(
    objectives_value: object, constraints_value: object, message: str
) -> None:
    with pytest.raises(ObjectiveError, match=message):
        Objectives.from_config(objectives_value, constraints_value)


# -- fronts, crowding, hypervolume ---------------------------------------------------------------


def test_dominates_needs_no_worse_everywhere_and_better_somewhere() -> None:
    assert dominates((2, 1), (1, 1))
    assert not dominates((1, 1), (1, 1))
    assert not dominates((2, 0), (1, 1))


def test_non_dominated_sort_returns_the_fronts_in_order() -> None:
    vectors = [(1, 5), (2, 2), (3, 1), (1, 1), (0, 0), (2, 4)]
    # (1,5), (2,4) and (3,1) are non-dominated; (2,2) is dominated by (2,4); (1,1) by (2,2); (0,0) by all
    assert non_dominated_sort(vectors) == [[0, 2, 5], [1], [3], [4]]


def test_pareto_front_is_the_first_front_and_empty_for_nothing() -> None:
    assert pareto_front([(1, 5), (2, 2), (2, 4)]) == [0, 2]
    assert pareto_front([]) == []


def test_crowding_distance_gives_the_ends_infinity_and_the_middle_its_normalized_cuboid() -> None:
    # sorted by x: (0,4), (1,3), (3,1), (4,0); x range 4, y range 4
    vectors = [(0, 4), (1, 3), (3, 1), (4, 0)]
    distance = crowding_distance(vectors)
    assert distance[0] == distance[3] == math.inf
    assert distance[1] == pytest.approx((3 - 0) / 4 + (4 - 1) / 4)  # 1.5
    assert distance[2] == pytest.approx((4 - 1) / 4 + (3 - 0) / 4)  # 1.5
    assert crowding_distance([]) == []
    assert crowding_distance([(1, 1)]) == [math.inf]


def test_hypervolume_2d_is_the_area_dominated_above_the_reference() -> None:
    # a staircase: (3,1) adds 3*1, (2,2) adds 2*1, (1,3) adds 1*1 -> 6
    assert hypervolume_2d([(1, 3), (2, 2), (3, 1)], (0, 0)) == pytest.approx(6.0)
    # a dominated point adds nothing; a point not above the reference adds nothing
    assert hypervolume_2d([(1, 3), (2, 2), (3, 1), (1, 1), (5, 0)], (0, 0)) == pytest.approx(6.0)
    assert hypervolume_2d([], (0, 0)) == 0.0
