"""P-DARTS (Chen et al. 2019): progressive differentiable architecture search.

DARTS searches a shallow super-net and retrains a deep one, so the architecture it finds
suits a depth it never saw. P-DARTS searches in stages of growing depth (the paper: 5, 11 and
17 cells) and keeps the cost in bounds by search space approximation: after every stage but
the last, the weakest candidates of every layer choice are dropped (the paper: 8 -> 5 -> 3
operations per edge), and the deeper network of the next stage is built with the survivors
only. Each stage trains a fresh network; its first ``warmup_epochs`` train only the weights.

Search space regularisation: a deep super-net favours parameter-free skip-connects, which
speed up training but not the final network. Their outputs pass through dropout whose rate
starts at the stage's ``skip_dropout`` and decays over the stage (the paper's reference
code: ``r * (E - e - 1) / E`` during the warm-up, then ``r * exp(-(e - W) * decay)``), and
the export keeps at most ``max_skip`` skip-connects in the normal cell, replacing the weakest
by the next best operation of their edge.

Everything the user sees is in the ORIGINAL space: ``search_space.json``, the checkpoint's
space, ``weights.jsonl`` (full-length vectors, dropped candidates at 0) and the export.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from trials.nas.mutables import LayerChoice
from trials.nas.oneshot.choices import ChoiceGroup, bind_choices, first_difference
from trials.nas.oneshot.darts import DartsTrainer
from trials.searchspace import InputChoiceSpec, LayerChoiceSpec

NetworkFactory = Callable[[int], nn.Module]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer, int], Any]

#: Candidate names that mean "the input as it is" (the zoo's, NNI's and the paper's spellings).
SKIP_NAMES = ("skipconnect", "skip_connect", "skip", "identity")

_INSTEAD = {
    "num_epochs": "depths and epochs_per_stage (the search runs len(depths) * epochs_per_stage epochs)",
    "optimizer": "optimizer_factory",
    "lr_scheduler": "lr_scheduler_factory",
}


def default_optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """The paper's: SGD, learning rate 0.025, momentum 0.9, weight decay 3e-4."""
    return torch.optim.SGD(params, lr=0.025, momentum=0.9, weight_decay=3e-4, foreach=True)


