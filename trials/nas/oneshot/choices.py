"""The choices of a super-net as a trainer sees them: one group per key.

Mutables that share a key share one decision, so a trainer holds one set of architecture
weights (or one sampled decision) per key and applies it to every module of the group. The
groups come in the search space's order (the model's registration order), which is also the
order in which ENAS' controller decides them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trials.errors import MutableError
from trials.nas.model import parse_model
from trials.nas.mutables import InputChoice, LayerChoice, _Choice
from trials.searchspace import (
    Decision,
    InputChoiceSpec,
    InputDecision,
    LayerChoiceSpec,
    LayerDecision,
    SearchSpace,
    architecture_to_json,
)

#: Candidate names that mean "this edge carries nothing"; DARTS never exports them.
ZERO_NAMES = frozenset({"none", "zero"})


@dataclass(frozen=True)
class ChoiceGroup:
    """Every module of the model that carries ``key``, and the key's spec in the space."""

    key: str
    spec: LayerChoiceSpec | InputChoiceSpec
    modules: tuple[_Choice, ...]

    @property
    def is_layer(self) -> bool:
        return isinstance(self.spec, LayerChoiceSpec)

    @property
    def candidates(self) -> tuple[str, ...]:
        return self.spec.candidates

    @property
    def n_chosen(self) -> int | None:
        """How many inputs an input choice keeps (None: any number); 1 for a layer choice."""
        return self.spec.n_chosen if isinstance(self.spec, InputChoiceSpec) else 1

    def __len__(self) -> int:
        return len(self.spec.candidates)

    def describe(self) -> str:
        kind = "LayerChoice" if self.is_layer else "InputChoice"
        return f"{kind} {self.key!r}"

    def apply_weights(self, weights: torch.Tensor) -> None:
        """A weighted mixture of the candidates, each run and scaled by its weight; a summing
        layer choice skips its ``none``/``zero`` candidates (their output is zero, so leaving them
        out changes neither the sum nor any gradient; a mean would change its divisor)."""
        every = list(range(len(self)))
        zeros = set(self.zero_candidates()) if self.is_layer else set()
        nonzero = [i for i in every if i not in zeros] or every
        for module in self.modules:
            module.set_mask(weights, active=nonzero if module.reduction == "sum" else every)

    def apply_indices(self, indices: Sequence[int], device: torch.device | str | None = None) -> None:
        """Only the candidates at ``indices`` are run (a sampled or final decision)."""
        mask = torch.zeros(len(self), dtype=torch.bool, device=device)
        if len(indices):
            mask[list(indices)] = True
        for module in self.modules:
            module.set_mask(mask, active=indices)

    def decision(self, indices: Sequence[int]) -> Decision:
        """The typed decision (what an architecture file holds) for candidate ``indices``."""
        if isinstance(self.spec, LayerChoiceSpec):
            (index,) = indices
            return LayerDecision(int(index), self.candidates[index])
        ordered = sorted(int(i) for i in indices)
        return InputDecision(tuple(ordered), tuple(self.candidates[i] for i in ordered))

    def zero_candidates(self) -> list[int]:
        return [i for i, name in enumerate(self.candidates) if name.lower() in ZERO_NAMES]


def bind_choices(model: nn.Module) -> tuple[SearchSpace, tuple[ChoiceGroup, ...]]:
    """The model's search space and one group per key, in the space's order."""
    parsed = parse_model(model)
    by_key: dict[str, list[_Choice]] = {}
    for occurrence in parsed.occurrences:
        by_key.setdefault(occurrence.module.key, []).append(occurrence.module)
    groups = []
    for spec in parsed.space.nas_choices:
        modules = by_key.get(spec.key, [])
        if not modules:  # the model itself is the choice: nothing a trainer can drive
            raise MutableError(
                f"choice {spec.key!r} is the model itself; wrap it in an nn.Module to search it"
            )
        assert all(isinstance(m, (LayerChoice, InputChoice)) for m in modules)
        groups.append(ChoiceGroup(spec.key, spec, tuple(modules)))
    return parsed.space, tuple(groups)


@dataclass(frozen=True)
class ChoiceDifference:
    """The first way one network's choices differ from another's, by key (see :func:`first_difference`)."""

    key: str
    expected: LayerChoiceSpec | InputChoiceSpec | None  # None: the choice is extra
    got: LayerChoiceSpec | InputChoiceSpec | None  # None: the choice is missing


def first_difference(
    expected: Sequence[LayerChoiceSpec | InputChoiceSpec], got: Sequence[LayerChoiceSpec | InputChoiceSpec]
) -> ChoiceDifference | None:
    """Whether ``got`` holds exactly ``expected``'s choices, key for key with equal specs: the first
    key missing or different (in ``expected``'s order), else the first extra one, else None."""
    built = {spec.key: spec for spec in got}
    for spec in expected:
        other = built.get(spec.key)
        if other != spec:
            return ChoiceDifference(spec.key, spec, other)
    keys = {spec.key for spec in expected}
    extra = next((spec for spec in got if spec.key not in keys), None)
    return ChoiceDifference(extra.key, None, extra) if extra is not None else None


def random_indices(group: ChoiceGroup, rng: random.Random) -> list[int]:
    """A uniformly random decision: one candidate, ``n_chosen`` distinct inputs, or any subset."""
    n = len(group)
    if group.is_layer:
        return [rng.randrange(n)]
    if group.n_chosen is None:
        return [i for i in range(n) if rng.random() < 0.5]
    return sorted(rng.sample(range(n), group.n_chosen))


def random_architecture(groups: Sequence[ChoiceGroup], rng: random.Random) -> dict[str, list[int]]:
    return {group.key: random_indices(group, rng) for group in groups}


def random_architecture_of(model: nn.Module, seed: int) -> dict[str, Any]:
    """A uniformly random architecture of ``model``'s space, in the JSON form that
    ``apply_fixed_architecture`` takes: the baseline that every search has to beat."""
    _, groups = bind_choices(model)
    return architecture_to_json(to_decisions(groups, random_architecture(groups, random.Random(seed))))


def apply_architecture(
    groups: Sequence[ChoiceGroup], arch: Mapping[str, Sequence[int]], device: torch.device | str | None = None
) -> None:
    """Run only the chosen candidates of every group (``arch``: key -> candidate indices)."""
    for group in groups:
        group.apply_indices(arch[group.key], device)


def to_decisions(groups: Sequence[ChoiceGroup], arch: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    return {group.key: group.decision(arch[group.key]) for group in groups}


def connect_all(groups: Sequence[ChoiceGroup], device: torch.device | str | None = None) -> None:
    """Every candidate on (used to trace the super-net's graph)."""
    for group in groups:
        group.apply_indices(range(len(group)), device)
