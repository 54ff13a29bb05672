"""An experiment's Pareto front: which trials no other trial beats, under the experiment's objectives.

One function, :func:`pareto`, serves the REST route, the export and (through the route) the CLI
and the dashboard, so that they cannot disagree. It ranks the SUCCEEDED trials whose final result
holds every metric the objectives and constraints name, by constrained domination
(:meth:`trials.objectives.Objectives.beats`): the trials that meet every constraint come first,
sorted into non-dominated fronts; those that break one come after, ordered by their total
violation. So an infeasible trial is on the front (rank 1) only when no trial is feasible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from manager.store import TrialRecord
from trials.objectives import Objectives, front_ranks
from trials.status import TrialStatus


def experiment_objectives(config: Mapping[str, Any]) -> Objectives | None:
    """The objectives stored with an experiment's config JSON; None for a single objective.

    The config keeps them at its top level as ``objectives`` (a list of ``{metric, mode}``) and
    ``constraints`` (a list of strings); fewer than two objectives is a single-objective search.
    """
    entries = config.get("objectives")
    if not isinstance(entries, list) or len(entries) < 2:
        return None
    return Objectives.from_config(entries, config.get("constraints"))


@dataclass(frozen=True)
class ParetoPoint:
    """One ranked trial: its objective values (as reported), its rank (1: the front), feasibility."""

    trial: TrialRecord
    values: Mapping[str, float]
    rank: int
    feasible: bool

    @property
    def on_front(self) -> bool:
        return self.rank == 1


@dataclass(frozen=True)
class ParetoResult:
    """Every ranked trial of an experiment, in sequence order, and the counts the views show."""

    objectives: Objectives
    points: tuple[ParetoPoint, ...]

    @property
    def front(self) -> list[ParetoPoint]:
        return [p for p in self.points if p.on_front]

    @property
    def dominated(self) -> int:
        """Feasible trials off the front."""
        return sum(1 for p in self.points if p.feasible and not p.on_front)

    @property
    def infeasible(self) -> int:
        """Trials that break a constraint (on the front only when no trial meets them all)."""
        return sum(1 for p in self.points if not p.feasible)

    def ranks(self) -> dict[str, int]:
        """Trial id -> rank, for the ranked trials only."""
        return {p.trial.id: p.rank for p in self.points}


def pareto(objectives: Objectives, trials: Sequence[TrialRecord]) -> ParetoResult:
    """Rank ``trials`` by constrained domination; trials that did not succeed or whose result
    lacks a metric are left out (they have no place on a front)."""
    ranked = [t for t in trials if _complete(objectives, t)]
    ranked.sort(key=lambda t: t.sequence_id)
    results = [t.final_metric_data for t in ranked]
    violations = [objectives.violation(r) for r in results]
    feasible = [i for i, v in enumerate(violations) if v == 0]
    rank = [0] * len(ranked)
    feasible_ranks = front_ranks([objectives.vector(results[i]) for i in feasible])
    for j, depth in zip(feasible, feasible_ranks, strict=True):
        rank[j] = depth
    # infeasible trials compare by their violation alone: one rank per distinct violation
    deepest = max(feasible_ranks, default=0)
    levels = {v: k for k, v in enumerate(sorted({v for v in violations if v > 0}))}
    for i, v in enumerate(violations):
        if v > 0:
            rank[i] = deepest + 1 + levels[v]
    metrics = objectives.metrics
    points = tuple(
        ParetoPoint(t, {m: float(r[m]) for m in metrics}, rank[i], violations[i] == 0)
        for i, (t, r) in enumerate(zip(ranked, results, strict=True))
    )
    return ParetoResult(objectives, points)


def _complete(objectives: Objectives, trial: TrialRecord) -> bool:
    data = trial.final_metric_data
    return (
        trial.status == TrialStatus.SUCCEEDED and isinstance(data, Mapping) and not objectives.missing(data)
    )
