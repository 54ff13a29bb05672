"""Several objectives: the config keys, which tuners take them, and evolution's NSGA-II order.

The experiment loop with objectives (dicts reaching the tuner, a trial lacking a metric FAILED)
is tested in tests/test_multi_objective_loop.py; the shared words in tests/test_objectives.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from spaces import layer, space

from manager.config import ConfigError, ExperimentConfig, TunerConfig, parse_config
from manager.tuners.base import TunerError
from manager.tuners.evolution import RegularizedEvolutionTuner
from manager.tuners.ranking import Standing, standings
from manager.tuners.registry import check_tuner_config, create_tuner
from trials.objectives import Objectives

OBJECTIVES = [{"metric": "accuracy", "mode": "maximize"}, {"metric": "latency_ms", "mode": "minimize"}]
#: Four keys of four candidates; the members of a test population differ in every key.
SPACE = space({f"k{i}": layer(*"abcd") for i in range(4)})


def config(tmp_path: Path, **keys: Any) -> dict[str, Any]:
    body = {
        "trialCommand": "python train.py",
        "trialCodeDirectory": str(tmp_path),
        "searchSpace": SPACE.to_json(),
    }
    body.update(keys)
    return body


def error_of(body: dict[str, Any], tmp_path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(body, tmp_path)
    return caught.value


# -- config --------------------------------------------------------------------------------------


def test_a_config_without_objectives_has_none_and_stores_as_before(tmp_path: Path) -> None:
    parsed = parse_config(config(tmp_path), tmp_path)
    assert parsed.objectives is None
    assert "objectives" not in parsed.to_json() and "constraints" not in parsed.to_json()


def test_objectives_and_constraints_are_read(tmp_path: Path) -> None:
    parsed = parse_config(config(tmp_path, objectives=OBJECTIVES, constraints=["latency_ms <= 20"]), tmp_path)
    assert parsed.objectives == Objectives.from_config(OBJECTIVES, ["latency_ms <= 20"])


def test_objectives_round_trip_through_the_stored_form(tmp_path: Path) -> None:
    parsed = parse_config(config(tmp_path, objectives=OBJECTIVES, constraints=["latency_ms <= 20"]), tmp_path)
    assert ExperimentConfig.from_json(parsed.to_json()) == parsed


def test_a_bad_objective_is_a_config_error_naming_the_entry(tmp_path: Path) -> None:
    bad = [{"metric": "accuracy", "mode": "maximise"}]
    error = error_of(config(tmp_path, objectives=bad), tmp_path)
    assert error.field == "objectives[0].mode"
    assert "objectives[0].mode: must be maximize or minimize" in str(error)


def test_a_bad_constraint_is_a_config_error_naming_it(tmp_path: Path) -> None:
    error = error_of(config(tmp_path, objectives=OBJECTIVES, constraints=["latency_ms < 20"]), tmp_path)
    assert error.field == "constraints[0]"


def test_constraints_without_objectives_are_refused(tmp_path: Path) -> None:
    error = error_of(config(tmp_path, constraints=["latency_ms <= 20"]), tmp_path)
    assert error.field == "constraints"
    assert "needs objectives" in str(error)


def test_optimize_mode_with_objectives_is_refused(tmp_path: Path) -> None:
    tuner = {"name": "Evolution", "classArgs": {"optimize_mode": "maximize"}}
    error = error_of(config(tmp_path, objectives=OBJECTIVES, tuner=tuner), tmp_path)
    assert error.field == "tuner.classArgs.optimize_mode"
    assert "objectives" in str(error)


def test_include_intermediate_results_with_objectives_is_refused(tmp_path: Path) -> None:
    tuner = {"name": "Evolution", "includeIntermediateResults": True}
    error = error_of(config(tmp_path, objectives=OBJECTIVES, tuner=tuner), tmp_path)
    assert error.field == "tuner.includeIntermediateResults"
    assert "not with objectives" in str(error)


# -- which tuners take several objectives ------------------------------------------------------


@pytest.mark.parametrize("name", ["Random", "Evolution", "GridSearch"])
def test_random_evolution_and_grid_take_several_objectives(name: str) -> None:
    objectives = Objectives.from_config(OBJECTIVES)
    check_tuner_config(TunerConfig(name=name), objectives)
    tuner = create_tuner(TunerConfig(name=name), objectives)
    assert tuner.objectives == objectives


def test_ppo_is_refused_with_objectives_in_one_line() -> None:
    objectives = Objectives.from_config(OBJECTIVES)
    message = "PPO searches one objective; remove objectives or use Random or Evolution"
    with pytest.raises(TunerError, match=f"^{message}$"):
        check_tuner_config(TunerConfig(name="PPO"), objectives)
    with pytest.raises(TunerError, match=f"^{message}$"):
        create_tuner(TunerConfig(name="PPO"), objectives)


def test_without_objectives_a_tuner_hears_none() -> None:
    assert create_tuner(TunerConfig(name="Evolution")).objectives is None


# -- NSGA-II order -------------------------------------------------------------------------------


def result(accuracy: float, latency: float) -> dict[str, float]:
    return {"accuracy": accuracy, "latency_ms": latency}


def test_standings_rank_feasible_fronts_then_violation_levels() -> None:
    objectives = Objectives.from_config(OBJECTIVES, ["latency_ms <= 20"])
    results = [result(0.9, 10), result(0.8, 5), result(0.7, 12), result(0.99, 25), result(0.99, 30)]
    ranks = [s.rank for s in standings(objectives, results)]
    # front 0: (0.9,10) and (0.8,5); front 1: (0.7,12); then violation 5; then violation 10
    assert ranks == [0, 0, 1, 2, 3]


def test_a_lone_or_end_member_of_a_front_has_infinite_crowding() -> None:
    objectives = Objectives.from_config(OBJECTIVES)
    placed = standings(objectives, [result(0.9, 10), result(0.8, 5), result(0.85, 8)])
    assert placed[0] == Standing(0, float("inf")) and placed[1] == Standing(0, float("inf"))
    assert placed[2].crowding == pytest.approx((0.9 - 0.8) / 0.1 + (10 - 5) / 5)


def evolution_with(
    population: list[tuple[str, dict[str, float]]], constraints: list[str] | None = None, **kwargs: Any
) -> RegularizedEvolutionTuner:
    tuner = RegularizedEvolutionTuner(seed=0, **kwargs)
    tuner.update_objectives(Objectives.from_config(OBJECTIVES, constraints))
    tuner.update_search_space(SPACE)
    tuner.import_data(
        [{"parameter": {f"k{i}": arch[i] for i in range(4)}, "value": value} for arch, value in population]
    )
    return tuner


def parent_of(child: dict[str, Any], population: list[str]) -> str:
    """The member the child differs from in one key (members differ from each other in all four)."""
    arch = "".join(child[f"k{i}"]["_value"] for i in range(4))
    near = [p for p in population if sum(x != y for x, y in zip(p, arch, strict=True)) == 1]
    return near[0] if len(near) == 1 else "?"


def test_evolution_with_objectives_picks_non_dominated_parents() -> None:
    # "aaaa" and "bbbb" are Pareto-optimal; "cccc" is dominated by "aaaa", "dddd" by both
    population = [
        ("aaaa", result(0.9, 10)),
        ("bbbb", result(0.8, 5)),
        ("cccc", result(0.85, 12)),
        ("dddd", result(0.5, 30)),
    ]
    tuner = evolution_with(population, population_size=4, sample_size=4)
    parents = {parent_of(tuner.generate_parameters(i), [p for p, _ in population]) for i in range(6)}
    assert parents <= {"aaaa", "bbbb"}


def test_evolution_with_objectives_prefers_feasible_parents_to_an_infeasible_dominating_one() -> None:
    # "aaaa" is more accurate and faster than every other member, but breaks the latency bound
    population = [
        ("aaaa", result(0.99, 25)),
        ("bbbb", result(0.5, 15)),
        ("cccc", result(0.6, 18)),
        ("dddd", result(0.4, 12)),
    ]
    tuner = evolution_with(population, ["latency_ms <= 20"], population_size=4, sample_size=4)
    parents = {parent_of(tuner.generate_parameters(i), [p for p, _ in population]) for i in range(6)}
    assert parents and parents <= {"bbbb", "cccc", "dddd"}


def test_evolution_with_objectives_still_ages_out_the_oldest_member_when_full() -> None:
    population = [("aaaa", result(0.9, 10)), ("dddd", result(0.5, 30)), ("bbbb", result(0.8, 5))]
    tuner = evolution_with(population, population_size=2, sample_size=1)
    kept = ["".join(p[f"k{i}"]["_value"] for i in range(4)) for p, _ in tuner._population]
    assert kept == ["dddd", "bbbb"]  # "aaaa" leaves for its age, though it dominates "dddd"


def test_evolution_with_objectives_skips_results_lacking_a_metric() -> None:
    tuner = evolution_with([("aaaa", {"accuracy": 0.9}), ("bbbb", result(0.8, 5))])
    assert [score for _, score in tuner._population] == [result(0.8, 5)]


def test_evolution_checkpoint_round_trips_the_metric_dicts() -> None:
    tuner = evolution_with([("aaaa", result(0.9, 10)), ("bbbb", result(0.8, 5))])
    state = tuner.save_checkpoint()
    fresh = RegularizedEvolutionTuner(seed=1)
    fresh.update_objectives(Objectives.from_config(OBJECTIVES))
    fresh.update_search_space(SPACE)
    fresh.load_checkpoint(state)
    assert list(fresh._population) == list(tuner._population)
    assert fresh.generate_parameters(7) == tuner.generate_parameters(7)
