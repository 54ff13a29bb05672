"""A finite search space as a fixed sequence of categorical steps, and the set of sequences seen.

PPO emits one action per step and GridSearch counts through the sequences, so both need the
same numbering. Each key becomes steps:

- ``layer_choice``, ``choice`` and ``randint``: one step over the candidates, options or range;
- ``input_choice`` with ``n_chosen = k``: k steps, each picking a candidate index greater than
  the one before, so a sequence is a sorted combination and every set of inputs has exactly
  one sequence (no two orders of the same inputs);
- ``input_choice`` with ``n_chosen: null``: one yes/no step per candidate.

Actions are indices, never names, so equal candidate names never collide. Continuous types are
refused (``quniform`` / ``qloguniform`` only where the caller asks for their grid). With the
structural rule of :meth:`ActionSpace.allowed` and the counting of :meth:`ActionSpace.completions`,
:class:`SeenSequences` knows which prefixes have no unseen completion left, so a sampler can
avoid every architecture already proposed without rejection loops.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from manager.tuners.base import Parameters
from trials.errors import SearchSpaceError
from trials.searchspace import (
    HyperParameterSpec,
    InputChoiceSpec,
    InputDecision,
    LayerChoiceSpec,
    LayerDecision,
    SearchSpace,
)

#: Most actions one step may have (the length of a ``randint`` range or a grid).
MAX_STEP_ACTIONS = 10_000

Actions = tuple[int, ...]


@dataclass(frozen=True)
class KeyPlan:
    """How one key of the space maps to steps: ``count`` steps from ``first``, ``width`` actions each."""

    key: str
    kind: str  # layer | inputs | subset | option
    first: int
    count: int
    width: int
    n_chosen: int = 0
    options: tuple[Any, ...] = ()
    candidates: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """Distinct decisions for this key."""
        if self.kind == "inputs":
            return math.comb(self.width, self.n_chosen)
        if self.kind == "subset":
            return 2**self.width
        return self.width


class ActionSpace:
    """The steps of a finite space; decode and encode architectures as action sequences."""

    def __init__(self, space: SearchSpace, owner: str, grid_quantized: bool = False) -> None:
        plans: list[KeyPlan] = []
        step_key: list[int] = []
        first = 0
        for choice in space:
            plan = _plan(choice, first, owner, grid_quantized)
            plans.append(plan)
            step_key.extend([len(plans) - 1] * plan.count)
            first += plan.count
        self.plans = tuple(plans)
        self._step_key = tuple(step_key)
        self.widths = tuple(self.plans[k].width if self.plans[k].kind != "subset" else 2 for k in step_key)
        #: product of the sizes of the keys after key i
        after = [1] * (len(plans) + 1)
        for i in range(len(plans) - 1, -1, -1):
            after[i] = after[i + 1] * plans[i].size
        self._after = tuple(after)

    @property
    def length(self) -> int:
        """Number of steps of every sequence."""
        return len(self._step_key)

    @property
    def size(self) -> int:
        """Number of distinct architectures."""
        return self._after[0]

    def allowed(self, prefix: Sequence[int]) -> range:
        """The actions the structure allows at step ``len(prefix)`` (inputs ascending, room left)."""
        t = len(prefix)
        plan = self.plans[self._step_key[t]]
        if plan.kind == "inputs":
            j = t - plan.first
            low = prefix[t - 1] + 1 if j > 0 else 0
            return range(low, plan.width - plan.n_chosen + j + 1)
        return range(self.widths[t])

    def completions(self, prefix: Sequence[int]) -> int:
        """How many complete sequences start with ``prefix`` (which must follow :meth:`allowed`)."""
        t = len(prefix)
        if t == self.length:
            return 1
        index = self._step_key[t]
        plan = self.plans[index]
        j = t - plan.first
        if j == 0:
            return self._after[index]
        if plan.kind == "inputs":
            inside = math.comb(plan.width - 1 - prefix[t - 1], plan.n_chosen - j)
        else:  # subset: the remaining yes/no steps
            inside = 2 ** (plan.count - j)
        return inside * self._after[index + 1]

    def first_completion(self, prefix: Sequence[int]) -> Actions:
        """``prefix`` completed with the smallest allowed action at every later step."""
        actions = list(prefix)
        while len(actions) < self.length:
            actions.append(self.allowed(actions)[0])
        return tuple(actions)

    def decode(self, actions: Sequence[int]) -> Parameters:
        """The architecture (full form) of a complete sequence."""
        parameters: Parameters = {}
        for plan in self.plans:
            part = actions[plan.first : plan.first + plan.count]
            if plan.kind == "layer":
                parameters[plan.key] = LayerDecision(part[0], plan.candidates[part[0]]).to_json()
            elif plan.kind in ("inputs", "subset"):
                chosen = (
                    tuple(part) if plan.kind == "inputs" else tuple(i for i, bit in enumerate(part) if bit)
                )
                parameters[plan.key] = InputDecision(
                    chosen, tuple(plan.candidates[i] for i in chosen)
                ).to_json()
            else:
                parameters[plan.key] = plan.options[part[0]]
        return parameters

    def encode(self, parameters: Any, space: SearchSpace) -> Actions:
        """The sequence of an architecture of ``space`` in any accepted form; ValueError if it does not fit."""
        decisions = space.parse_architecture(parameters)
        actions: list[int] = []
        for plan in self.plans:
            decision = decisions[plan.key]
            if plan.kind == "layer":
                assert isinstance(decision, LayerDecision)
                actions.append(decision.index)
            elif plan.kind == "inputs":
                assert isinstance(decision, InputDecision)
                actions.extend(sorted(decision.indices))
            elif plan.kind == "subset":
                assert isinstance(decision, InputDecision)
                actions.extend(int(i in decision.indices) for i in range(plan.width))
            else:
                matches = [i for i, option in enumerate(plan.options) if _same(option, decision)]
                if not matches:
                    raise ValueError(f"'{plan.key}': {decision!r} is not on this tuner's grid")
                actions.append(matches[0])
        return tuple(actions)


class SeenSequences:
    """Sequences already proposed, counted per prefix, so exhausted branches can be skipped."""

    def __init__(self, actions: ActionSpace) -> None:
        self.actions = actions
        self._counts: dict[Actions, int] = {}

    def __len__(self) -> int:
        return self._counts.get((), 0)

    def __contains__(self, sequence: object) -> bool:
        return (
            isinstance(sequence, tuple) and len(sequence) == self.actions.length and sequence in self._counts
        )

    def __iter__(self) -> Any:
        length = self.actions.length
        return (prefix for prefix in self._counts if len(prefix) == length)

    def add(self, sequence: Actions) -> bool:
        """Remember ``sequence``; False when it was already known."""
        if sequence in self:
            return False
        for t in range(len(sequence) + 1):
            prefix = sequence[:t]
            self._counts[prefix] = self._counts.get(prefix, 0) + 1
        return True

    def exhausted(self, prefix: Actions = ()) -> bool:
        """True when every completion of ``prefix`` has been seen."""
        return self._counts.get(prefix, 0) >= self.actions.completions(prefix)

    def open_actions(self, prefix: Actions) -> list[int]:
        """Allowed actions after ``prefix`` that still lead to an unseen sequence."""
        return [a for a in self.actions.allowed(prefix) if not self.exhausted((*prefix, a))]


# -- planning ------------------------------------------------------------------------------------


def _plan(choice: Any, first: int, owner: str, grid_quantized: bool) -> KeyPlan:
    where = f"search space: '{choice.key}'"
    if isinstance(choice, LayerChoiceSpec):
        return KeyPlan(choice.key, "layer", first, 1, len(choice.candidates), candidates=choice.candidates)
    if isinstance(choice, InputChoiceSpec):
        n = len(choice.candidates)
        if choice.n_chosen is None:
            return KeyPlan(choice.key, "subset", first, n, n, candidates=choice.candidates)
        return KeyPlan(
            choice.key,
            "inputs",
            first,
            choice.n_chosen,
            n,
            n_chosen=choice.n_chosen,
            candidates=choice.candidates,
        )
    assert isinstance(choice, HyperParameterSpec)
    options = _options(choice, where, owner, grid_quantized)
    if len(options) > MAX_STEP_ACTIONS:
        raise SearchSpaceError(
            f"{where}: {choice.type} has {len(options)} values; {owner} handles at most {MAX_STEP_ACTIONS}"
        )
    return KeyPlan(choice.key, "option", first, 1, len(options), options=options)


def _options(choice: HyperParameterSpec, where: str, owner: str, grid_quantized: bool) -> tuple[Any, ...]:
    if choice.type == "choice":
        if any(isinstance(option, Mapping) and "_name" in option for option in choice.args):
            raise SearchSpaceError(f"{where}: nested choices ('_name' options) are not supported by {owner}")
        return tuple(choice.args)
    if choice.type == "randint":
        low, high = int(choice.args[0]), int(choice.args[1])
        if high - low > MAX_STEP_ACTIONS:
            raise SearchSpaceError(
                f"{where}: randint has {high - low} values; {owner} handles at most {MAX_STEP_ACTIONS}"
            )
        return tuple(range(low, high))
    if grid_quantized and choice.type in ("quniform", "qloguniform"):
        return _quantized_grid(choice, where, owner)
    allowed = "layer_choice, input_choice, choice, randint" + (
        ", quniform, qloguniform" if grid_quantized else ""
    )
    raise SearchSpaceError(
        f"{where}: {owner} cannot search the continuous type {choice.type}; it takes {allowed}"
    )


def _quantized_grid(choice: HyperParameterSpec, where: str, owner: str) -> tuple[Any, ...]:
    """Every value a q-type can take: the multiples of q inside [low, high], and the clipped ends."""
    low, high, q = choice.args
    steps = (high - low) / q
    if steps > MAX_STEP_ACTIONS:
        raise SearchSpaceError(
            f"{where}: {choice.type} has about {int(steps)} values; {owner} handles at most {MAX_STEP_ACTIONS}"
        )
    whole = all(isinstance(v, int) for v in (low, high, q))
    values: list[Any] = []
    k = math.ceil(low / q)
    if k * q > low:
        values.append(low)
    while k * q <= high:
        values.append(int(k * q) if whole else k * q)
        k += 1
    if values[-1] < high:
        values.append(high)
    return tuple(dict.fromkeys(values))


def _same(option: Any, value: Any) -> bool:
    """Equal and of the same kind (the option ``True`` is not ``1``), or equal numbers (``2 == 2.0``)."""
    if type(option) is type(value):
        return bool(option == value)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (option, value))
    return numbers and option == value
