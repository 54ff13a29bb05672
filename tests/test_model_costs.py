"""trials.nas.costs.model_costs: parameters, multiply-adds per sample and measured latency of a
model in one call, checked on a tiny model counted by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from torch import nn

from trials.nas import LayerChoice, apply_fixed_architecture
from trials.nas.costs import model_costs


def tiny() -> nn.Module:
    # conv: 3*4*3*3 + 4 = 112 params, 4*8*8 outputs x 3*3*3 = 6912 multiply-adds
    # linear: 256*10 + 10 = 2570 params, 10 outputs x 256 = 2560 multiply-adds
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))


def test_params_are_counted_by_hand() -> None:
    assert model_costs(tiny(), (1, 3, 8, 8), latency=False)["params"] == 112 + 2570


def test_flops_are_multiply_adds_per_sample_whatever_the_batch() -> None:
    one = model_costs(tiny(), (1, 3, 8, 8), latency=False)["flops"]
    four = model_costs(tiny(), (4, 3, 8, 8), latency=False)["flops"]
    assert one == four == 6912 + 2560


def test_latency_is_measured_in_milliseconds() -> None:
    costs = model_costs(tiny(), (1, 3, 8, 8), warmup=1, repeats=3)
    assert isinstance(costs["latency_ms"], float) and 0 < costs["latency_ms"] < 1000


def test_latency_false_leaves_the_timing_out() -> None:
    assert set(model_costs(tiny(), (1, 3, 8, 8), latency=False)) == {"params", "flops"}


def test_the_costs_merge_into_a_final_result_as_plain_json_numbers() -> None:
    result: dict[str, Any] = {"accuracy": 0.9, **model_costs(tiny(), (1, 3, 8, 8), repeats=2)}
    assert json.loads(json.dumps(result)) == result


def test_the_training_mode_is_kept() -> None:
    model = tiny().train()
    model_costs(model, (1, 3, 8, 8), repeats=2)
    assert model.training


@pytest.mark.parametrize("shape", [(), (1, 0, 8), "1,3,8,8", (1.5, 3)])
def test_a_bad_input_shape_names_the_argument(shape: Any) -> None:
    with pytest.raises(ValueError, match="input_shape"):
        model_costs(tiny(), shape)


def test_zero_repeats_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="repeats"):
        model_costs(tiny(), (1, 3, 8, 8), repeats=0)


def test_a_module_that_does_not_run_costs_nothing() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(4, 2)
            self.unused = nn.Linear(4, 1000)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    assert model_costs(Branchy(), (1, 4), latency=False) == {"params": 10, "flops": 8}


def test_a_super_net_with_a_fixed_architecture_costs_only_the_chosen_candidate() -> None:
    class SuperNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.op = LayerChoice([nn.Linear(4, 2), nn.Linear(4, 100)], key="op")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.op(x)

    model = SuperNet()
    apply_fixed_architecture(model, {"op": 1})
    assert model_costs(model, (1, 4), latency=False) == {"params": 500, "flops": 400}
