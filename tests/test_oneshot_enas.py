"""ENAS: what the controller samples, and that REINFORCE moves it towards the rewarded choice."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from trials.nas import InputChoice, LayerChoice
from trials.nas.oneshot import EnasTrainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny nets run best on one


class Shift(nn.Module):
    """Moves every one-hot logit to the next class: always wrong."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.roll(1, dims=1)


class Oracle(nn.Module):
    """Inputs are the one-hot labels, so ``right`` scores accuracy 1 and ``wrong`` 0.

    Also holds input choices of both kinds, so their sampling can be checked.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.op = LayerChoice(OrderedDict(wrong=Shift(), right=nn.Identity()), key="op")
        self.pick = InputChoice(n_candidates=4, n_chosen=2, key="pick")
        self.any = InputChoice(n_candidates=3, n_chosen=None, key="any")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.op(x) * self.scale
        extra = self.any([x * 0, x * 0, x * 0])
        picked = self.pick([x * 0, x * 0, x * 0, x * 0])
        return out + picked + (extra if extra is not None else 0)


def one_hot_batches(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        labels = torch.randint(0, 10, (16,), generator=g)
        out.append((10 * nn.functional.one_hot(labels, 10).float(), labels))
    return out


def enas(**kwargs) -> EnasTrainer:
    defaults = {
        "train_data": one_hot_batches(2, 0),
        "valid_data": one_hot_batches(4, 1),
        "num_epochs": 1,
        "progress": False,
        "seed": 0,
    }
    return EnasTrainer(Oracle(), **{**defaults, **kwargs})


def test_controller_samples_n_chosen_distinct_inputs_and_any_subset_for_none() -> None:
    trainer = enas()
    picks, subsets = set(), set()
    with torch.no_grad():
        for _ in range(60):
            architecture = trainer.controller.sample().architecture
            assert len(architecture["op"]) == 1
            assert len(set(architecture["pick"])) == 2 and all(0 <= i < 4 for i in architecture["pick"])
            picks.add(tuple(architecture["pick"]))
            subsets.add(tuple(architecture["any"]))
    assert len(picks) > 3 and len(subsets) > 3  # it explores


def test_greedy_sample_is_the_same_every_time() -> None:
    trainer = enas()
    with torch.no_grad():
        first = trainer.controller.sample(greedy=True).architecture
        assert all(trainer.controller.sample(greedy=True).architecture == first for _ in range(5))


def test_reinforce_raises_the_probability_of_the_rewarded_candidate() -> None:
    trainer = enas(
        num_epochs=3, controller_lr=0.05, controller_steps=30, controller_aggregate=2, baseline_decay=0.9
    )
    before = trainer.choice_weights()["op"][1]
    trainer.fit()
    with torch.no_grad():
        after = sum(trainer.controller.sample().probabilities["op"][1] for _ in range(20)) / 20
    assert after > before + 0.2
    assert trainer.export()["op"]["_value"] == "right"
