"""Our search space as Optuna distributions, and Optuna's parameters back as our architectures.

Each key of the space becomes zero or more Optuna parameters (an :class:`Axis`):

- ``layer_choice``: one categorical over the candidates' indices.
- ``input_choice`` with ``n_chosen: null``: one boolean categorical per candidate (``key/i``),
  so any subset, the empty one included, can be proposed and TPE models each input on its own.
- ``input_choice`` with ``n_chosen: k``: one categorical over the C(n, k) subsets (``"0,2"``)
  while there are at most :data:`MAX_SUBSETS`, so no subset is proposed twice in two orders and
  the sampler sees whole subsets; beyond that, k categoricals ``key/pick0`` .. ``key/pick<k-1>``,
  the j-th over the positions ``0 .. n-j-1`` in the list of candidates not chosen yet (Optuna
  needs a fixed domain per parameter name, so positions rather than the remaining names).
  ``n_chosen`` 0 or n: fixed, no parameter.
- ``choice``: a categorical over the values when Optuna can store them (numbers, strings, null,
  all distinct), else over their indices. ``randint [low, high)``: an integer ``low .. high-1``.
- ``uniform`` / ``loguniform`` (and their q-types): a float over ``[low, high]`` (log scale for
  the log types); a q-type is rounded to a multiple of q and clipped afterwards, as NNI does.
- ``normal`` / ``lognormal`` (and q-types) have no bounds: the parameter is the quantile
  ``u`` in [0, 1] and the value ``mu + sigma * Phi^-1(u)`` (exp of it for lognormal), so a
  random proposal follows the normal law exactly and TPE models the quantile.

A key whose choice has one option only is fixed and takes no parameter. :meth:`Axis.encode`
is the inverse (an architecture back to parameters), used to tell Optuna about imported
results and about the architectures the tuner proposes itself when Optuna repeats one.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from trials.errors import SearchSpaceError
from trials.searchspace import ChoiceSpec, HyperParameterSpec, InputChoiceSpec, LayerChoiceSpec

#: Most subsets an ``n_chosen: k`` input choice is given as one categorical; more: one per pick.
MAX_SUBSETS = 256
#: A normal quantile is kept this far from 0 and 1, where Phi^-1 is infinite.
QUANTILE_EPS = 1e-12
_STORABLE = (str, int, float)


@dataclass(frozen=True)
class Axis:
    """One key of the space: its Optuna distributions, and the value from their parameters."""

    choice: ChoiceSpec
    distributions: Mapping[str, BaseDistribution]
    #: "layer", "any", "subsets", "picks", "fixed", "choice", "choice_idx", "randint", "float", "normal"
    scheme: str
    #: What a fixed key always is; the choice's options for "subsets".
    constant: Any = None

    @property
    def key(self) -> str:
        return self.choice.key

    def decode(self, params: Mapping[str, Any]) -> Any:
        """The key's value in the full form from Optuna's parameters."""
        choice, scheme = self.choice, self.scheme
        if scheme == "fixed":
            return self.constant
        if scheme == "layer":
            assert isinstance(choice, LayerChoiceSpec)
            index = int(params[self.key])
            return {"_value": choice.candidates[index], "_idx": index}
        if scheme in ("any", "subsets", "picks"):
            return _inputs(choice, self._chosen(params))
        if scheme == "choice_idx":
            assert isinstance(choice, HyperParameterSpec)
            return choice.args[int(params[self.key])]
        if scheme in ("choice", "randint"):
            return params[self.key]
        assert isinstance(choice, HyperParameterSpec)
        return _continuous(choice, float(params[self.key]))

    def encode(self, value: Any) -> dict[str, Any]:
        """Optuna's parameters for the key's full-form ``value`` (the inverse of :meth:`decode`)."""
        choice, scheme, key = self.choice, self.scheme, self.key
        if scheme == "fixed":
            return {}
        if scheme == "layer":
            return {key: int(value["_idx"])}
        if scheme == "any":
            chosen = set(value["_idx"])
            return {f"{key}/{i}": i in chosen for i in range(len(self.distributions))}
        if scheme == "subsets":
            return {key: ",".join(str(i) for i in sorted(value["_idx"]))}
        if scheme == "picks":
            remaining = list(range(len(choice.candidates)))  # type: ignore[union-attr]
            picks = {}
            for j, index in enumerate(sorted(value["_idx"])):
                picks[f"{key}/pick{j}"] = remaining.index(index)
                remaining.remove(index)
            return picks
        if scheme == "choice_idx":
            assert isinstance(choice, HyperParameterSpec)
            return {key: next(i for i, option in enumerate(choice.args) if option == value)}
        if scheme in ("choice", "randint"):
            return {key: value}
        assert isinstance(choice, HyperParameterSpec)
        return {key: _raw(choice, float(value), self.distributions[key])}

    def _chosen(self, params: Mapping[str, Any]) -> list[int]:
        key = self.key
        if self.scheme == "any":
            return [i for i in range(len(self.distributions)) if params[f"{key}/{i}"]]
        if self.scheme == "subsets":
            text = str(params[key])
            return [int(part) for part in text.split(",")] if text else []
        remaining = list(range(len(self.choice.candidates)))  # type: ignore[union-attr]
        return sorted(remaining.pop(int(params[f"{key}/pick{j}"])) for j in range(len(self.distributions)))


def axes_for(space_choices: list[ChoiceSpec], tuner: str) -> list[Axis]:
    """One :class:`Axis` per key; :class:`SearchSpaceError` naming a key Optuna cannot take."""
    axes = [axis_for(choice, tuner) for choice in space_choices]
    names: dict[str, str] = {}
    for axis in axes:
        for name in axis.distributions:
            if name in names:
                raise SearchSpaceError(
                    f"search space: '{axis.key}': its {tuner} parameter {name!r} clashes with key "
                    f"'{names[name]}'; rename one of them"
                )
            names[name] = axis.key
    return axes


def axis_for(choice: ChoiceSpec, tuner: str) -> Axis:
    key = choice.key
    if isinstance(choice, LayerChoiceSpec):
        n = len(choice.candidates)
        if n == 1:
            return Axis(choice, {}, "fixed", {"_value": choice.candidates[0], "_idx": 0})
        return Axis(choice, {key: CategoricalDistribution(list(range(n)))}, "layer")
    if isinstance(choice, InputChoiceSpec):
        return _input_axis(choice)
    kind, args = choice.type, choice.args
    if kind == "choice":
        if any(isinstance(option, Mapping) and "_name" in option for option in args):
            raise SearchSpaceError(
                f"search space: '{key}': nested choices ('_name' options) are not supported by {tuner}"
            )
        if len(args) == 1:
            return Axis(choice, {}, "fixed", args[0])
        if _storable(args):
            return Axis(choice, {key: CategoricalDistribution(list(args))}, "choice")
        return Axis(choice, {key: CategoricalDistribution(list(range(len(args))))}, "choice_idx")
    if kind == "randint":
        low, high = int(args[0]), int(args[1]) - 1
        if high == low:
            return Axis(choice, {}, "fixed", low)
        return Axis(choice, {key: IntDistribution(low, high)}, "randint")
    if kind in ("uniform", "quniform", "loguniform", "qloguniform"):
        log = "log" in kind
        return Axis(choice, {key: FloatDistribution(float(args[0]), float(args[1]), log=log)}, "float")
    return Axis(choice, {key: FloatDistribution(0.0, 1.0)}, "normal")  # normal, lognormal and q-types


def _input_axis(choice: InputChoiceSpec) -> Axis:
    key, n, k = choice.key, len(choice.candidates), choice.n_chosen
    if k is None:
        if n == 0:
            return Axis(choice, {}, "fixed", {"_value": [], "_idx": []})
        return Axis(choice, {f"{key}/{i}": CategoricalDistribution([False, True]) for i in range(n)}, "any")
    if k in (0, n):
        return Axis(choice, {}, "fixed", _inputs(choice, list(range(k))))
    if math.comb(n, k) <= MAX_SUBSETS:
        subsets = [",".join(map(str, subset)) for subset in itertools.combinations(range(n), k)]
        return Axis(choice, {key: CategoricalDistribution(subsets)}, "subsets")
    picks = {f"{key}/pick{j}": CategoricalDistribution(list(range(n - j))) for j in range(k)}
    return Axis(choice, picks, "picks")


def _inputs(choice: ChoiceSpec, chosen: list[int]) -> dict[str, Any]:
    assert isinstance(choice, InputChoiceSpec)
    indices = sorted(chosen)
    return {"_value": [choice.candidates[i] for i in indices], "_idx": indices}


def _storable(options: list[Any]) -> bool:
    """True when Optuna can store the options themselves: plain, finite, distinct under ==."""
    plain = all(option is None or isinstance(option, _STORABLE) for option in options)
    finite = all(not isinstance(option, float) or math.isfinite(option) for option in options)
    return plain and finite and len(set(options)) == len(options)


def _continuous(choice: HyperParameterSpec, raw: float) -> Any:
    """NNI's value of a continuous type from the Optuna parameter (see the module docstring)."""
    kind, args = choice.type, choice.args
    value = raw
    if kind in ("normal", "qnormal", "lognormal", "qlognormal"):
        u = min(max(raw, QUANTILE_EPS), 1.0 - QUANTILE_EPS)
        value = NormalDist(float(args[0]), float(args[1])).inv_cdf(u)
        if kind in ("lognormal", "qlognormal"):
            value = math.exp(min(value, 709.0))
    if kind.startswith("q"):
        q = args[-1]
        steps = round(value / q)
        value = int(steps) * q if isinstance(q, int) else steps * q
    if kind in ("uniform", "quniform", "loguniform", "qloguniform"):
        value = min(max(value, args[0]), args[1])
    return value


