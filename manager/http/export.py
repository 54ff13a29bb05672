"""``GET /experiments/{id}/export``: every trial of an experiment as JSON rows or as CSV.

For a multi-objective experiment each row also says whether the trial is on the Pareto front
(``pareto``) and its rank (``paretoRank``: 1 on the front, None for a trial that is not ranked:
not succeeded, or a result without every metric); single-objective rows are unchanged."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from manager.http.responses import finite
from manager.http.shapes import final_metric
from manager.store import TrialRecord, now_ms
from manager.views.pareto import ParetoResult


def export_rows(trials: list[TrialRecord], front: ParetoResult | None = None) -> list[dict[str, Any]]:
    now = now_ms()
    rows = [
        {
            "id": t.id,
            "sequenceId": t.sequence_id,
            "status": t.status.value,
            "parameters": t.parameters,
            "finalMetric": final_metric(t),
            "finalMetricData": t.final_metric_data,
            "startTime": t.start_time,
            "endTime": t.end_time,
            "duration": t.duration(now),
        }
        for t in trials
    ]
    if front is not None:
        ranks = front.ranks()
        for row in rows:
            rank = ranks.get(row["id"])
            row.update(pareto=rank == 1, paretoRank=rank)
    return rows


def export_csv(trials: list[TrialRecord], front: ParetoResult | None = None) -> str:
    """One row per trial: fixed columns, then one column per search-space key (the chosen names)."""
    keys: list[str] = []
    for trial in trials:
        keys.extend(k for k in trial.parameters if k not in keys)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    ranked = ["pareto", "paretoRank"] if front is not None else []
    fixed = ["id", "sequenceId", "status", "finalMetric", *ranked, "startTime", "endTime", "duration"]
    writer.writerow([*fixed, *keys])
    for row, trial in zip(export_rows(trials, front), trials, strict=True):
        metric = row["finalMetric"]
        marks = [str(row["pareto"]).lower(), row["paretoRank"] or ""] if front is not None else []
        writer.writerow(
            [
                row["id"],
                row["sequenceId"],
                row["status"],
                "" if metric is None else finite(metric),
                *marks,
                row["startTime"] or "",
                row["endTime"] or "",
                "" if row["duration"] is None else f"{row['duration']:.3f}",
                *(_csv_value(trial.parameters.get(key)) for key in keys),
            ]
        )
    return out.getvalue()


def _csv_value(value: Any) -> str:
    if isinstance(value, dict) and "_value" in value:
        value = value["_value"]
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)
