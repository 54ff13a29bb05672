"""Random search: every architecture equally likely, none proposed twice while others remain.

Unlike NNI v1.9's random NAS tuner, input choices pick ``n_chosen`` *distinct* candidates, and
``n_chosen: null`` (any number, none included) works. A finite space is numbered: each
architecture is one integer in ``range(size)`` (mixed radix over the choices; a combination's
rank for an input choice). Drawing uniformly from that range and rejecting numbers already seen
is cheap while most of the space is unseen; once rejections keep failing, the unseen numbers are
listed and drawn from directly, so exhausting even the last architecture stays fast. Spaces
with a continuous hyper-parameter are infinite: every choice is sampled on its own, forever.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from manager.tuners.base import NoMoreTrials, Parameters, Tuner, TunerError, check_optimize_mode
from manager.tuners.checkpoint import CheckpointFormat, rng_from_json, rng_to_json, space_fingerprint
from trials.errors import SearchSpaceError
from trials.searchspace import (
    ChoiceSpec,
    HyperParameterSpec,
    InputChoiceSpec,
    InputDecision,
    LayerChoiceSpec,
    LayerDecision,
    SearchSpace,
)

CHECKPOINT = CheckpointFormat("RandomTuner", 1)
#: Draws that may hit seen architectures in a row before the unseen ones are listed.
MAX_REJECTIONS = 32
#: Largest space whose unseen architectures may be listed (bigger ones are never nearly exhausted).
MAX_ENUMERATION = 10_000_000


class RandomTuner(Tuner):
    """Uniform random search over NAS choices and NNI's hyper-parameter types.

    ``seed`` makes the sequence reproducible; ``optimize_mode`` is accepted for config symmetry
    (random search ignores results).
    """

    learns_from_results = False  # results never change what random search proposes
    multi_objective = True  # it ignores results, so any number of objectives will do

    def __init__(self, seed: int | None = None, optimize_mode: str = "maximize") -> None:
        self.validate_class_args(seed=seed, optimize_mode=optimize_mode)
        self.seed = seed
        self.optimize_mode = optimize_mode
        self._rng = random.Random(seed)
        self._space: SearchSpace | None = None
        self._axes: list[_Axis] = []
        self._size: int | None = None
        self._fingerprint: str | None = None
        self._seen: set[int] = set()
        #: ``_seen`` in hex, in the order seen: the checkpoint copies it rather than sorting and
        #: formatting every number each time (a cost that would grow with every trial).
        self._seen_hex: list[str] = []
        self._seen_fingerprint: str | None = None
        self._unseen: list[int] | None = None

    @classmethod
    def validate_class_args(cls, **class_args: Any) -> None:
        seed = class_args.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TunerError(f"tuner.classArgs.seed: must be a whole number or null, got {seed!r}")
        check_optimize_mode(class_args.get("optimize_mode", "maximize"))

    # -- Tuner -----------------------------------------------------------------------------------
    def update_search_space(self, space: SearchSpace) -> None:
        axes = [_axis(choice) for choice in space]
        self._space = space
        self._axes = axes
        self._size = space.size()
        self._fingerprint = space_fingerprint(space)
        if self._seen_fingerprint != self._fingerprint:
            self._seen, self._seen_hex = set(), []
            self._seen_fingerprint = self._fingerprint
        self._unseen = None

    def generate_parameters(self, parameter_id: int) -> Parameters:
        if self._space is None:
            raise TunerError("RandomTuner: update_search_space must come before generate_parameters")
        if self._size is None:
            return {axis.key: axis.sample(self._rng) for axis in self._axes}
        number = self._draw_unseen(self._size)
        self._mark_seen(number)
        return self._decode(number)

    def receive_trial_result(self, parameter_id: int, parameters: Parameters, value: Any) -> None:
        self._remember(parameters)

    def import_data(self, records: list[dict[str, Any]]) -> None:
        """Earlier trials count as seen, so a resumed experiment does not repeat them."""
        for record in records:
            if isinstance(record, Mapping):
                self._remember(record.get("parameter"))

    def save_checkpoint(self) -> dict[str, Any]:
        return CHECKPOINT.envelope(
            rng=rng_to_json(self._rng), space=self._seen_fingerprint, seen=list(self._seen_hex)
        )

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        """The generator always; the seen set only if it was made for this space (or none yet)."""
        state = CHECKPOINT.open(state)
        with CHECKPOINT.reading():
            rng = rng_from_json(state["rng"])
            seen = {int(text, 16) for text in state["seen"]}
            fingerprint = state["space"]
        self._rng = rng
        if self._fingerprint is None or fingerprint == self._fingerprint:
            self._seen, self._seen_fingerprint = seen, fingerprint
            self._seen_hex = [format(number, "x") for number in seen]
        self._unseen = None

    # -- numbering ------------------------------------------------------------------------------
    def _draw_unseen(self, size: int) -> int:
        if len(self._seen) >= size:
            raise NoMoreTrials(f"all {size} architectures of the search space have been proposed")
        if self._unseen is None:
            for _ in range(MAX_REJECTIONS):
                number = self._rng.randrange(size)
                if number not in self._seen:
                    return number
            if size > MAX_ENUMERATION:
                while (number := self._rng.randrange(size)) in self._seen:
                    pass
                return number
            self._unseen = [number for number in range(size) if number not in self._seen]
        position = self._rng.randrange(len(self._unseen))
        number = self._unseen[position]
        self._unseen[position] = self._unseen[-1]
        self._unseen.pop()
        return number

    def _decode(self, number: int) -> Parameters:
        parameters: Parameters = {}
        for axis in self._axes:
            number, digit = divmod(number, axis.size or 1)
            parameters[axis.key] = axis.decode(digit)
        return parameters

    def _remember(self, parameters: Any) -> None:
        """Mark an architecture (any accepted form) as seen; ignore one that does not fit the space."""
        if self._space is None or self._size is None:
            return
        try:
            decisions = self._space.parse_architecture(parameters)
            number, scale = 0, 1
            for axis in self._axes:
                number += axis.encode(decisions[axis.key]) * scale
                scale *= axis.size or 1
        except (ValueError, TypeError):
            return
        if number not in self._seen:
            self._mark_seen(number)
            self._unseen = None

    def _mark_seen(self, number: int) -> None:
        self._seen.add(number)
        self._seen_hex.append(format(number, "x"))


# -- one axis per choice --------------------------------------------------------------------------


class _Axis:
    """One choice of the space: its number of values (None if continuous) and the value <-> digit maps."""

    def __init__(self, choice: ChoiceSpec, size: int | None) -> None:
        self.key = choice.key
        self.size = size

    def decode(self, digit: int) -> Any:
        raise NotImplementedError

    def encode(self, decision: Any) -> int:
        raise NotImplementedError

    def sample(self, rng: random.Random) -> Any:
        assert self.size is not None
        return self.decode(rng.randrange(self.size))


class _LayerAxis(_Axis):
    def __init__(self, choice: LayerChoiceSpec) -> None:
        super().__init__(choice, len(choice.candidates))
        self.candidates = choice.candidates

    def decode(self, digit: int) -> Any:
        return LayerDecision(digit, self.candidates[digit]).to_json()

    def encode(self, decision: Any) -> int:
        return decision.index


class _InputAxis(_Axis):
    """``n_chosen`` distinct candidates (digit = rank of the sorted combination), or any subset (bitmask)."""

    def __init__(self, choice: InputChoiceSpec) -> None:
        n, k = len(choice.candidates), choice.n_chosen
        super().__init__(choice, 2**n if k is None else math.comb(n, k))
        self.candidates = choice.candidates
        self.n_chosen = k

    def decode(self, digit: int) -> Any:
        n = len(self.candidates)
        if self.n_chosen is None:
            indices = [i for i in range(n) if digit >> i & 1]
        else:
            indices = _unrank_combination(n, self.n_chosen, digit)
        return InputDecision(tuple(indices), tuple(self.candidates[i] for i in indices)).to_json()

    def encode(self, decision: Any) -> int:
        indices = sorted(decision.indices)
        if self.n_chosen is None:
            return sum(1 << i for i in indices)
        return _rank_combination(len(self.candidates), indices)


class _ChoiceAxis(_Axis):
    def __init__(self, choice: HyperParameterSpec) -> None:
        super().__init__(choice, len(choice.args))
        self.options = choice.args

    def decode(self, digit: int) -> Any:
        return self.options[digit]

    def encode(self, decision: Any) -> int:
        return next(i for i, option in enumerate(self.options) if option == decision)


class _RandintAxis(_Axis):
    def __init__(self, choice: HyperParameterSpec) -> None:
        self.low, high = int(choice.args[0]), int(choice.args[1])
        super().__init__(choice, high - self.low)

    def decode(self, digit: int) -> Any:
        return self.low + digit

    def encode(self, decision: Any) -> int:
        return int(decision) - self.low


class _ContinuousAxis(_Axis):
    """NNI's continuous types; q-types are rounded to multiples of q, bounded ones clipped to range."""

    def __init__(self, choice: HyperParameterSpec) -> None:
        super().__init__(choice, None)
        self.type = choice.type
        self.args = choice.args

    def sample(self, rng: random.Random) -> Any:
        kind, args = self.type, self.args
        if kind in ("uniform", "quniform"):
            value = rng.uniform(args[0], args[1])
        elif kind in ("loguniform", "qloguniform"):
            value = math.exp(rng.uniform(math.log(args[0]), math.log(args[1])))
        elif kind in ("normal", "qnormal"):
            value = rng.gauss(args[0], args[1])
        else:  # lognormal, qlognormal
            value = math.exp(min(rng.gauss(args[0], args[1]), 709.0))
        if kind.startswith("q"):
            value = _round_to_multiple(value, args[-1])
        if kind in ("uniform", "quniform", "loguniform", "qloguniform"):
            value = min(max(value, args[0]), args[1])
        return value


