"""NNI's multi-hot architecture form: read wherever an architecture is read, and written back."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from trials.nas import ArchitectureError, InputChoice, LayerChoice, apply_fixed_architecture, parse_model
from trials.searchspace import (
    InputDecision,
    LayerDecision,
    SearchSpace,
    architecture_to_json,
    architecture_to_multi_hot,
)

SPACE = SearchSpace.from_json(
    {
        "conv1": {"_type": "layer_choice", "_value": ["a", "b", "c", "d"]},
        "skip": {"_type": "input_choice", "_value": {"candidates": ["x", "y", "z"], "n_chosen": 2}},
        "any": {"_type": "input_choice", "_value": {"candidates": ["p", "q"], "n_chosen": None}},
        "lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
    }
)
SHORT = {"conv1": "b", "skip": ["x", "z"], "any": [], "lr": 0.01}
MULTI_HOT = {
    "conv1": [False, True, False, False],
    "skip": [True, False, True],
    "any": [False, False],
    "lr": 0.01,
}


class Net(nn.Module):
    """Two layer choices and an input choice over their outputs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        ops = OrderedDict(lin=nn.Linear(4, 4), relu=nn.ReLU(), tanh=nn.Tanh())
        self.first = LayerChoice(ops, key="first")
        self.second = LayerChoice([nn.Linear(4, 4), nn.Identity()], key="second")
        self.skip = InputChoice(choose_from=["first", "second"], n_chosen=1, key="skip")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.first(x)
        return self.skip([a, self.second(a)])


def parse(arch: dict) -> dict:
    return SPACE.parse_architecture(arch)


def test_boolean_multi_hot_gives_the_decisions_of_the_short_form() -> None:
    assert parse(MULTI_HOT) == parse(SHORT)
    assert parse(MULTI_HOT)["conv1"] == LayerDecision(1, "b")
    assert parse(MULTI_HOT)["skip"] == InputDecision((0, 2), ("x", "z"))


def test_float_multi_hot_chooses_the_entries_above_zero() -> None:
    floats = {"conv1": [0.0, 0.9, 0.0, -1.0], "skip": [0.5, 0.0, 1.0], "any": [0.0, 0.0], "lr": 0.01}
    assert parse(floats) == parse(SHORT)


def test_a_list_of_ints_stays_a_list_of_indices() -> None:
    assert parse(SHORT | {"skip": [0, 2], "any": [1]})["any"] == InputDecision((1,), ("q",))


def test_input_choice_without_n_chosen_takes_any_number_of_true_entries() -> None:
    assert parse(MULTI_HOT | {"any": [True, True]})["any"] == InputDecision((0, 1), ("p", "q"))
    assert parse(MULTI_HOT | {"any": [False, False]})["any"] == InputDecision((), ())


def test_both_spellings_apply_to_the_same_model() -> None:
    short = {"first": "lin", "second": "1", "skip": ["second"]}
    multi_hot = {"first": [True, False, False], "second": [False, True], "skip": [False, True]}
    by_name, by_mask = Net(), Net()
    assert apply_fixed_architecture(by_name, short) == apply_fixed_architecture(by_mask, multi_hot)
    assert by_name.state_dict().keys() == by_mask.state_dict().keys()
    x = torch.randn(2, 4)
    assert torch.equal(by_name(x), by_mask(x))


def test_multi_hot_file_applies_like_a_dict(tmp_path: Path) -> None:
    path = tmp_path / "architecture_final.json"
    path.write_text(
        json.dumps({"first": [False, False, True], "second": [True, False], "skip": [True, False]})
    )
    model = Net()
    assert apply_fixed_architecture(model, path)["first"] == {"_value": "tanh", "_idx": 2}
    assert isinstance(model.first, nn.Tanh)


def test_round_trip_decisions_to_multi_hot_and_back() -> None:
    decisions = parse(SHORT)
    multi_hot = architecture_to_multi_hot(SPACE, decisions)
    assert multi_hot == MULTI_HOT
    assert parse(multi_hot) == decisions


def test_multi_hot_export_reads_the_full_form_and_passes_hyper_parameters_through() -> None:
    full = architecture_to_json(parse(SHORT)) | {"batch_size": 64}
    assert architecture_to_multi_hot(SPACE, full) == MULTI_HOT | {"batch_size": 64}


def test_multi_hot_export_refuses_a_decision_for_a_key_the_space_lacks() -> None:
    with pytest.raises(ArchitectureError, match="'conv2' is not a layer or input choice"):
        architecture_to_multi_hot(SPACE, {"conv2": LayerDecision(0, "a")})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"conv1": [False, True, False]},
            "LayerChoice 'conv1': NNI's multi-hot form needs 4 entries \\(one per candidate: a, b, c, d\\), got 3; accepted: ",
        ),
        (
            {"conv1": [False, True, True, False]},
            "LayerChoice 'conv1': .* exactly one true entry, got 2 \\(b, c\\)",
        ),
        ({"conv1": [False] * 4}, "LayerChoice 'conv1': .* exactly one true entry, got 0"),
        (
            {"skip": [True, False, False]},
            "InputChoice 'skip': .* exactly 2 true entries \\(n_chosen\\), got 1",
        ),
        ({"skip": [True, False]}, "InputChoice 'skip': NNI's multi-hot form needs 3 entries"),
        ({"skip": [True, 0, 1]}, "'skip': \\[True, 0, 1\\] mixes booleans or floats with other values"),
        ({"conv1": [0.0, 1, 0.0, 0.0]}, "'conv1': .* mixes booleans or floats with other values"),
    ],
)
def test_bad_multi_hot_names_the_key_and_the_rule(change: dict, message: str) -> None:
    with pytest.raises(ArchitectureError, match=message):
        parse(MULTI_HOT | change)


@pytest.mark.parametrize(
    "value", [True, None, 1.5, {"_value": [True, False, True]}, ["x", True, "z"]], ids=repr
)
def test_value_of_no_known_form_lists_the_accepted_forms(value: object) -> None:
    with pytest.raises(ArchitectureError, match="'skip': .*accepted: .*multi-hot list of 3 booleans"):
        parse(MULTI_HOT | {"skip": value})


def test_layer_choice_given_a_list_of_names_lists_the_accepted_forms() -> None:
    with pytest.raises(ArchitectureError, match="takes exactly one candidate, got a list; accepted: "):
        parse(MULTI_HOT | {"conv1": ["a", "b"]})


class SposLike(nn.Module):
    """Twenty blocks of four candidates keyed as NNI's SPOS export keys them."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(
                LayerChoice([nn.Linear(3, 3), nn.ReLU(), nn.Tanh(), nn.Identity()], key=f"LayerChoice{i}")
                for i in range(1, 21)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


def test_spos_style_multi_hot_file_of_twenty_keys_applies(tmp_path: Path) -> None:
    arch = {f"LayerChoice{i}": [j == i % 4 for j in range(4)] for i in range(1, 21)}
    path = tmp_path / "architecture_final.json"
    path.write_text(json.dumps(arch, indent=2))
    model = SposLike()
    applied = apply_fixed_architecture(model, path)
    assert [applied[f"LayerChoice{i}"]["_idx"] for i in range(1, 21)] == [i % 4 for i in range(1, 21)]
    assert not any(isinstance(m, LayerChoice) for m in model.modules())
    assert model(torch.randn(2, 3)).shape == (2, 3)
    assert architecture_to_multi_hot(parse_model(SposLike()).space, applied) == arch
