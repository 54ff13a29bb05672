"""GridSearchTuner: every architecture once, in a fixed order; quantized types on the grid.

What every built-in promises (valid proposals, exhaustion, checkpoints, imports, failures) is
tested once in tests/contracts/test_tuner.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from spaces import inputs, layer, space

from manager.tuners.base import NoMoreTrials, TunerError
from manager.tuners.gridsearch import GridSearchTuner
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


def test_input_choice_goes_through_its_combinations_in_order() -> None:
    archs = drain(grid(space({"x": inputs(4, 2)})))
    assert [a["x"]["_idx"] for a in archs] == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]


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


def test_a_checkpoint_for_another_space_is_refused() -> None:
    state = grid(space({"a": layer("x", "y")})).save_checkpoint()
    with pytest.raises(TunerError, match="another search space"):
        grid(space({"a": layer("x", "y", "z")})).load_checkpoint(state)