def _axis(choice: ChoiceSpec) -> _Axis:
    if isinstance(choice, LayerChoiceSpec):
        return _LayerAxis(choice)
    if isinstance(choice, InputChoiceSpec):
        return _InputAxis(choice)
    if choice.type == "choice":
        nested = [option for option in choice.args if isinstance(option, Mapping) and "_name" in option]
        if nested:
            raise SearchSpaceError(
                f"search space: '{choice.key}': nested choices ('_name' options) are not supported by Random"
            )
        return _ChoiceAxis(choice)
    if choice.type == "randint":
        return _RandintAxis(choice)
    return _ContinuousAxis(choice)


def _round_to_multiple(value: float, q: float) -> float | int:
    """``round(value / q) * q``; a whole-number q gives a whole number (a width, a count)."""
    steps = round(value / q)
    if isinstance(q, int):
        return int(steps) * q
    return steps * q


def _unrank_combination(n: int, k: int, rank: int) -> list[int]:
    """The ``rank``-th k-subset of range(n) in lexicographic order, as sorted indices."""
    chosen: list[int] = []
    candidate = 0
    while k > 0:
        starting_here = math.comb(n - candidate - 1, k - 1)
        if rank < starting_here:
            chosen.append(candidate)
            k -= 1
        else:
            rank -= starting_here
        candidate += 1
    return chosen


def _rank_combination(n: int, indices: list[int]) -> int:
    """Inverse of :func:`_unrank_combination`."""
    rank, previous, k = 0, -1, len(indices)
    for position, index in enumerate(indices):
        for skipped in range(previous + 1, index):
            rank += math.comb(n - skipped - 1, k - position - 1)
        previous = index
    return rank
