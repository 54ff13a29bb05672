"""The JSON the dashboard's charts need beyond the REST API (docs/rest.md, "Dashboard views"):
final metrics since a cursor, per-choice statistics, the NAS view and the Pareto front of an
experiment."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from manager.http.openapi import conflict, documented
from manager.http.pareto import objectives_or_409, pareto_json
from manager.http.queries import IntQuery, experiment_or_404
from manager.http.responses import SafeJSONResponse
from manager.http.state import SECURED, ApiState, State
from manager.store import ExperimentRecord
from manager.views import archstats
from manager.views.pareto import pareto
from manager.views.searchlog import DEFAULT_POINTS, MAX_POINTS

router = APIRouter(dependencies=SECURED)

MAX_TOP_K = 1000
MAX_SINCE = 2**62
SINCE = IntQuery("since", 0, 0, MAX_SINCE)
TOP = IntQuery("top", 10, 1, MAX_TOP_K)
POINTS = IntQuery("points", DEFAULT_POINTS, 2, MAX_POINTS)


def cached_view(
    state: ApiState, record: ExperimentRecord, key: tuple[Any, ...], build: Callable[[Any], dict[str, Any]]
) -> Response:
    """A view rendered once per change of the experiment (the cache keeps the bytes), not
    walked by FastAPI's jsonable_encoder on every request (half of nas-view's time)."""
    body = state.views.view(
        state.store,
        record.id,
        (*key, record.status, record.search_space is None),
        lambda t: bytes(SafeJSONResponse(build(t)).body),
    )
    return Response(body, media_type="application/json")


@router.get(
    "/experiments/{experiment_id}/final-metrics", response_model=None, openapi_extra=documented(SINCE)
)
def final_metrics(experiment_id: str, request: Request, state: State) -> Response:
    experiment_or_404(state.store, experiment_id)
    since = SINCE.read(request)
    # values are finite or None already: skip the API's per-value NaN walk over 10,000 rows
    body = json.dumps(archstats.final_metrics(state.store, experiment_id, since), separators=(",", ":"))
    return Response(body, media_type="application/json")


@router.get("/experiments/{experiment_id}/choice-stats", response_model=None, openapi_extra=documented(TOP))
def choice_stats(experiment_id: str, request: Request, state: State) -> Response:
    record = experiment_or_404(state.store, experiment_id)
    top = TOP.read(request)
    return cached_view(state, record, ("stats", top), lambda t: archstats.choice_stats(t, record, top))


@router.get("/experiments/{experiment_id}/nas-view", response_model=None, openapi_extra=documented(POINTS))
def nas_view(experiment_id: str, request: Request, state: State) -> Response:
    record = experiment_or_404(state.store, experiment_id)
    points = POINTS.read(request)
    return cached_view(state, record, ("nas", points), lambda t: archstats.nas_view(t, record, points))


@router.get(
    "/experiments/{experiment_id}/pareto",
    response_model=None,
    responses=conflict("a single-objective experiment (no 'objectives' in its config): no front"),
)
def pareto_front(experiment_id: str, state: State) -> Response:
    record = experiment_or_404(state.store, experiment_id)
    objectives = objectives_or_409(record)
    return cached_view(
        state,
        record,
        ("pareto",),
        lambda _t: pareto_json(pareto(objectives, state.store.all_trials(record.id))),
    )