def default_lr_scheduler(optimizer: torch.optim.Optimizer, epochs: int) -> Any:
    """The paper's: cosine annealing to 0 over the stage's epochs."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0.0)


class PdartsTrainer(DartsTrainer):
    """P-DARTS (see the module docstring); arguments beyond the shared ones:

    ``network(depth)`` builds a fresh super-net of ``depth`` cells with every candidate; it
    must give the same search space at every depth. ``depths``: one stage per entry.
    ``epochs_per_stage``; ``warmup_epochs``: the first epochs of each stage leave the
    architecture weights alone. ``num_to_drop[k]``: candidates dropped from every layer choice
    after stage ``k`` (zero candidates first, at least one kept). ``skip_dropout[k]``: stage
    ``k``'s initial dropout rate on parameter-free skip-connects (0: off), decaying by
    ``skip_dropout_decay``. ``max_skip``: skip-connects allowed in the export among the live
    choices whose key starts with ``limited_prefix`` (None: no limit); ``skip_names``: the
    candidate names that are skip-connects. ``optimizer_factory(params)`` and
    ``lr_scheduler_factory(optimizer, epochs_per_stage)`` (which may return None) build each
    stage's optimizer and scheduler. ``carry_arch_weights``: start a stage's architecture
    weights from the previous stage's survivors (the paper starts them afresh). DARTS'
    ``arch_lr``, ``arch_betas``, ``arch_weight_decay`` and ``unrolled`` pass through.
    """

    algorithm = "P-DARTS"

    def __init__(
        self,
        network: NetworkFactory,
        *,
        depths: Sequence[int] = (5, 11, 17),
        epochs_per_stage: int = 25,
        warmup_epochs: int = 10,
        num_to_drop: Sequence[int] = (3, 2),
        skip_dropout: Sequence[float] = (0.1, 0.4, 0.7),
        skip_dropout_decay: float = 0.2,
        max_skip: int | None = 2,
        skip_names: Collection[str] = SKIP_NAMES,
        limited_prefix: str = "normal",
        optimizer_factory: OptimizerFactory | None = None,
        lr_scheduler_factory: SchedulerFactory | None = None,
        carry_arch_weights: bool = False,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        for argument, instead in _INSTEAD.items():
            if argument in kwargs:
                raise ValueError(
                    f"{name}: {argument} cannot be given, as every stage builds a new network and "
                    f"optimizer; use {instead}"
                )
        _check_arguments(
            name,
            network=network,
            depths=depths,
            epochs_per_stage=epochs_per_stage,
            warmup_epochs=warmup_epochs,
            num_to_drop=num_to_drop,
            skip_dropout=skip_dropout,
            skip_dropout_decay=skip_dropout_decay,
            max_skip=max_skip,
            skip_names=skip_names,
            limited_prefix=limited_prefix,
            optimizer_factory=optimizer_factory,
            lr_scheduler_factory=lr_scheduler_factory,
            carry_arch_weights=carry_arch_weights,
        )
        self.network = network
        self.depths = tuple(int(d) for d in depths)
        self.epochs_per_stage = int(epochs_per_stage)
        self.num_to_drop = tuple(int(n) for n in num_to_drop)
        self.skip_dropout = tuple(float(r) for r in skip_dropout)
        self.skip_dropout_decay = float(skip_dropout_decay)
        self.max_skip = max_skip
        self.skip_names = frozenset(n.lower() for n in skip_names)
        self.limited_prefix = limited_prefix
        self.optimizer_factory = optimizer_factory or default_optimizer
        self.lr_scheduler_factory = lr_scheduler_factory or default_lr_scheduler
        self.carry_arch_weights = carry_arch_weights
        if kwargs.get("seed") is not None:
            torch.manual_seed(kwargs["seed"])  # the first network's weights follow the seed too
        model = self._new_network(self.depths[0])
        super().__init__(
            model, num_epochs=len(self.depths) * self.epochs_per_stage, warmup_epochs=warmup_epochs, **kwargs
        )
        #: the original space's groups (no modules): what ``select()`` indices and the export refer to
        self.space_groups = tuple(ChoiceGroup(g.key, g.spec, ()) for g in self.groups)
        #: per layer-choice key, the candidates (indices in the original space) still searched
        self.survivors: dict[str, list[int]] = {g.key: list(range(len(g))) for g in self.groups if g.is_layer}
        self.stage = 0  # the stage whose network self.model is (0-based)
        self.skip_rate = 0.0  # the skip-connect dropout rate of the epoch in progress
        self._skip_hooks: list[RemovableHandle] = []
        arch = self.arch_optimizer.defaults
        self._arch_settings = {k: arch[k] for k in ("lr", "betas", "eps", "weight_decay")}
        self.optimizer, self.lr_scheduler = self._new_optimizers()

    # -- stages ---------------------------------------------------------------------------------
    def stage_of(self, epoch: int) -> int:
        return min(epoch // self.epochs_per_stage, len(self.depths) - 1)

    def architecture_learns(self, epoch: int) -> bool:
        return epoch % self.epochs_per_stage >= self.warmup_epochs

    def skip_rate_at(self, epoch: int) -> float:
        """The skip-connect dropout rate of ``epoch`` (the paper's reference code's schedule)."""
        stage, e = self.stage_of(epoch), epoch % self.epochs_per_stage
        rate, total, warmup = self.skip_dropout[stage], self.epochs_per_stage, self.warmup_epochs
        if e < warmup:
            return rate * (total - e - 1) / total
        return rate * math.exp(-(e - warmup) * self.skip_dropout_decay)

    def train_epoch(self, epoch: int) -> None:
        while self.stage < self.stage_of(epoch):
            self._next_stage()
        self.skip_rate = self.skip_rate_at(epoch)
        self._install_skip_dropout()
        super().train_epoch(epoch)

    def fit(self) -> dict[str, Any]:
        try:
            return super().fit()
        finally:
            self._remove_skip_dropout()

    def _next_stage(self) -> None:
        """Drop the weakest candidates, then build the next stage's deeper network with the rest."""
        previous = {
            g.key: (self._alive(g.key), alpha.detach().clone())
            for g, alpha in zip(self.groups, self.alphas, strict=True)
        }
        self._drop_weakest(self.num_to_drop[self.stage])
        self.stage += 1
        self._build_stage(previous if self.carry_arch_weights else None)

    def _drop_weakest(self, count: int) -> None:
        """Remove ``count`` candidates from every layer choice: zero ones first, then the lowest weights."""
        for group, alpha in zip(self.groups, self.alphas, strict=True):
            if not group.is_layer:
                continue
            alive = self.survivors[group.key]
            weights = torch.softmax(alpha.detach(), dim=-1).tolist()
            zeros = set(self._full(group.key).zero_candidates())
            order = sorted(range(len(alive)), key=lambda j: (alive[j] not in zeros, weights[j], j))
            dropped = set(order[: min(count, len(alive) - 1)])
            self.survivors[group.key] = [i for j, i in enumerate(alive) if j not in dropped]

    def _build_stage(self, previous: Mapping[str, tuple[list[int], torch.Tensor]] | None) -> None:
        """Make ``self.stage``'s network (pruned to the survivors) and everything that trains it."""
        depth = self.depths[self.stage]
        model = self._new_network(depth)
        self._check_space(model, depth)
        for module in model.modules():
            if isinstance(module, LayerChoice):
                keep = self.survivors[module.key]
                if len(keep) < len(module):
                    module.prune(keep)
        _, groups = bind_choices(model)
        self.refuse_unsupported(groups)
        # the previous network's last references go before the new one reaches the device
        self._remove_skip_dropout()
        self.optimizer.state.clear()
        self.optimizer.param_groups.clear()
        self.model, self.groups = model, groups
        self.model.to(self.device)
        self.model.train()
        self.optimizer, self.lr_scheduler = self._new_optimizers()
        alphas = []
        for group in groups:
            if previous is not None and group.key in previous:
                alive, old = previous[group.key]
                alphas.append(nn.Parameter(old[[alive.index(i) for i in self._alive(group.key)]].clone()))
            else:
                alphas.append(nn.Parameter(1e-3 * torch.randn(len(group), device=self.device)))
        self.alphas = nn.ParameterList(alphas)
        self.arch_optimizer = torch.optim.Adam(self.alphas.parameters(), foreach=True, **self._arch_settings)
        self._install_skip_dropout()

    def _new_network(self, depth: int) -> nn.Module:
        model = self.network(depth)
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"{type(self).__name__}: network({depth}) must return an nn.Module, got {type(model).__name__}"
            )
        return model

    def _new_optimizers(self) -> tuple[torch.optim.Optimizer, Any]:
        optimizer = self.optimizer_factory(self.model.parameters())
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"{type(self).__name__}: optimizer_factory must return a torch optimizer, got {type(optimizer).__name__}"
            )
        return optimizer, self.lr_scheduler_factory(optimizer, self.epochs_per_stage)

    def _check_space(self, model: nn.Module, depth: int) -> None:
        """The new stage's network must have the first stage's search space, key for key."""
        name, where = type(self).__name__, f"stage {self.stage + 1} (network({depth}))"
        space, _ = bind_choices(model)
        difference = first_difference(self.space.nas_choices, space.nas_choices)
        if difference is None:
            return
        key, first, built = difference.key, difference.expected, difference.got
        if built is None:
            problem = f"the network of {where} lacks the choice {key!r} of the first stage's search space"
        elif first is None:
            problem = (
                f"the network of {where} has the choice {key!r}, which the first stage's search space lacks"
            )
        else:
            problem = f"the choice {key!r} of the network of {where} has {_describe(built)}, the first stage's has {_describe(first)}"
        raise ValueError(f"{name}: {problem}; network(depth) must build the same choices at every depth")

    # -- skip-connect dropout -------------------------------------------------------------------
    def is_skip(self, candidate: str) -> bool:
        return candidate.lower() in self.skip_names

    def _install_skip_dropout(self) -> None:
        """A forward hook on every parameter-free skip candidate (a learned one is left alone)."""
        if self._skip_hooks:
            return
        seen: set[int] = set()
        for module in self.model.modules():
            if not isinstance(module, LayerChoice):
                continue
            for candidate_name, candidate in zip(module.names, module.candidates, strict=True):
                if id(candidate) in seen or not self.is_skip(candidate_name):
                    continue
                if next(candidate.parameters(), None) is None:
                    seen.add(id(candidate))
                    self._skip_hooks.append(candidate.register_forward_hook(self._skip_dropout_hook))

    def _skip_dropout_hook(self, module: nn.Module, inputs: Any, output: Any) -> Any:
        if module.training and self.skip_rate > 0 and isinstance(output, torch.Tensor):
            return F.dropout(output, self.skip_rate, training=True)
        return None

    def _remove_skip_dropout(self) -> None:
        for handle in self._skip_hooks:
            handle.remove()
        self._skip_hooks = []

    # -- what the log and the progress line show --------------------------------------------------
    def validate(self) -> dict[str, float]:
        metrics = super().validate()
        metrics.update(stage=self.stage + 1, depth=self.depths[self.stage], skip_dropout=self.skip_rate)
        return metrics

    def progress_note(self) -> str:
        return f"stage {self.stage + 1}/{len(self.depths)}, {self.depths[self.stage]} cells"

    def decision_groups(self) -> Sequence[ChoiceGroup]:
        return self.space_groups

    def alive_candidates(self, group: ChoiceGroup) -> list[int]:
        return self._alive(group.key)

    def _alive(self, key: str) -> list[int]:
        """The candidates of ``key`` still searched (an input choice keeps them all)."""
        return list(self.survivors[key]) if key in self.survivors else list(range(len(self._full(key))))

    def _full(self, key: str) -> ChoiceGroup:
        return next(g for g in self.space_groups if g.key == key)

    def choice_weights(self) -> dict[str, list[float]]:
        """Per key of the original space, one weight per candidate; dropped candidates at 0."""
        current = super().choice_weights()
        out: dict[str, list[float]] = {}
        for group in self.space_groups:
            values = current[group.key]
            if group.is_layer:
                full = [0.0] * len(group)
                for index, value in zip(self.survivors[group.key], values, strict=True):
                    full[index] = value
                values = full
            out[group.key] = values
        return out

    # -- export ---------------------------------------------------------------------------------
    def select(self) -> dict[str, list[int]]:
        """DARTS' rule over the survivors (indices in the original space), then the skip limit."""
        chosen = super().select()
        if self.max_skip is not None:
            self._limit_skips(chosen, self.choice_weights(), self.max_skip)
        return chosen

    def _limit_skips(
        self, chosen: dict[str, list[int]], weights: Mapping[str, list[float]], limit: int
    ) -> None:
        """While more than ``limit`` live limited choices pick a skip, the weakest skip yields to
        its edge's best surviving non-zero, non-skip candidate (input choices are kept as they are)."""
        inputs = [g for g in self.space_groups if not g.is_layer]
        named = {name for g in inputs for name in g.candidates}
        picked = {g.candidates[i] for g in inputs for i in chosen[g.key]}
        limited = [
            g
            for g in self.space_groups
            if g.is_layer
            and g.key.startswith(self.limited_prefix)
            and (g.key in picked or g.key not in named)
        ]
        while True:
            skips = [g for g in limited if self.is_skip(g.candidates[chosen[g.key][0]])]
            if len(skips) <= limit:
                return
            replaceable = []
            for group in skips:
                zeros = set(group.zero_candidates())
                others = [
                    i
                    for i in self.survivors[group.key]
                    if i not in zeros and not self.is_skip(group.candidates[i])
                ]
                if others:
                    replaceable.append((group, others))
            if not replaceable:
                return  # every surviving candidate of those edges is a skip or zero: nothing to swap in
            group, others = min(replaceable, key=lambda item: weights[item[0].key][chosen[item[0].key][0]])
            w = weights[group.key]
            chosen[group.key] = [max(others, key=lambda i: w[i])]

    # -- checkpoint -----------------------------------------------------------------------------
    def algorithm_state(self) -> dict[str, Any]:
        return {
            **super().algorithm_state(),
            "stage": self.stage,
            "survivors": {key: list(alive) for key, alive in self.survivors.items()},
            "depths": list(self.depths),
            "epochs_per_stage": self.epochs_per_stage,
        }

    def load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        """Rebuild the checkpoint's stage network (pruned as it was) before the base loads its weights."""
        name = type(self).__name__
        if list(state["depths"]) != list(self.depths) or state["epochs_per_stage"] != self.epochs_per_stage:
            raise ValueError(
                f"{name}: the checkpoint's search ran depths {list(state['depths'])} with "
                f"epochs_per_stage {state['epochs_per_stage']}, this one {list(self.depths)} with "
                f"{self.epochs_per_stage}; resume with the same stages, or start afresh with resume=False"
            )
        stage = int(state["stage"])
        survivors = {key: [int(i) for i in alive] for key, alive in state["survivors"].items()}
        if stage != self.stage or survivors != self.survivors:
            self.stage, self.survivors = stage, survivors
            self._build_stage(None)
        super().load_algorithm_state(state)


