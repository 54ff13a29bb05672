"""RandomTuner: uniform, never repeating in a finite space, its seen set across checkpoints and spaces.

What every built-in promises (valid proposals, seeds, checkpoints, imports, failures) is
tested once in tests/contracts/test_tuner.py.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from typing import Any

import pytest
from spaces import inputs, layer, space

from manager.tuners.base import NoMoreTrials, TunerError
from manager.tuners.random import RandomTuner
from trials.errors import SearchSpaceError
from trials.searchspace import SearchSpace


def freeze(arch: dict[str, Any]) -> str:
    return json.dumps(arch, sort_keys=True)


@pytest.fixture
def tiny_space() -> SearchSpace:
    """3 x 2 = 6 architectures."""
    return space({"conv1": layer("conv3x3", "conv5x5", "maxpool"), "skip": inputs(2, 1)})


def tuner_on(search_space: SearchSpace, seed: int | None = 0) -> RandomTuner:
    tuner = RandomTuner(seed=seed)
    tuner.update_search_space(search_space)
    return tuner


def draw(tuner: RandomTuner, count: int, start: int = 0) -> list[dict[str, Any]]:
    return [tuner.generate_parameters(i) for i in range(start, start + count)]


# -- exhaustion ----------------------------------------------------------------------------------


def test_exhausts_a_space_of_thousands_quickly() -> None:
    search_space = space(
        {"a": layer(*"abcdefghij"), "b": layer(*"abcdefghij"), "c": inputs(6, 3), "d": inputs(4, 2)}
    )
    assert search_space.size() == 10 * 10 * 20 * 6
    tuner = tuner_on(search_space)
    started = time.perf_counter()
    seen = {freeze(arch) for arch in draw(tuner, 12_000)}
    assert len(seen) == 12_000
    with pytest.raises(NoMoreTrials):
        tuner.generate_parameters(12_000)
    assert time.perf_counter() - started < 10


def test_huge_finite_space_is_sampled_without_enumerating() -> None:
    search_space = space({f"cell{i}": layer("a", "b", "c", "d") for i in range(40)})
    tuner = tuner_on(search_space)
    started = time.perf_counter()
    archs = draw(tuner, 2000)
    assert len({freeze(a) for a in archs}) == 2000
    assert time.perf_counter() - started < 5


def test_infinite_space_never_runs_out() -> None:
    tuner = tuner_on(space({"conv": layer("a", "b"), "lr": {"_type": "uniform", "_value": [0.0, 1.0]}}))
    assert len(draw(tuner, 500)) == 500


# -- uniformity ----------------------------------------------------------------------------------


def assert_uniform(counts: Counter[Any], outcomes: int, draws: int) -> None:
    """Every outcome seen, each within 25% of its expected count (far beyond chance at these sizes)."""
    assert len(counts) == outcomes
    expected = draws / outcomes
    assert all(abs(c - expected) < 0.25 * expected for c in counts.values()), counts


def test_layer_choice_is_uniform() -> None:
    tuner = tuner_on(space({f"l{i}": layer("a", "b", "c", "d") for i in range(12)}))
    counts = Counter(arch["l5"]["_value"] for arch in draw(tuner, 4000))
    assert_uniform(counts, 4, 4000)


def test_input_choice_picks_exactly_n_chosen_distinct_sorted_candidates() -> None:
    tuner = tuner_on(space({"skip": inputs(5, 2), "x": {"_type": "uniform", "_value": [0, 1]}}))
    archs = draw(tuner, 3000)
    for arch in archs:
        idx = arch["skip"]["_idx"]
        assert len(idx) == 2 and idx == sorted(set(idx))
        assert arch["skip"]["_value"] == [f"in{i}" for i in idx]
    assert_uniform(Counter(tuple(a["skip"]["_idx"]) for a in archs), math.comb(5, 2), 3000)


def test_input_choice_with_null_n_chosen_draws_any_subset_uniformly() -> None:
    tuner = tuner_on(space({"skip": inputs(3, None), "x": {"_type": "uniform", "_value": [0, 1]}}))
    archs = draw(tuner, 4000)
    assert_uniform(Counter(tuple(a["skip"]["_idx"]) for a in archs), 8, 4000)
    assert any(a["skip"]["_idx"] == [] for a in archs)


def test_input_choice_with_zero_n_chosen_chooses_nothing() -> None:
    tuner = tuner_on(space({"skip": inputs(3, 0)}))
    assert tuner.generate_parameters(0) == {"skip": {"_value": [], "_idx": []}}
    with pytest.raises(NoMoreTrials):
        tuner.generate_parameters(1)


def test_choice_is_uniform_over_its_options() -> None:
    tuner = tuner_on(
        space(
            {
                "act": {"_type": "choice", "_value": ["relu", "gelu", "tanh"]},
                "x": {"_type": "normal", "_value": [0, 1]},
            }
        )
    )
    assert_uniform(Counter(a["act"] for a in draw(tuner, 3000)), 3, 3000)


# -- hyper-parameter ranges and rounding ---------------------------------------------------------


def samples(kind: str, args: list[Any], count: int = 2000) -> list[Any]:
    tuner = tuner_on(space({"p": {"_type": kind, "_value": args}}))
    return [arch["p"] for arch in draw(tuner, count)]


def is_multiple(value: float, q: float) -> bool:
    return abs(value / q - round(value / q)) < 1e-9


def test_randint_gives_whole_numbers_from_low_to_below_high() -> None:
    values = samples("randint", [-2, 3], count=5)
    assert sorted(values) == [-2, -1, 0, 1, 2]
    assert all(isinstance(v, int) for v in values)


def test_uniform_stays_in_range_and_spreads() -> None:
    values = samples("uniform", [2.0, 4.0])
    assert all(2.0 <= v <= 4.0 for v in values)
    assert min(values) < 2.1 and max(values) > 3.9


def test_quniform_is_rounded_to_q_and_clipped_to_range() -> None:
    values = samples("quniform", [0.0, 1.0, 0.25])
    assert all(0.0 <= v <= 1.0 and is_multiple(v, 0.25) for v in values)
    assert {round(v / 0.25) for v in values} == {0, 1, 2, 3, 4}


def test_quniform_with_whole_q_gives_whole_numbers() -> None:
    values = samples("quniform", [16, 128, 16])
    assert all(isinstance(v, int) and v % 16 == 0 and 16 <= v <= 128 for v in values)


def test_loguniform_stays_in_range_and_is_log_spread() -> None:
    values = samples("loguniform", [1e-4, 1e-1])
    assert all(1e-4 <= v <= 1e-1 for v in values)
    below_1e3 = sum(v < 1e-3 for v in values) / len(values)
    assert 0.25 < below_1e3 < 0.42  # one decade of three


def test_qloguniform_is_rounded_to_q_and_in_range() -> None:
    values = samples("qloguniform", [1.0, 1000.0, 10.0])
    assert all(1.0 <= v <= 1000.0 and (v == 1.0 or is_multiple(v, 10.0)) for v in values)


def test_normal_has_the_given_mean_and_sigma() -> None:
    values = samples("normal", [5.0, 2.0], count=4000)
    mean = sum(values) / len(values)
    sigma = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    assert abs(mean - 5.0) < 0.15 and abs(sigma - 2.0) < 0.15


def test_qnormal_is_rounded_to_q() -> None:
    assert all(is_multiple(v, 0.5) for v in samples("qnormal", [0.0, 3.0, 0.5]))


def test_lognormal_is_positive_with_log_mean() -> None:
    values = samples("lognormal", [1.0, 0.5], count=4000)
    assert all(v > 0 for v in values)
    assert abs(sum(math.log(v) for v in values) / len(values) - 1.0) < 0.05


def test_qlognormal_is_rounded_to_q() -> None:
    assert all(is_multiple(v, 2.0) for v in samples("qlognormal", [3.0, 1.0, 2.0]))


# -- reproducibility and checkpoints ----------------------------------------------------------


@pytest.fixture
def mixed_space() -> SearchSpace:
    """4 * 3 * C(4,2)=6 * 2 = 144 architectures."""
    return space(
        {
            "conv": layer("a", "b", "c", "d"),
            "pool": layer("max", "avg", "none"),
            "skip": inputs(4, 2),
            "bs": {"_type": "choice", "_value": [32, 64]},
        }
    )


def test_checkpoint_restore_continues_the_same_sequence(mixed_space: SearchSpace) -> None:
    original = tuner_on(mixed_space, seed=3)
    draw(original, 30)
    state = json.loads(json.dumps(original.save_checkpoint()))
    restored = RandomTuner()
    restored.load_checkpoint(state)  # before the space: the daemon may restore first
    restored.update_search_space(mixed_space)
    assert draw(restored, 40, start=30) == draw(original, 40, start=30)


def test_checkpoint_of_another_space_keeps_no_seen_set(
    tiny_space: SearchSpace, mixed_space: SearchSpace
) -> None:
    other = tuner_on(mixed_space)
    draw(other, 100)
    tuner = tuner_on(tiny_space)
    tuner.load_checkpoint(other.save_checkpoint())
    assert len({freeze(a) for a in draw(tuner, 6)}) == 6


# -- results, imports and new spaces -------------------------------------------------------------


def test_import_ignores_records_that_do_not_fit_the_space(tiny_space: SearchSpace) -> None:
    tuner = tuner_on(tiny_space)
    tuner.import_data([{"parameter": {"other": 1}, "value": 0.1}, {"value": 2}, "junk"])  # type: ignore[list-item]
    assert len({freeze(a) for a in draw(tuner, 6)}) == 6


def test_a_reported_architecture_counts_as_seen(tiny_space: SearchSpace) -> None:
    everything = draw(tuner_on(tiny_space, seed=5), 6)
    tuner = tuner_on(tiny_space, seed=9)
    for i, arch in enumerate(everything[:5]):
        tuner.receive_trial_result(100 + i, arch, 0.9)
    assert tuner.generate_parameters(0) == everything[5]


def test_a_new_search_space_starts_a_fresh_seen_set(tiny_space: SearchSpace) -> None:
    tuner = tuner_on(tiny_space)
    draw(tuner, 6)
    tuner.update_search_space(space({"conv1": layer("x", "y")}))
    assert {a["conv1"]["_value"] for a in draw(tuner, 2)} == {"x", "y"}


def test_the_same_search_space_again_keeps_the_seen_set(tiny_space: SearchSpace) -> None:
    tuner = tuner_on(tiny_space)
    draw(tuner, 6)
    tuner.update_search_space(SearchSpace.from_json(tiny_space.to_json()))
    with pytest.raises(NoMoreTrials):
        tuner.generate_parameters(6)


# -- refusals -------------------------------------------------------------------------------------


def test_generate_before_a_search_space_is_a_tuner_error() -> None:
    with pytest.raises(TunerError, match="update_search_space must come before"):
        RandomTuner().generate_parameters(0)


@pytest.mark.parametrize(
    ("args", "field"),
    [({"optimize_mode": "max"}, "optimize_mode"), ({"seed": "abc"}, "seed"), ({"seed": True}, "seed")],
)
def test_bad_class_args_name_the_field(args: dict[str, Any], field: str) -> None:
    with pytest.raises(TunerError, match=rf"^tuner\.classArgs\.{field}: must be"):
        RandomTuner(**args)


def test_nested_choice_space_is_refused_naming_the_key() -> None:
    nested = {
        "opt": {"_type": "choice", "_value": [{"_name": "sgd", "lr": {"_type": "uniform", "_value": [0, 1]}}]}
    }
    with pytest.raises(SearchSpaceError, match="'opt': nested choices"):
        RandomTuner().update_search_space(space(nested))
