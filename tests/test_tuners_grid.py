"""GridSearchTuner: every architecture once, in a fixed order, then NoMoreTrials; resumable."""

from __future__ import annotations

import json
from typing import Any

import pytest
from spaces import inputs, layer, space

from manager.config import TunerConfig
from manager.tuners.base import NoMoreTrials, TunerError
from manager.tuners.gridsearch import GridSearchTuner
from manager.tuners.registry import create_tuner
from trials.errors import SearchSpaceError
from trials.searchspace import SearchSpace


def grid(search_space: SearchSpace) -> GridSearchTuner:
    tuner = GridSearchTuner()
    tuner.update_search_space(search_space)
    return tuner


def drain(tuner: GridSearchTuner, start: int = 0) -> list[dict[str, Any]]:
    out = []
    while True:
        try:
            out.append(tuner.generate_parameters(start + len(out)))
        except NoMoreTrials:
            return out


def test_enumerates_every_architecture_once_with_the_last_key_fastest() -> None:
    archs = drain(grid(space({"conv": layer("a", "b", "c"), "skip": inputs(2, 1)})))
    pairs = [(a["conv"]["_value"], a["skip"]["_idx"]) for a in archs]
    assert pairs == [("a", [0]), ("a", [1]), ("b", [0]), ("b", [1]), ("c", [0]), ("c", [1])]


def test_raises_no_more_trials_after_the_last_point_and_keeps_raising() -> None:
    tuner = grid(space({"conv": layer("a", "b")}))
    drain(tuner)
    for i in range(3):
        with pytest.raises(NoMoreTrials):
            tuner.generate_parameters(10 + i)


def test_input_choice_goes_through_its_combinations_in_order() -> None:
    archs = drain(grid(space({"x": inputs(4, 2)})))
    assert [a["x"]["_idx"] for a in archs] == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]


def test_any_number_of_inputs_enumerates_every_subset() -> None:
    archs = drain(grid(space({"x": inputs(3, None)})))
    assert len(archs) == 8
    assert {tuple(a["x"]["_idx"]) for a in archs} == {
        (),
        (0,),
        (1,),
        (2,),
        (0, 1),
        (0, 2),
        (1, 2),
        (0, 1, 2),
    }


def test_zero_inputs_is_one_point() -> None:
    archs = drain(grid(space({"x": inputs(3, 0), "conv": layer("a", "b")})))
    assert [a["x"] for a in archs] == [{"_value": [], "_idx": []}] * 2


def test_equal_candidate_names_are_told_apart_by_index() -> None:
    archs = drain(grid(space({"skip": inputs(2, 1, names=["", ""])})))
    assert [a["skip"]["_idx"] for a in archs] == [[0], [1]]


def test_categorical_and_quantized_hyper_parameters_form_the_grid() -> None:
    archs = drain(
        grid(
            space(
                {
                    "bs": {"_type": "choice", "_value": [16, 32]},
                    "layers": {"_type": "randint", "_value": [1, 3]},
                    "width": {"_type": "quniform", "_value": [10, 40, 16]},
                }
            )
        )
    )
    assert {a["width"] for a in archs} == {10, 16, 32, 40}
    assert {a["layers"] for a in archs} == {1, 2}
    assert len(archs) == 2 * 2 * 4


def test_continuous_types_are_refused_naming_the_key() -> None:
    with pytest.raises(SearchSpaceError, match=r"'lr'.*GridSearch.*uniform"):
        grid(space({"conv": layer("a"), "lr": {"_type": "uniform", "_value": [0.0, 1.0]}}))


def test_checkpoint_round_trip_continues_where_it_stopped() -> None:
    search_space = space({"a": layer("x", "y", "z"), "b": inputs(3, 1)})
    reference = drain(grid(search_space))
    first = grid(search_space)
    for i in range(4):
        first.generate_parameters(i)
    state = json.loads(json.dumps(first.save_checkpoint()))
    resumed = grid(search_space)
    resumed.load_checkpoint(state)
    assert drain(resumed, start=4) == reference[4:]


def test_imported_architectures_are_skipped() -> None:
    search_space = space({"a": layer("x", "y"), "b": layer("p", "q")})
    tuner = grid(search_space)
    tuner.import_data(
        [{"parameter": {"a": "x", "b": "q"}, "value": 0.5}, {"parameter": {"a": "y", "b": "p"}}]
    )
    pairs = [(a["a"]["_value"], a["b"]["_value"]) for a in drain(tuner)]
    assert pairs == [("x", "p"), ("y", "q")]


def test_a_checkpoint_for_another_space_is_refused() -> None:
    state = grid(space({"a": layer("x", "y")})).save_checkpoint()
    with pytest.raises(TunerError, match="another search space"):
        grid(space({"a": layer("x", "y", "z")})).load_checkpoint(state)


def test_found_by_name_and_its_points_pass_the_daemons_check() -> None:
    tuner = create_tuner(TunerConfig(name="GridSearch", class_args={}))
    tuner.update_search_space(space({"a": layer("x", "y"), "b": inputs(3, None)}))
    assert len(drain(tuner)) == 16  # CheckedTuner parsed every one