def _raw(choice: HyperParameterSpec, value: float, distribution: BaseDistribution) -> float:
    """The Optuna parameter that gives ``value`` (clipped into the distribution's range)."""
    kind, args = choice.type, choice.args
    assert isinstance(distribution, FloatDistribution)
    if kind in ("normal", "qnormal", "lognormal", "qlognormal"):
        if kind in ("lognormal", "qlognormal"):
            value = math.log(value) if value > 0 else -math.inf
        raw = (
            NormalDist(float(args[0]), float(args[1])).cdf(value)
            if math.isfinite(value)
            else float(value > 0)
        )
    else:
        raw = value
    return min(max(float(raw), distribution.low), distribution.high)


def neighbour(
    params: Mapping[str, Any],
    distributions: Mapping[str, BaseDistribution],
    names: list[str],
    rng: random.Random,
) -> dict[str, Any]:
    """``params`` with each parameter of ``names`` moved: another category, or a random step of
    about a tenth of the range (on the log axis for a log distribution)."""
    moved = dict(params)
    for name in names:
        distribution, value = distributions[name], params[name]
        if isinstance(distribution, CategoricalDistribution):
            moved[name] = rng.choice([c for c in distribution.choices if c != value] or [value])
        elif isinstance(distribution, IntDistribution):
            others = [i for i in range(distribution.low, distribution.high + 1) if i != value]
            scale = max(1, round(0.1 * len(others)))
            near = [i for i in others if abs(i - value) <= scale]
            moved[name] = rng.choice(near or others or [value])
        else:
            assert isinstance(distribution, FloatDistribution)
            low, high = distribution.low, distribution.high
            axis = math.log if distribution.log else float
            point = axis(value) + rng.gauss(0.0, 0.1 * (axis(high) - axis(low)))
            point = math.exp(point) if distribution.log else point
            moved[name] = min(max(point, low), high)
    return moved
