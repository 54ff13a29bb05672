"""The predictor tuner's promises: it learns, it stays useful while results are out, it encodes every discrete type.

The base contract (seeds, checkpoints, imports, exhaustion, failures) is tests/contracts/test_tuner.py.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from spaces import inputs, layer, space

from manager.config import TunerConfig
from manager.tuners.base import NoMoreTrials, Tuner, TunerError
from manager.tuners.predictor_encoding import GenomeSpace
from manager.tuners.registry import create_tuner
from trials.errors import SearchSpaceError
from trials.searchspace import SearchSpace

#: Six keys of five operations, as a NAS-Bench-201 cell (15,625 architectures).
CELL = space({f"e{i}": layer("a", "b", "c", "d", "e") for i in range(6)})


def predictor(search_space: SearchSpace, seed: int = 0, **class_args: Any) -> Tuner:
    tuner = create_tuner(TunerConfig(name="Predictor", class_args={"seed": seed, **class_args}))
    tuner.update_search_space(search_space)
    return tuner


def decisive(arch: dict[str, Any]) -> float:
    """One key decides the score: e0's index (e is best), plus a little from the others."""
    return arch["e0"]["_idx"] + 0.01 * sum(arch[f"e{i}"]["_idx"] for i in range(1, 6))


def run(tuner: Tuner, trials: int, score: Any = decisive) -> list[dict[str, Any]]:
    archs = []
    for parameter_id in range(trials):
        arch = tuner.generate_parameters(parameter_id)
        archs.append(arch)
        tuner.receive_trial_result(parameter_id, arch, score(arch))
        tuner.trial_end(parameter_id, True)
    return archs


def share_with_e0_best(archs: list[dict[str, Any]], best: int = 4) -> float:
    return sum(arch["e0"]["_idx"] == best for arch in archs) / len(archs)


# -- it learns ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 4])
def test_after_the_random_start_most_proposals_have_the_choice_that_decides_the_score(seed: int) -> None:
    archs = run(predictor(CELL, seed), 40)
    assert share_with_e0_best(archs[10:]) >= 0.6  # random search: 0.2
    assert share_with_e0_best(archs[10:]) > share_with_e0_best(
        run(predictor(CELL, seed, initial_trials=40), 40)
    )


def test_a_value_no_result_has_shown_is_still_tried() -> None:
    rng = random.Random(0)
    without_e = [  # e0 never takes its best value, "e"
        {key: {"_idx": rng.randrange(4 if key == "e0" else 5)} for key in (f"e{i}" for i in range(6))}
        for _ in range(16)
    ]
    earlier = [{key: "abcde"[value["_idx"]] for key, value in arch.items()} for arch in without_e]
    tuner = predictor(CELL, 10, initial_trials=1)
    tuner.import_data(
        [{"parameter": p, "value": decisive(a)} for p, a in zip(earlier, without_e, strict=True)]
    )
    assert share_with_e0_best(run(tuner, 20)) >= 0.5


def test_in_minimize_mode_it_seeks_the_lowest_score() -> None:
    archs = run(predictor(CELL, 3, optimize_mode="minimize"), 40)
    assert share_with_e0_best(archs[10:], best=0) >= 0.6


def test_it_learns_which_inputs_to_choose_when_any_number_may_be_chosen() -> None:
    wiring = space({"op": layer("a", "b"), "skip": inputs(5, None)})
    archs = run(predictor(wiring, 4, initial_trials=8), 30, lambda arch: float(4 in arch["skip"]["_idx"]))
    assert {len(arch["skip"]["_idx"]) for arch in archs} >= {1, 2, 3}  # the number chosen varies
    assert sum(4 in arch["skip"]["_idx"] for arch in archs[8:]) / len(archs[8:]) >= 0.7


def test_plain_local_search_proposes_a_neighbour_of_the_best_architecture() -> None:
    tuner = predictor(CELL, 5, predictor="none", initial_trials=6)
    archs = run(tuner, 6)
    best = max(archs, key=decisive)
    child = tuner.generate_parameters(6)
    assert sum(child[key] != best[key] for key in best) == 1


# -- asynchronous ---------------------------------------------------------------------------------


def test_proposals_made_while_results_are_out_all_differ_from_each_other_and_from_earlier_ones() -> None:
    tuner = predictor(CELL, 6)
    done = run(tuner, 12)
    pending = [tuner.generate_parameters(parameter_id) for parameter_id in range(12, 28)]
    frozen = {json.dumps(arch, sort_keys=True) for arch in done + pending}
    assert len(frozen) == len(done) + len(pending)
    assert share_with_e0_best(pending) >= 0.5  # still guided, not random, while nothing comes back


