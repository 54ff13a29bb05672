"""NSGA-II's order of results under several objectives: constrained rank, then crowding distance.

Deb et al. 2002: a feasible result beats every infeasible one, infeasible ones compare by total
violation, feasible ones by Pareto dominance. So the feasible results form the first fronts (their
non-dominated sort) and each distinct violation level of the infeasible ones forms one more
front, smallest first. Within a front, a result in a sparser region (larger crowding distance)
is preferred, which spreads the search along the front.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trials.objectives import Objectives, crowding_distance, non_dominated_sort


@dataclass(frozen=True)
class Standing:
    """Where one result stands: its front (0 is best) and its crowding distance within it."""

    rank: int
    crowding: float

    @property
    def key(self) -> tuple[int, float]:
        """Smaller is better: for ``min``/``max`` over results."""
        return (self.rank, -self.crowding)


def standings(objectives: Objectives, results: Sequence[Mapping[str, Any]]) -> list[Standing]:
    """The :class:`Standing` of each of ``results`` (each holding every metric of the objectives)."""
    violations = [objectives.violation(r) for r in results]
    feasible = [i for i, v in enumerate(violations) if v == 0]
    fronts = [
        [feasible[j] for j in front]
        for front in non_dominated_sort([objectives.vector(results[i]) for i in feasible])
    ]
    for level in sorted({v for v in violations if v > 0}):
        fronts.append([i for i, v in enumerate(violations) if v == level])
    placed: dict[int, Standing] = {}
    for rank, front in enumerate(fronts):
        distances = crowding_distance([objectives.vector(results[i]) for i in front])
        for i, distance in zip(front, distances, strict=True):
            placed[i] = Standing(rank, distance)
    return [placed[i] for i in range(len(results))]
