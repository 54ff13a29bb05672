"""SPOS (Guo et al. 2020): single-path one-shot training, then an evolutionary search.

Training: every batch trains one architecture drawn uniformly at random (one candidate per
layer choice; ``n_chosen`` distinct inputs, or each input with probability 1/2 when
``n_chosen=None``), so every path of the super-net learns to work on its own. With
``train_flops=(low, high)`` the paths are instead spread evenly over ``flops_bins`` FLOPs bins
of that band (NNI's ``SPOSSupernetTrainingMutator``; see :mod:`.flopsband`): a bin drawn
uniformly, then uniform architectures until one falls in it, at most ``sample_timeout`` draws,
else the closest one found, which the epoch's ``band_misses`` counts.

Search (the export): an evolution over architectures scored with the inherited weights.
Each candidate first gets fresh BatchNorm statistics (``bn_batches`` training batches, since
the running statistics of a shared super-net fit no single path), then its validation
accuracy is its fitness. Every candidate is scored on the same batches: the first
``eval_batches`` validation batches and ``bn_batches`` training batches are taken once when the
search starts (with ``eval_batches=None`` each candidate iterates ``valid_data`` anew, so a
shuffling loader gives each its own order). Generation 0 is ``population_size`` random
architectures (drawn like the training paths, so spread over the band when one is set); every
later one is half mutations (each key re-drawn with ``mutation_prob``) and half crossovers
(each key from one of two parents) of the ``parents`` best seen so far, never repeating an
architecture. Architectures that break a constraint (``max_params``, ``max_flops``, or any
``constraint(architecture) -> bool`` on the full-form architecture), or that fall outside the
training band when one is set, are never evaluated. The state is checkpointed after every
generation, so a resumed search continues the evolution.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from itertools import islice
from typing import Any

import torch
from torch import nn

from trials.nas.oneshot.base import OneShotTrainer
from trials.nas.oneshot.choices import (
    apply_architecture,
    random_architecture,
    random_indices,
    to_decisions,
)
from trials.nas.oneshot.cost import Cost, measure
from trials.nas.oneshot.flopsband import BandSampler, FlopsBand
from trials.searchspace import architecture_to_json

Architecture = dict[str, list[int]]


def _canonical(architecture: Mapping[str, list[int]]) -> str:
    return json.dumps({key: sorted(value) for key, value in architecture.items()}, sort_keys=True)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: list[Any], to_device: Callable[[Any], Any]) -> None:
    """Reset every BatchNorm's running statistics and re-estimate them as a plain average."""
    norms = [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    try:
        for batch in batches:
            inputs = to_device(batch)[0]
            model(inputs)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum


class SposTrainer(OneShotTrainer):
    """SPOS; arguments beyond the shared ones (see :class:`OneShotTrainer`):

    ``population_size``, ``generations``, ``parents`` (the best kept as parents),
    ``mutation_prob``, ``bn_batches`` (training batches for BatchNorm recalibration),
    ``eval_batches`` (validation batches per candidate, the same for all; None: all of
    ``valid_data``, iterated per candidate), ``max_params`` and
    ``max_flops`` (what the architecture uses: see :func:`trials.nas.oneshot.cost.measure`;
    flops are multiply-adds per sample), ``constraint``, ``reward`` (a metric name of
    ``metrics``, default ``acc``), and the training band: ``train_flops`` (low, high; None:
    uniform paths), ``flops_bins``, ``sample_timeout`` (draws per path) and ``flops_fn`` (an
    architecture's FLOPs from key -> candidate indices; default: :meth:`cost`'s multiply-adds;
    ``max_flops`` uses it too).
    """

    algorithm = "SPOS"

    def __init__(
        self,
        model: nn.Module,
        *,
        population_size: int = 50,
        generations: int = 20,
        parents: int = 10,
        mutation_prob: float = 0.1,
        bn_batches: int = 10,
        eval_batches: int | None = None,
        max_params: int | None = None,
        max_flops: int | None = None,
        constraint: Callable[[dict[str, Any]], bool] | None = None,
        reward: str = "acc",
        flops_fn: Callable[[Architecture], float] | None = None,
        train_flops: tuple[float, float] | None = None,
        flops_bins: int = 7,
        sample_timeout: int = 500,
        **kwargs: Any,
    ) -> None:
        band = _band(train_flops, flops_bins, sample_timeout)
        super().__init__(model, **kwargs)
        if population_size < 2 or generations < 0 or not 1 <= parents <= population_size:
            raise ValueError(
                "SposTrainer: population_size must be >= 2, generations >= 0, and parents from 1 to "
                f"population_size; got {population_size}, {generations}, {parents}"
            )
        if not 0.0 <= mutation_prob <= 1.0:
            raise ValueError(f"SposTrainer: mutation_prob must be in [0, 1], got {mutation_prob}")
        self.population_size = population_size
        self.generations = generations
        self.parents = parents
        self.mutation_prob = mutation_prob
        self.bn_batches = bn_batches
        self.eval_batches = eval_batches
        self.max_params = max_params
        self.max_flops = max_flops
        self.constraint = constraint
        self.reward = reward
        self.history: dict[str, float] = {}  # canonical architecture -> fitness
        self.generation = 0  # generations done
        self._top_weights: dict[str, list[float]] | None = None
        self._example: torch.Tensor | None = None
        self._costs: dict[str, Cost] = {}
        self.flops_fn = flops_fn
        self.band = band
        self._flops: dict[str, float] = {}  # canonical architecture -> FLOPs
        self._sampler = (
            BandSampler(self.groups, band, self.flops, sample_timeout) if band is not None else None
        )
        self.band_misses = 0  # this epoch's paths drawn outside their bin
        self._search_batches: tuple[list[Any], list[Any] | None] | None = None  # (bn, eval)

    # -- training -------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> None:
        if self.history:  # more training (a resumed, longer run): fitness measured before is stale
            self.history, self.generation, self._top_weights = {}, 0, None
        self.band_misses = 0
        for batch in self.train_data:
            inputs, targets = self.to_device(batch)
            apply_architecture(self.groups, self.sample_path(), self.device)
            output, loss = self.forward_loss(inputs, targets)
            self.optimize(loss, self.optimizer, clip=self.grad_clip)
            self.step_done(self.step_metrics(output, targets, loss))

    def sample_path(self, count_miss: bool = True) -> Architecture:
        """A training path: uniform, or spread over the FLOPs band's bins when one is set."""
        if self._sampler is None:
            return random_architecture(self.groups, self.rng)
        drawn = self._sampler.sample(self.rng)
        if not drawn.hit and count_miss:
            self.band_misses += 1
        return drawn.architecture

    def validate(self) -> dict[str, float]:
        """One random path (of the band, when set), BatchNorm on batch statistics: the
        super-net's health, not a result; with a band, also the epoch's ``band_misses``."""
        apply_architecture(self.groups, self.sample_path(count_miss=False), self.device)
        metrics = {f"val_{k}": v for k, v in self.evaluate(self.valid_data, batch_statistics=True).items()}
        if self.band is not None:
            metrics["band_misses"] = self.band_misses
        return metrics

    def choice_weights(self) -> dict[str, list[float]]:
        """Sampling probabilities while training; during the search, each candidate's share of the parents."""
        if self._top_weights is not None:
            return self._top_weights
        out = {}
        for group in self.groups:
            n = len(group)
            if group.is_layer:
                out[group.key] = [1.0 / n] * n
            elif group.n_chosen is None:
                out[group.key] = [0.5] * n
            else:
                out[group.key] = [group.n_chosen / n] * n
        return out

    # -- the evolution --------------------------------------------------------------------------
    def allowed(self, architecture: Architecture) -> bool:
        """Whether ``architecture`` meets every constraint given (the training band included)."""
        if self.max_params is not None and self.cost(architecture).params > self.max_params:
            return False
        if self.max_flops is not None and self.flops(architecture) > self.max_flops:
            return False
        if self.band is not None and not self.band.contains(self.flops(architecture)):
            return False
        if self.constraint is not None:
            return bool(self.constraint(architecture_to_json(to_decisions(self.groups, architecture))))
        return True

    def cost(self, architecture: Architecture) -> Cost:
        """Parameters and multiply-adds per sample that ``architecture`` uses (one validation image)."""
        key = _canonical(architecture)
        if key not in self._costs:
            if self._example is None:
                rng_state = torch.get_rng_state()  # a shuffling loader would draw: leave the RNG as it was
                try:
                    batch = next(iter(self.valid_data))
                finally:
                    torch.set_rng_state(rng_state)
                self._example = (batch[0] if isinstance(batch, (tuple, list)) else batch)[:1]
            self._costs[key] = measure(self.model, self.groups, architecture, self._example)
        return self._costs[key]

    def flops(self, architecture: Architecture) -> float:
        """The FLOPs of ``architecture`` by ``flops_fn`` (default: :meth:`cost`), once per architecture."""
        key = _canonical(architecture)
        if key not in self._flops:
            fn = self.flops_fn
            self._flops[key] = float(fn(architecture) if fn is not None else self.cost(architecture).flops)
        return self._flops[key]

    def fitness(self, architecture: Architecture) -> float:
        """Validation ``reward`` of ``architecture`` with inherited weights and fresh BatchNorm
        statistics, on the same batches as every other candidate of this search."""
        if self._search_batches is None:
            bn = list(islice(self.train_data, self.bn_batches))
            valid = (
                list(islice(self.valid_data, self.eval_batches)) if self.eval_batches is not None else None
            )
            self._search_batches = (bn, valid)
        bn, valid = self._search_batches
        apply_architecture(self.groups, architecture, self.device)
        recalibrate_batchnorm(self.model, bn, self.to_device)
        return self.evaluate(valid if valid is not None else self.valid_data)[self.reward]

    def _draw(self, make: Callable[[], Architecture], count: int, taken: set[str]) -> list[Architecture]:
        """Up to ``count`` new allowed architectures from ``make`` (gives up after many repeats)."""
        found: list[Architecture] = []
        tries = 0
        while len(found) < count and tries < 20 * max(count, 1):
            tries += 1
            architecture = make()
            key = _canonical(architecture)
            if key in taken or not self.allowed(architecture):
                continue
            taken.add(key)
            found.append(architecture)
        return found

    def _top(self) -> list[tuple[Architecture, float]]:
        ranked = sorted(self.history.items(), key=lambda item: -item[1])[: self.parents]
        return [(json.loads(key), score) for key, score in ranked]

    def _mutate(self, parent: Architecture) -> Architecture:
        return {
            g.key: random_indices(g, self.rng)
            if self.rng.random() < self.mutation_prob
            else list(parent[g.key])
            for g in self.groups
        }

    def _cross(self, a: Architecture, b: Architecture) -> Architecture:
        return {g.key: list(self.rng.choice((a, b))[g.key]) for g in self.groups}

    def _next_population(self) -> list[Architecture]:
        taken = set(self.history)
        if not self.history:
            population = self._draw(lambda: self.sample_path(count_miss=False), self.population_size, taken)
            if not population:
                band = (self.band.low, self.band.high) if self.band is not None else None
                raise ValueError(
                    "SposTrainer: no architecture of the space meets the constraints "
                    f"(max_params={self.max_params}, max_flops={self.max_flops}, train_flops={band}, "
                    f"constraint={self.constraint})"
                )
            return population
        parents = [architecture for architecture, _ in self._top()]
        half = self.population_size // 2
        population = self._draw(lambda: self._mutate(self.rng.choice(parents)), half, taken)
        if len(parents) > 1:
            population += self._draw(lambda: self._cross(*self.rng.sample(parents, 2)), half, taken)
        missing = self.population_size - len(population)
        population += self._draw(lambda: self.sample_path(count_miss=False), missing, taken)
        return population

    def _parent_shares(self) -> dict[str, list[float]]:
        top = [architecture for architecture, _ in self._top()]
        shares = {}
        for group in self.groups:
            counts = [0.0] * len(group)
            for architecture in top:
                for index in architecture[group.key]:
                    counts[index] += 1
            shares[group.key] = [c / max(len(top), 1) for c in counts]
        return shares

    def select(self) -> Architecture:
        self._search_batches = None  # taken afresh by the first candidate, then shared
        while self.generation <= self.generations:
            population = self._next_population()
            scores = []
            for architecture in population:
                score = self.fitness(architecture)
                self.history[_canonical(architecture)] = score
                scores.append(score)
            self.generation += 1
            self._top_weights = self._parent_shares()
            step = self.step + self.generation  # the evolution goes on counting, one per generation
            best = self._top()[0][1]
            mean = sum(scores) / len(scores) if scores else float("nan")
            metrics = {f"search_best_{self.reward}": best, f"search_mean_{self.reward}": mean}
            if self.log is not None:
                self.log.log_weights(step, self.epoch, self._top_weights)
                self.log.log_metrics(step, self.epoch, metrics)
            self.save_checkpoint()
            for callback in self.callbacks:
                callback.on_search_round(self, step, self.generation, self.generations + 1, metrics)
        self._search_batches = None
        return self._top()[0][0]

    def required_metrics(self) -> tuple[str, ...]:
        return (self.reward,)

    # -- checkpoint -----------------------------------------------------------------------------
    def algorithm_state(self) -> dict[str, Any]:
        return {"history": dict(self.history), "generation": self.generation}

    def load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        self.history = dict(state["history"])
        self.generation = state["generation"]
        if self.history:
            self._top_weights = self._parent_shares()


def _band(train_flops: tuple[float, float] | None, bins: int, timeout: int) -> FlopsBand | None:
    """The training band the arguments describe, or a ValueError naming the argument."""
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"SposTrainer: flops_bins must be an integer >= 1, got {bins!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ValueError(
            f"SposTrainer: sample_timeout must be an integer >= 1 (draws per path), got {timeout!r}"
        )
    if train_flops is None:
        return None
    if not isinstance(train_flops, (tuple, list)) or len(train_flops) != 2:
        raise ValueError(f"SposTrainer: train_flops must be a pair (low, high) or None, got {train_flops!r}")
    low, high = train_flops
    for value in (low, high):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"SposTrainer: train_flops must hold two finite numbers, got {train_flops!r}")
    if not low < high:
        raise ValueError(f"SposTrainer: train_flops must be (low, high) with low < high, got {train_flops!r}")
    return FlopsBand(float(low), float(high), bins)
