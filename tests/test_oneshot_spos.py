"""SPOS: constraints on the evolution, what an architecture costs, BatchNorm recalibration, resume."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trials.nas import LayerChoice, apply_fixed_architecture
from trials.nas.oneshot import ProgressPrinter, SposTrainer, bind_choices, measure, recalibrate_batchnorm
from trials.nas.oneshot.choices import random_architecture, to_decisions
from trials.nas.zoo import DartsNetwork, NASBench201Network
from trials.searchspace import architecture_to_json

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny nets run best on one


def batches(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(n)]


def spos(model: nn.Module | None = None, **kwargs) -> SposTrainer:
    torch.manual_seed(0)
    defaults = {
        "train_data": batches(3, 0),
        "valid_data": batches(2, 1),
        "num_epochs": 1,
        "progress": False,
        "seed": 0,
        "population_size": 8,
        "generations": 2,
        "parents": 3,
        "bn_batches": 1,
    }
    return SposTrainer(model or NASBench201Network(4, 1, 10, in_channels=1), **{**defaults, **kwargs})


def test_evolution_never_evaluates_an_architecture_over_the_parameter_limit() -> None:
    trainer = spos()
    _, groups = bind_choices(trainer.model)
    costs = sorted(trainer.cost(random_architecture(groups, random.Random(i))).params for i in range(30))
    limit = costs[len(costs) // 2]  # about half the space is allowed
    trainer = spos(max_params=limit)
    seen = []
    original = trainer.fitness
    trainer.fitness = lambda architecture: seen.append(architecture) or original(architecture)  # type: ignore[method-assign]
    trainer.fit()
    assert seen and all(trainer.cost(architecture).params <= limit for architecture in seen)
    assert trainer.cost(trainer.select()).params <= limit


def test_constraint_receives_full_form_architectures_and_filters_them() -> None:
    received = []

    def no_conv_3x3(architecture: dict) -> bool:
        received.append(architecture)
        return all(decision["_value"] != "conv_3x3" for decision in architecture.values())

    trainer = spos(constraint=no_conv_3x3)
    exported = trainer.fit()
    assert received and set(received[0]) == {"0_1", "0_2", "1_2", "0_3", "1_3", "2_3"}
    assert all("_idx" in decision for decision in received[0].values())
    assert all(decision["_value"] != "conv_3x3" for decision in exported.values())


def test_a_limit_no_architecture_meets_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no architecture of the space meets the constraints"):
        spos(max_params=10, population_size=2, parents=1).fit()


def test_measure_counts_exactly_the_parameters_the_fixed_model_trains() -> None:
    """A DARTS node computes two of its edges: the others' operations cost nothing."""
    supernet = DartsNetwork(1, 4, 10, n_layers=2, n_nodes=3)
    _, groups = bind_choices(supernet)
    architecture = random_architecture(groups, random.Random(3))
    cost = measure(supernet, groups, architecture, torch.randn(1, 1, 8, 8))

    fixed = DartsNetwork(1, 4, 10, n_layers=2, n_nodes=3)
    apply_fixed_architecture(fixed, architecture_to_json(to_decisions(groups, architecture)))
    nn.functional.cross_entropy(fixed(torch.randn(2, 1, 8, 8)), torch.tensor([0, 1])).backward()
    trained = sum(p.numel() for p in fixed.parameters() if p.grad is not None)
    assert cost.params == trained < sum(p.numel() for p in fixed.parameters())


def test_measure_counts_multiply_adds_per_sample() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(2 * 8 * 8, 10))

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = model
            self.choice = LayerChoice([nn.Identity()], key="only")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.choice(self.body(x))

    wrapped = Wrapped()
    _, groups = bind_choices(wrapped)
    cost = measure(wrapped, groups, {"only": [0]}, torch.randn(4, 1, 8, 8))
    assert cost.flops == (2 * 8 * 8) * (1 * 9) + 10 * (2 * 8 * 8)


def test_recalibrated_batchnorm_holds_the_plain_average_of_the_batches() -> None:
    bn = nn.BatchNorm2d(1)
    data = [(torch.full((4, 1, 2, 2), 1.0), None), (torch.full((4, 1, 2, 2), 3.0), None)]
    recalibrate_batchnorm(bn, data, lambda batch: batch)
    assert bn.running_mean.item() == pytest.approx(2.0)
    assert bn.momentum == 0.1  # restored


def test_resume_during_the_evolution_finishes_the_same_search(tmp_path: Path) -> None:
    straight = spos(log_dir=tmp_path / "straight").fit()

    calls = 0

    def crash_midway(architecture: dict) -> bool:
        nonlocal calls
        calls += 1
        if calls == 20:  # generation 0 has been evaluated and checkpointed by then
            raise KeyboardInterrupt("simulated crash")
        return True

    with pytest.raises(KeyboardInterrupt):
        spos(log_dir=tmp_path / "crash", constraint=crash_midway).fit()
    resumed = spos(log_dir=tmp_path / "crash", resume=True)
    assert resumed.fit() == straight
    for name in ("weights.jsonl", "metrics.jsonl"):
        assert (tmp_path / "crash" / name).read_text() == (tmp_path / "straight" / name).read_text()


def test_the_progress_shows_each_generation_of_the_evolution() -> None:
    stream = io.StringIO()
    spos(callbacks=[ProgressPrinter(stream)]).fit()
    rounds = [line for line in stream.getvalue().splitlines() if line.startswith("search round")]
    assert [line.split()[2] for line in rounds] == ["1/3", "2/3", "3/3"]  # the first and two more
    assert all("search_best_acc" in line for line in rounds)


def test_every_candidate_is_scored_on_the_same_batches_of_a_shuffling_loader() -> None:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(64, 1, 8, 8, generator=g), torch.randint(0, 10, (64,), generator=g))
    trainer = spos(
        train_data=DataLoader(data, batch_size=8, shuffle=True),
        valid_data=DataLoader(data, batch_size=8, shuffle=True),
        eval_batches=2,
        bn_batches=2,
        reward="loss",  # continuous: different batches would show
    )
    architecture = random_architecture(trainer.groups, random.Random(0))
    assert trainer.fitness(architecture) == trainer.fitness(architecture)
