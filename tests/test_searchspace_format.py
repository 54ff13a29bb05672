"""The search-space and architecture JSON formats (trials/searchspace.py)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trials.errors import ArchitectureError, SearchSpaceError
from trials.searchspace import InputDecision, LayerDecision, SearchSpace, architecture_to_json

SPACE = {
    "conv1": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "maxpool"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["in0", "in1", "conv1"], "n_chosen": 2}},
    "any": {"_type": "input_choice", "_value": {"candidates": ["a", "b"], "n_chosen": None}},
    "lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
    "width": {"_type": "choice", "_value": [16, 32]},
}


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace.from_json(SPACE)


def test_round_trip_keeps_nni_format(space: SearchSpace) -> None:
    assert space.to_json() == SPACE


def test_dumps_sorts_keys_with_indent_two(space: SearchSpace) -> None:
    text = space.dumps()
    assert list(json.loads(text)) == sorted(SPACE)
    assert text.startswith('{\n  "any": {')


def test_full_form_architecture_is_parsed_to_typed_decisions(space: SearchSpace) -> None:
    arch = {
        "conv1": {"_value": "conv5x5", "_idx": 1},
        "skip": {"_value": ["in1", "conv1"], "_idx": [1, 2]},
        "any": {"_value": [], "_idx": []},
        "lr": 0.01,
        "width": 32,
    }
    decisions = space.parse_architecture(arch)
    assert decisions["conv1"] == LayerDecision(1, "conv5x5")
    assert decisions["skip"] == InputDecision((1, 2), ("in1", "conv1"))
    assert architecture_to_json(decisions) == arch


def test_short_form_by_name_or_index_is_accepted(space: SearchSpace) -> None:
    decisions = space.parse_architecture(
        {"conv1": "maxpool", "skip": ["in0", 2], "any": "b", "lr": 0.1, "width": 16}
    )
    assert decisions["conv1"] == LayerDecision(2, "maxpool")
    assert decisions["skip"] == InputDecision((0, 2), ("in0", "conv1"))
    assert decisions["any"] == InputDecision((1,), ("b",))


def test_index_is_the_truth_when_candidate_names_repeat() -> None:
    space = SearchSpace.from_json(
        {"s": {"_type": "input_choice", "_value": {"candidates": ["", ""], "n_chosen": 1}}}
    )
    assert space.parse_architecture({"s": {"_value": [""], "_idx": [1]}})["s"] == InputDecision((1,), ("",))
    with pytest.raises(ArchitectureError, match="ambiguous"):
        space.parse_architecture({"s": [""]})


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ({"conv1": {"_value": "conv5x5", "_idx": 7}}, "'conv1': index 7 out of range 0..2"),
        (
            {"conv1": {"_value": "conv3x3", "_idx": 1}},
            "'conv1': _idx 1 is 'conv5x5' but _value says 'conv3x3'",
        ),
        ({"conv1": "conv3x33"}, "unknown candidate 'conv3x33' \\(did you mean 'conv3x3'\\?\\)"),
        ({"conv1": ["conv3x3", "maxpool"]}, "'conv1': a layer choice takes exactly one candidate"),
        ({"skip": ["in0"]}, "'skip': must choose exactly 2 input\\(s\\), got 1"),
        ({"skip": ["in0", "in0"]}, "'skip': a candidate is chosen twice"),
        (
            {"skip": {"_value": ["in0", "in1"], "_idx": [0, 2]}},
            "'skip': _idx \\[0, 2\\] does not match _value",
        ),
        ({"conv1": {"_idx": 0, "_score": 1}}, "'conv1': expected _value and/or _idx"),
        ({"width": 64}, "'width': 64 is not one of \\[16, 32\\]"),
        ({"lr": 5.0}, "'lr': loguniform takes a number in"),
    ],
)
def test_bad_decision_names_the_key_and_what_is_allowed(space: SearchSpace, arch: dict, message: str) -> None:
    full = {"conv1": "conv3x3", "skip": ["in0", "in1"], "any": [], "lr": 0.01, "width": 16} | arch
    with pytest.raises(ArchitectureError, match=message):
        space.parse_architecture(full)


def test_unknown_key_is_refused_with_a_suggestion(space: SearchSpace) -> None:
    arch = {"conv1": "conv3x3", "skip": ["in0", "in1"], "any": [], "lr": 0.01, "width": 16, "conv_1": "x"}
    with pytest.raises(ArchitectureError, match="unknown key 'conv_1' \\(did you mean 'conv1'\\?\\)"):
        space.parse_architecture(arch)


def test_missing_key_is_refused(space: SearchSpace) -> None:
    with pytest.raises(ArchitectureError, match="no decision for key\\(s\\) width"):
        space.parse_architecture({"conv1": "conv3x3", "skip": ["in0", "in1"], "any": [], "lr": 0.01})


def test_duplicate_key_in_an_architecture_file_is_refused(tmp_path) -> None:
    path = tmp_path / "space.json"
    path.write_text('{"a": {"_type": "choice", "_value": [1]}, "a": {"_type": "choice", "_value": [2]}}')
    with pytest.raises(SearchSpaceError, match="key 'a' appears twice"):
        SearchSpace.load(path)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"_type": "layer_choise", "_value": ["a"]},
            "unknown _type 'layer_choise' \\(did you mean 'layer_choice'\\?\\)",
        ),
        ({"_type": "layer_choice", "_value": []}, "non-empty list of candidate names"),
        ({"_type": "layer_choice", "_value": [1, 2]}, "candidate names must be strings"),
        (
            {"_type": "input_choice", "_value": {"candidates": ["a"], "n_chosen": 2}},
            "n_chosen must be null or a whole number from 0 to 1",
        ),
        ({"_type": "input_choice", "_value": {"candidates": ["a"], "k": 1}}, "unknown field 'k'"),
        ({"_type": "uniform", "_value": [1, 0]}, "uniform needs low < high"),
        ({"_type": "loguniform", "_value": [0, 1]}, "loguniform needs 0 < low"),
        ({"_type": "quniform", "_value": [0, 1]}, "must be 3 finite numbers"),
        ({"_type": "randint", "_value": [0.5, 3]}, "randint bounds must be whole numbers"),
        ({"_type": "normal", "_value": [0, -1]}, "normal needs sigma > 0"),
        ({"_type": "choice"}, "needs both _type and _value"),
        ({"_type": "choice", "_value": [1], "extra": 0}, "unknown field 'extra'"),
    ],
)
def test_bad_search_space_entry_names_the_key(entry: dict, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=f"'k1': .*{message}"):
        SearchSpace.from_json({"k1": entry})


def test_size_counts_architectures_of_a_finite_space() -> None:
    space = SearchSpace.from_json(
        {
            "a": {"_type": "layer_choice", "_value": ["x", "y", "z"]},
            "b": {"_type": "input_choice", "_value": {"candidates": ["p", "q", "r", "s"], "n_chosen": 2}},
            "c": {"_type": "input_choice", "_value": {"candidates": ["p", "q"], "n_chosen": None}},
            "d": {"_type": "randint", "_value": [0, 5]},
        }
    )
    assert space.size() == 3 * 6 * 4 * 5


def test_size_is_none_for_a_continuous_space(space: SearchSpace) -> None:
    assert space.size() is None


def test_default_architecture_takes_first_candidates(space: SearchSpace) -> None:
    arch = architecture_to_json(space.default_architecture())
    assert arch["conv1"] == {"_value": "conv3x3", "_idx": 0}
    assert arch["skip"] == {"_value": ["in0", "in1"], "_idx": [0, 1]}
    assert arch["any"] == {"_value": ["a", "b"], "_idx": [0, 1]}
    space.parse_architecture(arch)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
entries = st.fixed_dictionaries(
    {
        "_type": st.sampled_from(["layer_choice", "input_choice", "choice", "uniform", "randint", "bogus"]),
        "_value": json_values,
    }
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), entries | json_values, max_size=4) | json_values)
def test_any_json_gives_a_space_or_a_search_space_error(obj) -> None:
    with contextlib.suppress(SearchSpaceError):
        SearchSpace.from_json(obj)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*list(SPACE), "other"]), json_values, max_size=6))
def test_any_json_gives_an_architecture_or_an_architecture_error(arch) -> None:
    with contextlib.suppress(ArchitectureError):
        SearchSpace.from_json(SPACE).parse_architecture(arch)
