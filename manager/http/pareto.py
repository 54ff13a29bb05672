"""``GET /experiments/{id}/pareto``'s JSON: the front of a multi-objective experiment, its counts,
and every ranked trial (for the dashboard's scatter); the export reads the same ranks."""

from __future__ import annotations

from typing import Any

from manager.http.errors import ApiError
from manager.http.shapes import trial_json
from manager.store import ExperimentRecord, now_ms
from manager.views.pareto import ParetoResult, experiment_objectives
from trials.objectives import Objectives


def objectives_or_409(record: ExperimentRecord) -> Objectives:
    """The experiment's objectives; a 409 that says it has one objective otherwise."""
    objectives = experiment_objectives(record.config)
    if objectives is None:
        raise ApiError(
            409,
            f"experiment {record.id} has one objective (it {record.optimize_mode}s the final metric), "
            "so no Pareto front: give its config two or more 'objectives'",
        )
    return objectives


def pareto_json(result: ParetoResult) -> dict[str, Any]:
    """``{objectives, constraints, front: [trial + values, rank, feasible], dominated, infeasible,
    points: [{id, sequenceId, values, rank, feasible}]}``."""
    now = now_ms()
    front = [
        {**trial_json(p.trial, now), "values": dict(p.values), "rank": p.rank, "feasible": p.feasible}
        for p in result.front
    ]
    points = [
        {
            "id": p.trial.id,
            "sequenceId": p.trial.sequence_id,
            "values": dict(p.values),
            "rank": p.rank,
            "feasible": p.feasible,
        }
        for p in result.points
    ]
    return {
        **result.objectives.to_json(),
        "front": front,
        "dominated": result.dominated,
        "infeasible": result.infeasible,
        "points": points,
    }
