"""The result routes of an experiment: its metrics since a cursor, its best trials, and the export
of every trial as JSON or CSV."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from manager.http.export import export_csv, export_rows
from manager.http.openapi import documented
from manager.http.queries import MAX_PAGE, ChoiceQuery, IntQuery, experiment_or_404
from manager.http.responses import SafeJSONResponse
from manager.http.shapes import metric_json, trial_json
from manager.http.state import SECURED, State
from manager.store import now_ms
from manager.views.pareto import experiment_objectives, pareto

router = APIRouter(dependencies=SECURED)

#: The most metrics one answer holds (a tenth of it when ``limit`` is not given).
MAX_METRICS_PAGE = 10000
SINCE = IntQuery("since", 0, 0)
LIMIT = IntQuery("limit", MAX_METRICS_PAGE // 10, 1, MAX_METRICS_PAGE)
K = IntQuery("k", 1, 1, MAX_PAGE)
FORMAT = ChoiceQuery("format", ("json", "csv"), "json")


@router.get(
    "/experiments/{experiment_id}/metrics", response_model=None, openapi_extra=documented(SINCE, LIMIT)
)
def metrics(experiment_id: str, request: Request, state: State) -> Response:
    experiment_or_404(state.store, experiment_id)
    since = SINCE.read(request)
    items = state.store.metrics_since(experiment_id, since, LIMIT.read(request))
    return SafeJSONResponse(
        {"items": [metric_json(m) for m in items], "next": items[-1].id if items else since}
    )


@router.get("/experiments/{experiment_id}/best", response_model=None, openapi_extra=documented(K))
def best(experiment_id: str, request: Request, state: State) -> Response:
    record = experiment_or_404(state.store, experiment_id)
    k = K.read(request)
    now = now_ms()
    return SafeJSONResponse(
        [trial_json(t, now) for t in state.store.best_trials(experiment_id, k, record.optimize_mode)]
    )


@router.get(
    "/experiments/{experiment_id}/export",
    response_model=None,
    openapi_extra=documented(FORMAT),
    responses={
        200: {
            "description": "every trial: JSON rows, or CSV with format=csv",
            "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
        }
    },
)
def export(experiment_id: str, request: Request, state: State) -> Any:
    record = experiment_or_404(state.store, experiment_id)
    kind = FORMAT.read(request)
    trials = state.store.all_trials(experiment_id)
    objectives = experiment_objectives(record.config)
    front = pareto(objectives, trials) if objectives is not None else None
    if kind == "csv":
        return PlainTextResponse(export_csv(trials, front), media_type="text/csv")
    return SafeJSONResponse(export_rows(trials, front))