def _describe(spec: LayerChoiceSpec | InputChoiceSpec) -> str:
    if isinstance(spec, LayerChoiceSpec):
        return f"layer candidates {list(spec.candidates)}"
    return f"input candidates {list(spec.candidates)} choosing {spec.n_chosen}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_arguments(name: str, **args: Any) -> None:
    """One ValueError per bad argument, naming it and what is allowed."""

    def bad(argument: str, allowed: str) -> ValueError:
        return ValueError(f"{name}: {argument} must be {allowed}, got {args[argument]!r}")

    if not callable(args["network"]):
        raise bad("network", "a callable depth -> super-net (nn.Module)")
    depths = args["depths"]
    if (
        isinstance(depths, (str, bytes))
        or not isinstance(depths, Sequence)
        or not depths
        or not all(_is_int(d) and d >= 1 for d in depths)
    ):
        raise bad("depths", "a non-empty sequence of cell counts, each at least 1")
    stages = len(depths)
    epochs = args["epochs_per_stage"]
    if not _is_int(epochs) or epochs < 1:
        raise bad("epochs_per_stage", "an int at least 1")
    warmup = args["warmup_epochs"]
    if not _is_int(warmup) or not 0 <= warmup < epochs:
        raise bad("warmup_epochs", f"an int in 0..{epochs - 1} (less than epochs_per_stage {epochs})")
    drops = args["num_to_drop"]
    if (
        not isinstance(drops, Sequence)
        or len(drops) != stages - 1
        or not all(_is_int(n) and n >= 0 for n in drops)
    ):
        raise bad("num_to_drop", f"a sequence of {stages - 1} counts >= 0 (one per stage but the last)")
    rates = args["skip_dropout"]
    if (
        not isinstance(rates, Sequence)
        or len(rates) != stages
        or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and 0 <= r < 1 for r in rates)
    ):
        raise bad("skip_dropout", f"a sequence of {stages} rates in [0, 1) (one per stage)")
    decay = args["skip_dropout_decay"]
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < math.inf:
        raise bad("skip_dropout_decay", "a finite number >= 0")
    max_skip = args["max_skip"]
    if max_skip is not None and (not _is_int(max_skip) or max_skip < 0):
        raise bad("max_skip", "None (no limit) or an int >= 0")
    names = args["skip_names"]
    if (
        isinstance(names, (str, bytes))
        or not isinstance(names, Collection)
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise bad("skip_names", "a collection of candidate names (strings), not one string")
    if not isinstance(args["limited_prefix"], str):
        raise bad("limited_prefix", "a string (the start of the keys whose skip-connects are limited)")
    for factory in ("optimizer_factory", "lr_scheduler_factory"):
        if args[factory] is not None and not callable(args[factory]):
            raise bad(factory, "None or a callable")
    if not isinstance(args["carry_arch_weights"], bool):
        raise bad("carry_arch_weights", "True or False")
