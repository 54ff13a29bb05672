"""An ensemble of small MLPs that predicts an architecture's score and how unsure it is (BANANAS).

Each member is a two-hidden-layer ReLU network trained from its own random start on every result
so far (standardised scores, mean squared error, full-batch Adam); the members disagree where the
data say little, and that spread is the uncertainty the acquisition samples from (as in BANANAS,
White et al. 2021, which uses an ensemble's spread rather than a Bayesian model's).
The members are trained side by side as one batched network, so the time is that of one small
network: 0.1 to 0.2 s for 300 results on one core.

A fit is a pure function of the data and the seed it is given, so a tuner restored from a
checkpoint (which keeps the data and its random generator) fits the same networks again and
proposes what the uninterrupted one would have; no weights are stored. torch is imported here,
when the first fit happens, never by the daemon before an experiment uses this tuner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
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

        with torch.no_grad(), _one_thread(torch):
            x = torch.tensor(features, dtype=torch.float32)
            out = _forward(self._weights, x) * self._y_std + self._y_mean  # (members, n)
            mean = out.mean(dim=0)
            std = out.std(dim=0, unbiased=False) if out.shape[0] > 1 else torch.zeros_like(mean)
        return Prediction(tuple(mean.tolist()), tuple(std.tolist()))


def fit_ensemble(
    features: Sequence[Sequence[float]], scores: Sequence[float], seed: int, settings: EnsembleSettings
) -> FittedEnsemble:
    """Train the ensemble on (features, scores); the same arguments give the same networks.

    One thread, for fits and predictions alike: networks this small gain nothing from more, and
    with other busy processes on the machine (the trials) a second thread made a fit twenty times
    slower and a proposal fifty times (measured). The daemon's setting is restored.
    """
    import torch

    with _one_thread(torch):
        return _fit(torch, features, scores, seed, settings)


@contextlib.contextmanager
def _one_thread(torch: Any) -> Iterator[None]:
    """torch on one thread meanwhile, the daemon's setting restored after (see :func:`fit_ensemble`)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _fit(
    torch: Any,
    features: Sequence[Sequence[float]],
    scores: Sequence[float],
    seed: int,
    settings: EnsembleSettings,
) -> FittedEnsemble:
    """Full-batch Adam on the mean squared error, gradients written out (no autograd graph per step).

    The members' weights are views into one flat tensor, so an Adam step is a handful of
    operations on it whatever the number of layers: with tensors this small the number of
    operations, not their size, is the cost.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.tensor(features, dtype=torch.float32)
    y = torch.tensor(scores, dtype=torch.float32)
    y_mean = float(y.mean())
    y_std = float(y.std(unbiased=False)) if len(scores) > 1 else 1.0
    y_std = y_std if y_std > 1e-12 else 1.0
    e, d, h = settings.members, x.shape[1], settings.hidden
    n = x.shape[0]
    target = ((y - y_mean) / y_std).expand(e, -1).unsqueeze(-1)  # (e, n, 1)
    shapes = [(d, e, d, h), (d, e, 1, h), (h, e, h, h), (h, e, 1, h), (h, e, h, 1), (h, e, 1, 1)]
    theta = torch.cat(
        [((torch.rand(*s, generator=generator) * 2 - 1) / max(f, 1) ** 0.5).reshape(-1) for f, *s in shapes]
    )
    views, at = [], 0
    for _, *s in shapes:
        size = 1
        for k in s:
            size *= k
        views.append(theta[at : at + size].view(*s))
        at += size
    w1, b1, w2, b2, w3, b3 = views
    m = torch.zeros_like(theta)
    v = torch.zeros_like(theta)
    xe = x.expand(e, n, d)
    xt = xe.transpose(1, 2)
    lr, wd, beta1, beta2, eps = settings.learning_rate, settings.weight_decay, 0.9, 0.999, 1e-8
    scale = 2.0 / (n * e)
    for step in range(1, settings.epochs + 1):
        z1 = torch.baddbmm(b1, xe, w1)
        a1 = z1.clamp_min(0)
        z2 = torch.baddbmm(b2, a1, w2)
        a2 = z2.clamp_min(0)
        out = torch.baddbmm(b3, a2, w3)
        g = (out - target).mul_(scale)
        g_w3 = torch.bmm(a2.transpose(1, 2), g)
        g_b3 = g.sum(1, keepdim=True)
        g_z2 = torch.bmm(g, w3.transpose(1, 2)).mul_(z2 > 0)
        g_w2 = torch.bmm(a1.transpose(1, 2), g_z2)
        g_b2 = g_z2.sum(1, keepdim=True)
        g_z1 = torch.bmm(g_z2, w2.transpose(1, 2)).mul_(z1 > 0)
        g_w1 = torch.bmm(xt, g_z1)
        g_b1 = g_z1.sum(1, keepdim=True)
        grad = torch.cat([t.reshape(-1) for t in (g_w1, g_b1, g_w2, g_b2, g_w3, g_b3)])
        grad.add_(theta, alpha=wd)
        m.mul_(beta1).add_(grad, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (v / (1 - beta2**step)).sqrt_().add_(eps)
        theta.addcdiv_(m, denom, value=-lr / (1 - beta1**step))
    return FittedEnsemble([w.clone() for w in views], y_mean, y_std)


def _forward(weights: list, x: object) -> object:
    """(members, n) outputs of the batched members for inputs ``x`` of shape (n, features)."""
    import torch

    w1, b1, w2, b2, w3, b3 = weights
    hidden = torch.relu(torch.matmul(x, w1) + b1)  # (members, n, hidden)
    hidden = torch.relu(torch.bmm(hidden, w2) + b2)
    return (torch.bmm(hidden, w3) + b3).squeeze(-1)
