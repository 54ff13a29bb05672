"""Several objectives at once: the words the config, the tuners, the store and the views share.

An experiment may name the metrics it optimizes (``objectives: [{metric: accuracy, mode:
maximize}, {metric: latency_ms, mode: minimize}]``) and bounds on metrics
(``constraints: ["latency_ms <= 20"]``). A trial's final result is then a dict holding every
named metric. Comparisons follow NSGA-II's constrained domination (Deb et al. 2002): a feasible
trial beats every infeasible one, two infeasible trials compare by their total violation, two
feasible ones by Pareto dominance. Torch-free and dependency-free (every trial may import it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trials.metrics import OPTIMIZE_MODES

Vector = tuple[float, ...]

_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=)\s*([-+0-9.eE]+|inf|-inf)\s*$")


class ObjectiveError(ValueError):
    """A bad ``objectives`` or ``constraints`` entry; the message names the field."""


@dataclass(frozen=True)
class Objective:
    """One metric to optimize, larger better (``maximize``) or smaller better (``minimize``)."""

    metric: str
    mode: str = "maximize"

    def oriented(self, value: float) -> float:
        """``value`` turned so that larger is always better (NaN: the worst possible)."""
        if math.isnan(value):
            return -math.inf
        return value if self.mode == "maximize" else -value


@dataclass(frozen=True)
class Constraint:
    """``metric <= bound`` or ``metric >= bound``."""

    metric: str
    op: str
    bound: float

    def violation(self, value: float) -> float:
        """How far ``value`` is outside the bound (0 when it holds; inf for NaN)."""
        if math.isnan(value):
            return math.inf
        excess = value - self.bound if self.op == "<=" else self.bound - value
        return max(0.0, excess)

    def __str__(self) -> str:
        short = f"{self.bound:g}"
        return f"{self.metric} {self.op} {short if float(short) == self.bound else repr(self.bound)}"


@dataclass(frozen=True)
class Objectives:
    """The objectives and constraints of one experiment, and how two results compare."""

    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric a final result must hold: the objectives', then the constraints' others."""
        names = [o.metric for o in self.objectives]
        return tuple(dict.fromkeys(names + [c.metric for c in self.constraints]))

    def missing(self, result: Mapping[str, Any]) -> list[str]:
        """The metrics ``result`` lacks (or holds as a non-number)."""
        return [name for name in self.metrics if not _is_number(result.get(name))]

    def vector(self, result: Mapping[str, Any]) -> Vector:
        """The objectives' values of ``result``, each oriented so that larger is better."""
        return tuple(o.oriented(float(result[o.metric])) for o in self.objectives)

    def violation(self, result: Mapping[str, Any]) -> float:
        """The total constraint violation of ``result`` (0: feasible)."""
        return sum(c.violation(float(result[c.metric])) for c in self.constraints)

    def beats(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        """Constrained domination: whether result ``a`` is better than result ``b``."""
        va, vb = self.violation(a), self.violation(b)
        if va == 0 and vb > 0:
            return True
        if va > 0 or vb > 0:
            return va < vb
        return dominates(self.vector(a), self.vector(b))

    def to_json(self) -> dict[str, Any]:
        return {
            "objectives": [{"metric": o.metric, "mode": o.mode} for o in self.objectives],
            "constraints": [str(c) for c in self.constraints],
        }

    @classmethod
    def from_config(cls, objectives: Any, constraints: Any = None) -> Objectives:
        """Parse the config's ``objectives`` and ``constraints``; errors name the entry."""
        if not isinstance(objectives, list) or not objectives:
            raise ObjectiveError("objectives: must be a non-empty list of {metric, mode}")
        parsed = []
        for i, entry in enumerate(objectives):
            where = f"objectives[{i}]"
            if not isinstance(entry, Mapping) or set(entry) - {"metric", "mode"}:
                raise ObjectiveError(
                    f"{where}: must be {{metric: NAME, mode: maximize|minimize}}, got {entry!r}"
                )
            metric, mode = entry.get("metric"), entry.get("mode", "maximize")
            if not isinstance(metric, str) or not metric:
                raise ObjectiveError(f"{where}.metric: must be a metric name, got {metric!r}")
            if mode not in OPTIMIZE_MODES:
                raise ObjectiveError(f"{where}.mode: must be maximize or minimize, got {mode!r}")
            parsed.append(Objective(metric, mode))
        names = [o.metric for o in parsed]
        if len(set(names)) != len(names):
            raise ObjectiveError(f"objectives: a metric is named twice ({', '.join(names)})")
        if constraints is not None and not isinstance(constraints, list):
            raise ObjectiveError(f"constraints: must be a list of 'METRIC <= NUMBER', got {constraints!r}")
        return cls(tuple(parsed), tuple(parse_constraint(c, i) for i, c in enumerate(constraints or [])))


def parse_constraint(text: Any, index: int = 0) -> Constraint:
    """``"latency_ms <= 20"`` (or ``>=``) as a :class:`Constraint`."""
    match = _CONSTRAINT.match(text) if isinstance(text, str) else None
    try:
        bound = float(match.group(3)) if match is not None else None
    except ValueError:  # the pattern lets "1.2.3" or "e" through
        bound = None
    if match is None or bound is None:
        raise ObjectiveError(
            f"constraints[{index}]: must read 'METRIC <= NUMBER' or 'METRIC >= NUMBER', got {text!r}"
        )
    return Constraint(match.group(1), match.group(2), bound)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether vector ``a`` Pareto-dominates ``b`` (larger is better in every coordinate)."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))


def non_dominated_sort(vectors: Sequence[Sequence[float]]) -> list[list[int]]:
    """Indices in fronts: the first front dominated by none, the next by none but the first, ...
    (each front in index order)."""
    fronts: list[list[int]] = []
    for index, rank in enumerate(front_ranks(vectors)):
        while len(fronts) < rank:
            fronts.append([])
        fronts[rank - 1].append(index)
    return fronts


def front_ranks(vectors: Sequence[Sequence[float]]) -> list[int]:
    """Each vector's non-dominated front (1: dominated by none; 2: by none outside front 1; ...),
    fast enough for 10,000 trials: the vectors are visited best first in lexicographic order
    (so only an earlier one can dominate a later one) and each goes, by binary search, into the
    first front that holds nothing dominating it (Zhang et al. 2015, ENS-BS). With two
    objectives a front, so visited, grows in its second coordinate, so its newest member alone
    decides whether it dominates a point."""
    two = bool(vectors) and len(vectors[0]) == 2
    order = sorted(range(len(vectors)), key=lambda i: vectors[i], reverse=True)
    fronts: list[list[Sequence[float]]] = []
    ranks = [0] * len(vectors)
    for i in order:
        point = vectors[i]
        low, high = 0, len(fronts)
        while low < high:  # the first front in which nothing dominates ``point``
            middle = (low + high) // 2
            members = fronts[middle][-1:] if two else reversed(fronts[middle])
            if any(_covers(member, point) for member in members):
                low = middle + 1
            else:
                high = middle
        if low == len(fronts):
            fronts.append([])
        fronts[low].append(point)
        ranks[i] = low + 1
    return ranks


def _covers(earlier: Sequence[float], later: Sequence[float]) -> bool:
    """Whether ``earlier`` dominates ``later``, given that it comes no later in lexicographic
    order: then no coordinate worse and the two not equal is enough."""
    return earlier != later and all(a >= b for a, b in zip(earlier, later, strict=True))


def pareto_front(vectors: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated vectors (larger is better in every coordinate)."""
    return non_dominated_sort(vectors)[0] if vectors else []


def crowding_distance(vectors: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II's crowding distance of each vector within its front (ends get infinity)."""
    n = len(vectors)
    if n == 0:
        return []
    distance = [0.0] * n
    for k in range(len(vectors[0])):
        order = sorted(range(n), key=lambda i: vectors[i][k])
        low, high = vectors[order[0]][k], vectors[order[-1]][k]
        distance[order[0]] = distance[order[-1]] = math.inf
        if high == low or not math.isfinite(high - low):
            continue
        for left, middle, right in zip(order, order[1:], order[2:], strict=False):  # triples
            distance[middle] += (vectors[right][k] - vectors[left][k]) / (high - low)
    return distance


def hypervolume_2d(vectors: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """The area dominated by two-objective ``vectors`` (larger better) and bounded below by
    ``reference``; points not better than the reference in both coordinates add nothing."""
    points = sorted(
        {(x, y) for x, y in vectors if x > reference[0] and y > reference[1]}, key=lambda p: (-p[0], -p[1])
    )
    area, best_y = 0.0, reference[1]
    for x, y in points:
        if y > best_y:
            area += (x - reference[0]) * (y - best_y)
            best_y = y
    return area


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
