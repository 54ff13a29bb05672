"""``GET /experiments/{id}/export``: every trial of an experiment as JSON rows or as CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from manager.http.responses import finite
from manager.http.shapes import final_metric
from manager.store import TrialRecord, now_ms


def export_rows(trials: list[TrialRecord]) -> list[dict[str, Any]]:
    now = now_ms()
    return [
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


def export_csv(trials: list[TrialRecord]) -> str:
    """One row per trial: fixed columns, then one column per search-space key (the chosen names)."""
    keys: list[str] = []
    for trial in trials:
        keys.extend(k for k in trial.parameters if k not in keys)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "sequenceId", "status", "finalMetric", "startTime", "endTime", "duration", *keys])
    for row, trial in zip(export_rows(trials), trials, strict=True):
        metric = row["finalMetric"]
        writer.writerow(
            [
                row["id"],
                row["sequenceId"],
                row["status"],
                "" if metric is None else finite(metric),
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
