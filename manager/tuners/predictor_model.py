"""An ensemble of small MLPs that predicts an architecture's score and how unsure it is (BANANAS).

Each member is a two-hidden-layer ReLU network trained from its own random start on every result
so far (standardised scores, mean squared error, full-batch Adam); the members disagree where the
data say little, and that spread is the uncertainty the acquisition samples from (White et al.
2021 found an ensemble's spread as good as a Bayesian network's, at a fraction of the cost).
The members are trained side by side as one batched network, so the time is that of one small
network: a few tens of milliseconds for 300 results on one core.

A fit is a pure function of the data and the seed it is given, so a tuner restored from a
checkpoint (which keeps the data and its random generator) fits the same networks again and
proposes what the uninterrupted one would have; no weights are stored. torch is imported here,
when the first fit happens, never by the daemon before an experiment uses this tuner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EnsembleSettings:
    """How big the members are and how long they train."""

    members: int = 5
    hidden: int = 32
    epochs: int = 150
    learning_rate: float = 0.01
    weight_decay: float = 1e-4


@dataclass(frozen=True)
class Prediction:
    """Per candidate: the ensemble's mean and spread, in the units of the scores it was fitted on."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


class FittedEnsemble:
    """Networks fitted to one data set; :meth:`predict` scores candidates."""

    def __init__(self, weights: list[object], y_mean: float, y_std: float) -> None:
        self._weights = weights
        self._y_mean = y_mean
        self._y_std = y_std

    def predict(self, features: Sequence[Sequence[float]]) -> Prediction:
        import torch

        with torch.no_grad():  # one small batch: no threads needed either
            x = torch.tensor(features, dtype=torch.float32)
            out = _forward(self._weights, x) * self._y_std + self._y_mean  # (members, n)
            mean = out.mean(dim=0)
            std = out.std(dim=0, unbiased=False) if out.shape[0] > 1 else torch.zeros_like(mean)
        return Prediction(tuple(mean.tolist()), tuple(std.tolist()))


def fit_ensemble(
    features: Sequence[Sequence[float]], scores: Sequence[float], seed: int, settings: EnsembleSettings
) -> FittedEnsemble:
    """Train the ensemble on (features, scores); the same arguments give the same networks.

    One thread: networks this small gain nothing from more, and with other busy threads on the
    machine a second one made a fit twenty times slower (measured). The daemon's setting is restored.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(torch, features, scores, seed, settings)
    finally:
        torch.set_num_threads(threads)


def _fit(
    torch: Any,
    features: Sequence[Sequence[float]],
    scores: Sequence[float],
    seed: int,
    settings: EnsembleSettings,
) -> FittedEnsemble:

    generator = torch.Generator().manual_seed(seed)
    x = torch.tensor(features, dtype=torch.float32)
    y = torch.tensor(scores, dtype=torch.float32)
    y_mean = float(y.mean())
    y_std = float(y.std(unbiased=False)) if len(scores) > 1 else 1.0
    y_std = y_std if y_std > 1e-12 else 1.0
    target = ((y - y_mean) / y_std).expand(settings.members, -1)
    e, d, h = settings.members, x.shape[1], settings.hidden

    def layer(fan_in: int, *shape: int) -> Any:
        bound = 1.0 / max(fan_in, 1) ** 0.5
        return ((torch.rand(*shape, generator=generator) * 2 - 1) * bound).requires_grad_()

    weights = [
        layer(d, e, d, h),
        layer(d, e, 1, h),
        layer(h, e, h, h),
        layer(h, e, 1, h),
        layer(h, e, h, 1),
        layer(h, e, 1, 1),
    ]
    optimizer = torch.optim.Adam(
        weights, lr=settings.learning_rate, weight_decay=settings.weight_decay, foreach=True
    )
    for _ in range(settings.epochs):
        optimizer.zero_grad(set_to_none=True)
        loss = ((_forward(weights, x) - target) ** 2).mean()
        loss.backward()
        optimizer.step()
    return FittedEnsemble([w.detach() for w in weights], y_mean, y_std)


def _forward(weights: list, x: object) -> object:
    """(members, n) outputs of the batched members for inputs ``x`` of shape (n, features)."""
    import torch

    w1, b1, w2, b2, w3, b3 = weights
    hidden = torch.relu(torch.matmul(x, w1) + b1)  # (members, n, hidden)
    hidden = torch.relu(torch.bmm(hidden, w2) + b2)
    return (torch.bmm(hidden, w3) + b3).squeeze(-1)
