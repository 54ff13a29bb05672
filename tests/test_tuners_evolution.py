"""RegularizedEvolutionTuner: aging evolution, asynchronous, one-key mutations.

What every built-in promises (valid proposals, seeds, checkpoints, imports, failures) is
tested once in tests/contracts/test_tuner.py.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from spaces import inputs, layer, space

from manager.config import TunerConfig
from manager.tuners.base import TunerError
from manager.tuners.evolution import RegularizedEvolutionTuner
from manager.tuners.registry import check_tuner_config, create_tuner
from trials.searchspace import SearchSpace

#: Six keys of five candidates: 15,625 architectures.
WIDE = space({f"k{i}": layer(*"abcde") for i in range(6)})

EVERY_TYPE = space(
    {
        "conv": layer("a", "b", "c"),
        "pick2": inputs(4, 2),
        "any": inputs(3, None),
        "none": inputs(2, 0),
        "bs": {"_type": "choice", "_value": [16, 32, 64]},
        "depth": {"_type": "randint", "_value": [2, 9]},
        "drop": {"_type": "uniform", "_value": [0.0, 0.5]},
        "lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
        "width": {"_type": "quniform", "_value": [8, 64, 8]},
        "shift": {"_type": "normal", "_value": [0.0, 1.0]},
    }
)


def evolution(search_space: SearchSpace, **kwargs: Any) -> RegularizedEvolutionTuner:
    kwargs.setdefault("seed", 0)
    tuner = RegularizedEvolutionTuner(**kwargs)
    tuner.update_search_space(search_space)
    return tuner


def digits(arch: dict[str, Any]) -> tuple[int, ...]:
    return tuple(arch[key]["_idx"] for key in sorted(arch))


def distance(a: dict[str, Any], b: dict[str, Any]) -> int:
    return sum(x != y for x, y in zip(digits(a), digits(b), strict=True))


def score(arch: dict[str, Any]) -> float:
    """A planted optimum: every key at candidate 0."""
    return float(sum(d == 0 for d in digits(arch)))


def run(tuner: RegularizedEvolutionTuner, trials: int, objective: Any = score) -> list[dict[str, Any]]:
    archs = []
    for i in range(trials):
        arch = tuner.generate_parameters(i)
        archs.append(arch)
        tuner.receive_trial_result(i, arch, objective(arch))
        tuner.trial_end(i, True)
    return archs


def test_every_choice_type_gets_valid_values_through_many_generations() -> None:
    tuner = create_tuner(TunerConfig(name="RegularizedEvolution", class_args={"seed": 3, "sample_size": 2}))
    tuner.update_search_space(EVERY_TYPE)
    for i in range(300):  # CheckedTuner rejects anything outside the space
        arch = tuner.generate_parameters(i)
        assert arch["width"] % 8 == 0 and 8 <= arch["width"] <= 64
        assert 2 <= arch["depth"] < 9 and 0.0 <= arch["drop"] <= 0.5 and 1e-4 <= arch["lr"] <= 1e-1
        assert len(arch["pick2"]["_idx"]) == 2 and arch["none"]["_idx"] == []
        tuner.receive_trial_result(i, arch, arch["drop"] + arch["depth"])


def test_a_child_differs_from_its_parent_in_exactly_one_key() -> None:
    # population 1: the parent is always the latest result
    tuner = evolution(WIDE, population_size=1, sample_size=1)
    parent = tuner.generate_parameters(0)
    for i in range(1, 50):
        tuner.receive_trial_result(i - 1, parent, 1.0)
        child = tuner.generate_parameters(i)
        assert distance(child, parent) == 1
        parent = child


def test_numeric_hyper_parameters_move_within_their_range() -> None:
    numbers = space(
        {
            "depth": {"_type": "randint", "_value": [0, 100]},
            "drop": {"_type": "uniform", "_value": [0.0, 1.0]},
        }
    )
    tuner = evolution(numbers, population_size=1, sample_size=1)
    parent = tuner.generate_parameters(0)
    for i in range(1, 200):
        tuner.receive_trial_result(i - 1, parent, 1.0)
        child = tuner.generate_parameters(i)
        assert 0 <= child["depth"] < 100 and 0.0 <= child["drop"] <= 1.0
        moved = [key for key in ("depth", "drop") if child[key] != parent[key]]
        assert len(moved) == 1
        if moved == ["depth"]:
            assert abs(child["depth"] - parent["depth"]) <= 10  # a step, not a fresh draw
        parent = child


def test_aging_removes_the_oldest_member_even_when_it_is_the_best() -> None:
    tuner = evolution(WIDE, population_size=1, sample_size=1)
    best = tuner.generate_parameters(0)
    tuner.receive_trial_result(0, best, 100.0)
    worse = tuner.generate_parameters(1)
    tuner.receive_trial_result(1, worse, 1.0)  # the best has aged out
    assert distance(tuner.generate_parameters(2), worse) == 1


def test_the_tournament_picks_the_best_and_minimize_picks_the_lowest() -> None:
    far_apart = [
        {f"k{i}": {"_value": "a", "_idx": 0} for i in range(6)},
        {f"k{i}": {"_value": "b", "_idx": 1} for i in range(6)},
    ]
    for mode, winner in (("maximize", 0), ("minimize", 1)):
        tuner = evolution(WIDE, population_size=2, sample_size=2, optimize_mode=mode, seed=5)
        tuner.import_data(
            [{"parameter": far_apart[0], "value": 10.0}, {"parameter": far_apart[1], "value": 1.0}]
        )
        children = [tuner.generate_parameters(i) for i in range(20)]
        # sample_size 2 with replacement: the winner is the parent of most children
        from_winner = sum(distance(c, far_apart[winner]) == 1 for c in children)
        assert from_winner >= 12, (mode, from_winner)


def test_failed_trials_and_non_finite_results_never_join_the_population() -> None:
    tuner = evolution(WIDE, population_size=1, sample_size=1)
    parent = tuner.generate_parameters(0)
    tuner.receive_trial_result(0, parent, 1.0)
    failed = tuner.generate_parameters(1)
    tuner.trial_end(1, False)
    nan = tuner.generate_parameters(2)
    tuner.receive_trial_result(2, nan, math.nan)
    assert distance(tuner.generate_parameters(3), parent) == 1
    assert failed != parent


def test_proposes_without_waiting_for_results() -> None:
    tuner = evolution(WIDE)
    pending = [tuner.generate_parameters(i) for i in range(40)]  # no TunerBusy, no barrier
    assert len({json.dumps(a, sort_keys=True) for a in pending}) == 40


def test_imported_results_seed_the_population_and_are_not_proposed_again() -> None:
    tuner = evolution(WIDE, population_size=10, sample_size=10)
    best = {f"k{i}": "a" for i in range(6)}
    records = [{"parameter": best, "value": 99.0}]
    records += [
        {"parameter": {f"k{i}": "abcde"[(i + j) % 5] for i in range(6)}, "value": 1.0} for j in range(1, 10)
    ]
    tuner.import_data(records)
    child = tuner.generate_parameters(0)
    assert sum(v["_value"] != "a" for v in child.values()) == 1  # a mutation of the imported best


def test_searches_better_than_its_random_start_on_a_planted_optimum() -> None:
    archs = run(evolution(WIDE, seed=4), 150)
    assert max(score(a) for a in archs) == 6  # 1 in 15,625 by chance


def test_bad_class_arguments_are_refused_naming_the_field() -> None:
    with pytest.raises(TunerError, match=r"classArgs\.sample_size"):
        check_tuner_config(TunerConfig(name="Evolution", class_args={"population_size": 5, "sample_size": 6}))
    with pytest.raises(TunerError, match=r"classArgs\.optimize_mode"):
        check_tuner_config(TunerConfig(name="RegularizedEvolutionTuner", class_args={"optimize_mode": "up"}))
