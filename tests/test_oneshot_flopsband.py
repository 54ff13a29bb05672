"""SPOS' FLOPs band (NNI's SPOSSupernetTrainingMutator): training paths spread evenly over FLOPs bins."""

from __future__ import annotations

import random
from itertools import product
from pathlib import Path

import pytest
import torch
from torch import nn

from trials.nas import LayerChoice
from trials.nas.oneshot import Callback, SposTrainer, bind_choices
from trials.nas.oneshot.choices import random_architecture
from trials.nas.oneshot.flopsband import BandSampler, FlopsBand

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny nets run best on one


class Tagged(nn.Module):
    """A candidate that scales its input and notes, while training, that it ran."""

    def __init__(self, key: str, index: int, ran: list[tuple[str, int]]) -> None:
        super().__init__()
        self.key, self.index, self.ran = key, index, ran

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.ran.append((self.key, self.index))
        return x * (1 + self.index / 4)


class Choices(nn.Module):
    """Five candidates per key; with :func:`table_flops` an architecture's FLOPs are the sum of
    its indices, so most architectures lie mid-range."""

    def __init__(self, keys: str = "ab") -> None:
        super().__init__()
        self.keys = keys
        self.ran: list[tuple[str, int]] = []
        self.choices = nn.ModuleList(
            LayerChoice([Tagged(key, i, self.ran) for i in range(5)], key=key) for key in keys
        )
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for choice in self.choices:
            x = choice(x)
        return self.head(x)

    def paths(self) -> list[dict[str, list[int]]]:
        """The architectures of the training passes so far, in order."""
        n = len(self.keys)
        return [
            {key: [index] for key, index in self.ran[start : start + n]}
            for start in range(0, len(self.ran), n)
        ]


def table_flops(architecture: dict[str, list[int]]) -> float:
    return float(sum(indices[0] for indices in architecture.values()))


def batches(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 6, generator=g), torch.randint(0, 3, (4,), generator=g)) for _ in range(n)]


def spos(model: nn.Module, **kwargs) -> SposTrainer:
    torch.manual_seed(0)
    defaults = {
        "train_data": batches(40, 0),
        "valid_data": batches(2, 1),
        "num_epochs": 1,
        "progress": False,
        "seed": 0,
        "population_size": 4,
        "generations": 1,
        "parents": 2,
        "bn_batches": 1,
        "flops_fn": table_flops,
    }
    return SposTrainer(model, **{**defaults, **kwargs})


class EpochMetrics(Callback):
    def __init__(self, crash_at_epoch: int | None = None) -> None:
        self.epochs: list[dict[str, float]] = []
        self.crash_at_epoch = crash_at_epoch

    def on_epoch_begin(self, trainer, epoch) -> None:  # type: ignore[no-untyped-def]
        if epoch == self.crash_at_epoch:
            raise KeyboardInterrupt("simulated crash")

    def on_epoch_end(self, trainer, epoch, metrics) -> None:  # type: ignore[no-untyped-def]
        self.epochs.append(dict(metrics))


def test_every_training_path_lies_in_the_band() -> None:
    model = Choices()
    trainer = spos(model, train_flops=(2.0, 5.0), flops_bins=3)
    trainer.train_epoch(0)
    paths = model.paths()
    assert len(paths) == 40
    assert all(2.0 <= table_flops(path) <= 5.0 for path in paths)
    assert trainer.band_misses == 0


def test_without_a_band_the_training_paths_are_the_uniform_draws_of_the_seed() -> None:
    model = Choices()
    spos(model).train_epoch(0)
    _, groups = bind_choices(model)
    rng = random.Random(0)
    assert model.paths() == [random_architecture(groups, rng) for _ in range(40)]


