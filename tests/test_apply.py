"""apply_fixed_architecture: every architecture of a space runs, and keeps only the chosen ops."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from nas_models import ScopedNet, digits_net, n_params, random_architecture
from torch import nn

from trials.nas import ArchitectureError, LayerChoice, apply_fixed_architecture, parse_model
from trials.nas.mutables import _Choice

MODELS: dict[str, Callable[[], nn.Module]] = {"digits": digits_net, "scoped": ScopedNet}


def expected_parameter_count(model: nn.Module, arch: dict) -> int:
    """Parameters outside the layer choices plus those of each chosen candidate."""
    parsed = parse_model(model)
    choices = {
        id(occ.module): occ.module for occ in parsed.occurrences if isinstance(occ.module, LayerChoice)
    }
    fixed = n_params(model) - sum(n_params(choice) for choice in choices.values())
    return fixed + sum(n_params(choice[arch[choice.key]["_idx"]]) for choice in choices.values())


@pytest.mark.parametrize("name", MODELS)
def test_fifty_random_architectures_apply_run_and_keep_only_chosen_parameters(name: str) -> None:
    rng = random.Random(1234)
    space = parse_model(MODELS[name]()).space
    seen = set()
    for _ in range(50):
        arch = random_architecture(space, rng)
        seen.add(json.dumps(arch, sort_keys=True))
        model = MODELS[name]()
        expected = expected_parameter_count(model, arch)
        applied = apply_fixed_architecture(model, arch)
        assert applied == arch
        assert n_params(model) == expected
        assert not any(isinstance(m, LayerChoice) for m in model.modules())
        out = model(torch.randn(3, 1, 8, 8))
        assert out.shape == (3, 10) and torch.isfinite(out).all()
    assert len(seen) > 25  # the test really covers many architectures


def test_chosen_module_replaces_the_layer_choice() -> None:
    model = digits_net()
    apply_fixed_architecture(model, {"conv1": "conv5x5", "conv2": "identity", "conv3": "conv1x1", "skip": []})
    assert isinstance(model.conv2, nn.Identity)
    assert "conv1.0.weight" in model.state_dict()
    assert not any(key.startswith("conv1.conv5x5") for key in model.state_dict())


def test_short_and_full_forms_give_the_same_model(tmp_path: Path) -> None:
    short = {"conv1": "sepconv3x3", "conv2": "dilconv3x3", "conv3": "conv3x3", "skip": ["conv1"]}
    path = tmp_path / "arch.json"
    first, second = digits_net(), digits_net()
    full = apply_fixed_architecture(first, short)
    path.write_text(json.dumps(full))
    assert apply_fixed_architecture(second, path) == full
    assert [type(m) for m in first.modules()] == [type(m) for m in second.modules()]


def test_input_choice_stays_in_the_model_with_its_decision_fixed() -> None:
    model = digits_net()
    apply_fixed_architecture(model, {"conv1": 0, "conv2": 0, "conv3": 0, "skip": ["conv1"]})
    assert model.skip.mask.tolist() == [True]


def test_layer_choice_that_returns_its_mask_is_kept_and_fixed() -> None:
    model = nn.Sequential(LayerChoice([nn.Identity(), nn.ReLU()], return_mask=True, key="op"))
    apply_fixed_architecture(model, {"op": 1})
    out, mask = model[0](torch.tensor([-1.0]))
    assert out.item() == 0.0 and mask.tolist() == [False, True]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"skipp": ["conv1"]}, "unknown key 'skipp' \\(did you mean 'skip'\\?\\)"),
        ({"conv1": {"_value": "conv3x3", "_idx": 9}}, "'conv1': index 9 out of range 0..3"),
        (
            {"conv1": {"_value": "conv5x5", "_idx": 0}},
            "'conv1': _idx 0 is 'conv3x3' but _value says 'conv5x5'",
        ),
        ({"skip": ["conv1", "conv1"]}, "'skip': a candidate is chosen twice"),
        ({"conv2": "conv9x9"}, "'conv2': unknown candidate 'conv9x9'"),
    ],
)
def test_bad_architecture_names_the_key(change: dict, message: str) -> None:
    arch = {"conv1": "conv3x3", "conv2": "conv3x3", "conv3": "conv3x3", "skip": []} | change
    with pytest.raises(ArchitectureError, match=message):
        apply_fixed_architecture(digits_net(), arch)


def test_wrong_number_of_inputs_is_refused() -> None:
    model = ScopedNet()
    arch = random_architecture(parse_model(model).space, random.Random(0))
    arch["shared_mix"] = ["shared_op1"]
    with pytest.raises(ArchitectureError, match="'shared_mix': must choose exactly 2 input\\(s\\), got 1"):
        apply_fixed_architecture(model, arch)


def test_missing_key_is_refused() -> None:
    with pytest.raises(ArchitectureError, match="no decision for key\\(s\\) skip"):
        apply_fixed_architecture(digits_net(), {"conv1": 0, "conv2": 0, "conv3": 0})


def test_duplicate_key_in_an_architecture_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "arch.json"
    path.write_text('{"conv1": 0, "conv1": 1, "conv2": 0, "conv3": 0, "skip": []}')
    with pytest.raises(ArchitectureError, match="key 'conv1' appears twice"):
        apply_fixed_architecture(digits_net(), path)


def test_unreadable_architecture_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ArchitectureError, match="cannot read architecture file"):
        apply_fixed_architecture(digits_net(), tmp_path / "missing.json")


def test_nothing_is_changed_when_the_architecture_is_refused() -> None:
    model = digits_net()
    with pytest.raises(ArchitectureError):
        apply_fixed_architecture(model, {"conv1": "conv5x5", "conv2": 0, "conv3": 0, "skip": ["nope"]})
    assert isinstance(model.conv1, _Choice) and model.conv1.mask is None
