"""Annotated models shared by the SDK tests: the digits example and a model with nested scopes."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trials.nas import InputChoice, LayerChoice, MutableScope
from trials.searchspace import InputChoiceSpec, LayerChoiceSpec, SearchSpace

ROOT = Path(__file__).resolve().parents[1]
DIGITS_DIR = ROOT / "examples" / "digits"


class NoSkip(nn.Module):
    """Stands in for ``DigitsNet.skip``: never adds the residual."""

    def forward(self, inputs: list[torch.Tensor]) -> None:
        return None


def digits_model_class() -> type[nn.Module]:
    """``DigitsNet`` of examples/digits, imported the way the example imports it (``model`` beside
    ``data``), whichever other example's ``model`` an earlier test or bench put on the path."""
    folder = str(DIGITS_DIR)
    if sys.path[:1] != [folder]:
        sys.path.insert(0, folder)
    for name in ("model", "data"):
        cached = sys.modules.get(name)
        if cached is not None and Path(getattr(cached, "__file__", "") or "").parent != DIGITS_DIR:
            del sys.modules[name]
    from model import DigitsNet

    return DigitsNet


def digits_net(skip: bool = True) -> nn.Module:
    """A fresh ``DigitsNet`` from the example folder; ``skip=False`` fixes its input choice off,
    leaving a space of layer choices only (ProxylessNAS')."""
    model = digits_model_class()()
    if not skip:
        model.skip = NoSkip()
    return model


def flops_table(model: nn.Module) -> Any:
    """A ``LatencyTable`` of multiply-adds for a digits model (8x8 grey images)."""
    from trials.nas.oneshot import LatencyTable, bind_choices

    return LatencyTable.from_cost(model, bind_choices(model)[1], torch.zeros(1, 1, 8, 8), "flops")


def digits_loaders(
    train: int, valid: int, batch_size: int = 32, valid_batch_size: int = 32
) -> tuple[DataLoader, DataLoader]:
    """Shuffled loaders of the first ``train`` training and ``valid`` validation images of digits."""
    digits_net()  # puts examples/digits on sys.path
    from data import load_splits

    splits = load_splits()
    x, y = splits["train"]
    xv, yv = splits["val"]
    return (
        DataLoader(TensorDataset(x[:train], y[:train]), batch_size=batch_size, shuffle=True),
        DataLoader(TensorDataset(xv[:valid], yv[:valid]), batch_size=valid_batch_size, shuffle=True),
    )


def conv(channels: int, kernel: int) -> nn.Module:
    return nn.Conv2d(channels, channels, kernel, padding=kernel // 2)


class Inner(MutableScope):
    """A scope inside a scope, holding an auto-keyed choice."""

    def __init__(self, key: str, channels: int) -> None:
        super().__init__(key)
        self.op = LayerChoice([conv(channels, 1), nn.Identity()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Cell(MutableScope):
    """Cells built with the same ``prefix`` share their decisions (their keys are equal)."""

    def __init__(self, key: str, channels: int, prefix: str) -> None:
        super().__init__(key)
        self.op1 = LayerChoice(
            {"conv3x3": conv(channels, 3), "conv5x5": conv(channels, 5), "identity": nn.Identity()},
            key=f"{prefix}_op1",
        )
        self.op2 = LayerChoice([conv(channels, 3), nn.MaxPool2d(3, 1, 1)], key=f"{prefix}_op2")
        self.inner = Inner(f"{prefix}_inner", channels)
        self.mix = InputChoice(
            choose_from=[self.op1.key, self.op2.key, self.inner.key],
            n_chosen=2,
            reduction="mean",
            key=f"{prefix}_mix",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.op1(x)
        b = self.op2(a)
        c = self.inner(b)
        return self.mix([a, b, c])


class ScopedNet(nn.Module):
    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1)
        self.cell1 = Cell("cell1", channels, prefix="shared")
        self.cell2 = Cell("cell2", channels, prefix="shared")
        self.cell3 = Cell("cell3", channels, prefix="own")
        self.final = InputChoice(n_candidates=3, n_chosen=None)
        self.head = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1 = self.cell1(self.stem(x))
        c2 = self.cell2(c1)
        c3 = self.cell3(c2)
        out = self.final([c1, c2, c3])
        if out is None:
            out = c3
        return self.head(out.mean(dim=(2, 3)))


def random_architecture(space: SearchSpace, rng: random.Random) -> dict[str, Any]:
    """A uniformly drawn architecture in the full ``{_value, _idx}`` form."""
    arch: dict[str, Any] = {}
    for choice in space:
        if isinstance(choice, LayerChoiceSpec):
            i = rng.randrange(len(choice.candidates))
            arch[choice.key] = {"_value": choice.candidates[i], "_idx": i}
        else:
            assert isinstance(choice, InputChoiceSpec)
            n = len(choice.candidates)
            k = rng.randint(0, n) if choice.n_chosen is None else choice.n_chosen
            idx = sorted(rng.sample(range(n), k))
            arch[choice.key] = {"_value": [choice.candidates[i] for i in idx], "_idx": idx}
    return arch


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