def test_the_bins_are_hit_about_equally_although_the_space_is_not_uniform_in_flops() -> None:
    _, groups = bind_choices(Choices("abcd"))  # 625 architectures, FLOPs 0 to 16
    band = FlopsBand(0.0, 16.0, bins=7)
    share = 350 / band.bins
    every = [
        {key: [i] for key, i in zip("abcd", indices, strict=True)} for indices in product(range(5), repeat=4)
    ]
    cheapest = sum(band.bin_of(table_flops(a)) == 0 for a in every) / len(every)
    assert cheapest < 1 / band.bins / 5  # uniform draws would starve the cheapest bin

    sampler = BandSampler(groups, band, table_flops, timeout=500)
    rng = random.Random(0)
    samples = [sampler.sample(rng) for _ in range(350)]
    assert all(sample.hit for sample in samples)
    counts = [0] * band.bins
    for sample in samples:
        counts[band.bin_of(sample.flops)] += 1  # type: ignore[index]
    assert min(counts) >= share / 5, counts


def test_a_band_too_narrow_to_hit_counts_band_misses_and_still_trains() -> None:
    model = Choices()
    before = model.head.weight.detach().clone()
    metrics = EpochMetrics()
    # only a + b = 8 lies in the band (its first bin): most chosen bins cannot be hit
    spos(model, train_flops=(7.5, 20.0), sample_timeout=20, callbacks=[metrics]).fit()
    assert 0 < metrics.epochs[0]["band_misses"] <= 40
    assert not torch.equal(model.head.weight, before)


def test_the_evolution_evaluates_only_architectures_in_the_band() -> None:
    trainer = spos(Choices(), train_flops=(3.0, 5.0))
    seen = []
    original = trainer.fitness
    trainer.fitness = lambda architecture: seen.append(architecture) or original(architecture)  # type: ignore[method-assign]
    trainer.fit()
    assert seen and all(3.0 <= table_flops(architecture) <= 5.0 for architecture in seen)


def test_each_architectures_flops_are_computed_once() -> None:
    calls: list[dict[str, list[int]]] = []

    def counting(architecture: dict[str, list[int]]) -> float:
        calls.append(architecture)
        return table_flops(architecture)

    spos(Choices(), train_flops=(0.0, 8.0), flops_fn=counting).train_epoch(0)
    assert len(calls) == len({str(sorted(a.items())) for a in calls}) <= 25


def test_the_default_flops_are_the_measured_multiply_adds() -> None:
    trainer = spos(Choices(), flops_fn=None, train_flops=(0.0, 1e6))
    architecture = {"a": [1], "b": [2]}
    assert trainer.flops(architecture) == trainer.cost(architecture).flops == 6 * 3


def test_a_resumed_banded_training_ends_with_the_same_weights(tmp_path: Path) -> None:
    straight = spos(Choices(), train_flops=(2.0, 6.0), num_epochs=2, log_dir=tmp_path / "straight")
    straight.fit()
    with pytest.raises(KeyboardInterrupt):
        crashing = spos(Choices(), train_flops=(2.0, 6.0), num_epochs=2, log_dir=tmp_path / "crash")
        crashing.callbacks.append(EpochMetrics(crash_at_epoch=1))
        crashing.fit()
    resumed = spos(Choices(), train_flops=(2.0, 6.0), num_epochs=2, log_dir=tmp_path / "crash", resume=True)
    resumed.fit()
    expected = straight.model.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in resumed.model.state_dict().items())
    assert (tmp_path / "crash" / "metrics.jsonl").read_text() == (
        tmp_path / "straight" / "metrics.jsonl"
    ).read_text()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"train_flops": (5.0, 5.0)}, "train_flops must be \\(low, high\\) with low < high"),
        ({"train_flops": (6.0, 2.0)}, "train_flops must be \\(low, high\\) with low < high"),
        ({"train_flops": (0.0, float("inf"))}, "train_flops must hold two finite numbers"),
        ({"train_flops": 5.0}, "train_flops must be a pair \\(low, high\\) or None"),
        ({"flops_bins": 0}, "flops_bins must be an integer >= 1"),
        ({"sample_timeout": 0}, "sample_timeout must be an integer >= 1"),
    ],
)
def test_band_arguments_are_checked_with_the_argument_named(arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spos(Choices(), **arguments)
