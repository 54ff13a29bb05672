"""A finite search space as genomes, feature vectors and neighbourhoods, for the predictor tuner.

A *genome* is one whole number per key, in the space's key order: the candidate index of a
``layer_choice`` or ``choice``, the offset of a ``randint`` value from its low end, and for an
``input_choice`` (``n_chosen`` fixed or ``null``) the bit mask of the chosen candidates. A tuple
of ints is cheap to hash, compare and store in a checkpoint, and one architecture has exactly one
genome whatever the order of its inputs.

The *features* a predictor learns from come from the space alone, so any user space works, not
only cells: a one-hot block per ``layer_choice`` and ``choice``, a multi-hot block per input
choice, and one number in [0, 1] per ``randint`` (its values are ordered; a one-hot would hide
that 3 lies between 2 and 4). A *neighbour* differs in exactly one key: another candidate or
option, a ``randint`` moved by a small step (or a far one), one chosen input swapped for an
unchosen one (``n_chosen`` fixed) or one input added or dropped (``n_chosen: null``).

Continuous hyper-parameter types are refused with one message naming the key (the numbering is
:class:`~manager.tuners.actionspace.ActionSpace`'s, shared with PPO and GridSearch).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from manager.tuners.actionspace import ActionSpace, KeyPlan
from manager.tuners.base import Parameters
from trials.searchspace import HyperParameterSpec, SearchSpace

Genome = tuple[int, ...]
#: A key with more values than this lists a sample of its neighbours, not all of them.
MAX_NEIGHBOURS_PER_KEY = 24


class GenomeSpace:
    """Genomes of one finite search space: decode, encode, features, random draws, neighbours."""

    def __init__(self, space: SearchSpace, owner: str) -> None:
        self.space = space
        self.actions = ActionSpace(space, owner)  # refuses continuous types, naming the key
        self.plans: tuple[KeyPlan, ...] = self.actions.plans
        self._ordered = tuple(
            isinstance(space[plan.key], HyperParameterSpec) and space[plan.key].type == "randint"
            for plan in self.plans
        )
        offsets, width = [], 0
        for plan, ordered in zip(self.plans, self._ordered, strict=True):
            offsets.append(width)
            width += 1 if ordered else plan.width
        self._offsets = tuple(offsets)
        #: Length of a feature vector.
        self.width = width

    @property
    def size(self) -> int:
        return self.actions.size

    # -- conversions -----------------------------------------------------------------------------
    def decode(self, genome: Genome) -> Parameters:
        """The architecture (full form) of ``genome``."""
        actions: list[int] = []
        for plan, gene in zip(self.plans, genome, strict=True):
            if plan.kind == "inputs":
                actions.extend(i for i in range(plan.width) if gene >> i & 1)
            elif plan.kind == "subset":
                actions.extend(gene >> i & 1 for i in range(plan.width))
            else:
                actions.append(gene)
        return self.actions.decode(actions)

    def encode(self, parameters: Any) -> Genome:
        """The genome of an architecture in any accepted form; ValueError or TypeError if it does not fit."""
        actions = self.actions.encode(parameters, self.space)
        genome: list[int] = []
        for plan in self.plans:
            part = actions[plan.first : plan.first + plan.count]
            if plan.kind == "inputs":
                genome.append(sum(1 << i for i in part))
            elif plan.kind == "subset":
                genome.append(sum(bit << i for i, bit in enumerate(part)))
            else:
                genome.append(part[0])
        return tuple(genome)

    def features(self, genome: Genome) -> list[float]:
        """The predictor's input: one-hot, multi-hot and scaled blocks (see the module docstring)."""
        row = [0.0] * self.width
        for plan, ordered, offset, gene in zip(self.plans, self._ordered, self._offsets, genome, strict=True):
            if ordered:
                row[offset] = gene / (plan.width - 1) if plan.width > 1 else 0.0
            elif plan.kind in ("inputs", "subset"):
                for i in range(plan.width):
                    if gene >> i & 1:
                        row[offset + i] = 1.0
            else:
                row[offset + gene] = 1.0
        return row

    # -- drawing ---------------------------------------------------------------------------------
    def random(self, rng: random.Random) -> Genome:
        """A uniformly drawn genome (it may have been seen; the caller filters)."""
        genome = []
        for plan in self.plans:
            if plan.kind == "inputs":
                genome.append(sum(1 << i for i in rng.sample(range(plan.width), plan.n_chosen)))
            elif plan.kind == "subset":
                genome.append(rng.getrandbits(plan.width) if plan.width else 0)
            else:
                genome.append(rng.randrange(plan.width))
        return tuple(genome)

    def neighbours(self, genome: Genome, rng: random.Random) -> list[Genome]:
        """Every genome that differs from ``genome`` in one key (a sample of them for wide keys)."""
        found: list[Genome] = []
        for index, (plan, ordered) in enumerate(zip(self.plans, self._ordered, strict=True)):
            for gene in _moves(plan, ordered, genome[index], rng):
                found.append((*genome[:index], gene, *genome[index + 1 :]))
        return found


def _moves(plan: KeyPlan, ordered: bool, gene: int, rng: random.Random) -> Sequence[int]:
    """The other values of one key that count as one step away."""
    if plan.kind == "subset":
        return [gene ^ (1 << i) for i in range(plan.width)]
    if plan.kind == "inputs":
        chosen = [i for i in range(plan.width) if gene >> i & 1]
        free = [i for i in range(plan.width) if not gene >> i & 1]
        swaps = [gene ^ (1 << a) ^ (1 << b) for a in chosen for b in free]
        return swaps if len(swaps) <= MAX_NEIGHBOURS_PER_KEY else rng.sample(swaps, MAX_NEIGHBOURS_PER_KEY)
    others = range(plan.width)
    if plan.width - 1 <= MAX_NEIGHBOURS_PER_KEY:
        return [value for value in others if value != gene]
    if ordered:  # near steps first, then a few far ones
        near = {gene + step for step in (-2, -1, 1, 2) if 0 <= gene + step < plan.width}
        far = {rng.randrange(plan.width) for _ in range(MAX_NEIGHBOURS_PER_KEY - len(near))}
        return sorted((near | far) - {gene})
    return sorted({rng.randrange(plan.width) for _ in range(MAX_NEIGHBOURS_PER_KEY)} - {gene})