def test_every_architecture_once_then_no_more_trials() -> None:
    small = space({"a": layer("x", "y", "z"), "b": inputs(3, 1), "c": {"_type": "randint", "_value": [0, 3]}})
    tuner = predictor(small, 7, initial_trials=3)
    archs = run(tuner, 27, lambda arch: random.Random(json.dumps(arch, sort_keys=True)).random())
    assert len({json.dumps(arch, sort_keys=True) for arch in archs}) == 27
    with pytest.raises(NoMoreTrials):
        tuner.generate_parameters(27)


def test_failed_trials_teach_nothing_and_break_nothing() -> None:
    tuner = predictor(CELL, 8, initial_trials=4)
    for parameter_id in range(20):
        arch = tuner.generate_parameters(parameter_id)
        if parameter_id % 3 == 0:
            tuner.trial_end(parameter_id, False)
        else:
            tuner.receive_trial_result(parameter_id, arch, decisive(arch))
            tuner.trial_end(parameter_id, True)
    assert CELL.parse_architecture(tuner.generate_parameters(20))


def test_a_restored_tuner_proposes_what_the_uninterrupted_one_proposes_once_the_predictor_leads() -> None:
    tuner = predictor(CELL, 9, initial_trials=5)
    run(tuner, 17)
    state = json.loads(json.dumps(tuner.save_checkpoint()))
    restored = predictor(CELL, 77, initial_trials=5)
    restored.load_checkpoint(state)
    assert run(restored, 12) == run(tuner, 12)


# -- encoding -------------------------------------------------------------------------------------


def test_every_discrete_type_has_its_feature_block() -> None:
    mixed = space(
        {
            "op": layer("a", "b", "c"),
            "pick": inputs(4, 2),
            "any": inputs(3, None),
            "width": {"_type": "choice", "_value": [16, 32]},
            "depth": {"_type": "randint", "_value": [2, 7]},
        }
    )
    genomes = GenomeSpace(mixed, "PredictorTuner")
    arch = {"op": "c", "pick": ["in3", "in1"], "any": [], "width": 32, "depth": 4}
    genome = genomes.encode(arch)
    one_hot_op, multi_hot_pick, multi_hot_any, one_hot_width, scaled_depth = (
        [0, 0, 1],
        [0, 1, 0, 1],
        [0, 0, 0],
        [0, 1],
        [0.5],
    )
    assert genomes.features(genome) == [
        *one_hot_op,
        *multi_hot_pick,
        *multi_hot_any,
        *one_hot_width,
        *scaled_depth,
    ]
    assert genomes.decode(genome) == {
        "op": {"_value": "c", "_idx": 2},
        "pick": {"_value": ["in1", "in3"], "_idx": [1, 3]},
        "any": {"_value": [], "_idx": []},
        "width": 32,
        "depth": 4,
    }


def test_a_neighbour_changes_exactly_one_key_and_every_one_key_change_is_a_neighbour() -> None:
    mixed = space({"op": layer("a", "b", "c"), "pick": inputs(4, 2), "any": inputs(3, None)})
    genomes = GenomeSpace(mixed, "PredictorTuner")
    genome = genomes.encode({"op": "a", "pick": ["in0", "in1"], "any": ["in2"]})
    found = genomes.neighbours(genome, random.Random(0))
    assert len(found) == len(set(found)) == 2 + 2 * 2 + 3
    assert all(sum(a != b for a, b in zip(n, genome, strict=True)) == 1 for n in found)


def test_a_continuous_type_is_refused_naming_the_key() -> None:
    mixed = space({"op": layer("a", "b"), "lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]}})
    tuner = create_tuner(TunerConfig(name="Predictor", class_args={"seed": 0}))
    with pytest.raises(SearchSpaceError, match=r"'lr'.*PredictorTuner.*loguniform"):
        tuner.update_search_space(mixed)


@pytest.mark.parametrize(
    ("class_args", "field"),
    [
        ({"initial_trials": 0}, "initial_trials"),
        ({"parents": "5"}, "parents"),
        ({"predictor": "gp"}, "predictor"),
        ({"optimize_mode": "up"}, "optimize_mode"),
    ],
)
def test_a_bad_class_argument_is_refused_naming_it(class_args: dict[str, Any], field: str) -> None:
    with pytest.raises(TunerError, match=rf"tuner.classArgs.{field}"):
        create_tuner(TunerConfig(name="Predictor", class_args=class_args))
