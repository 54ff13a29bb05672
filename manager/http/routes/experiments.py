"""The experiment routes: list, create, read, change limits, stop, resume, delete, search space.

Reading routes run in FastAPI's thread pool on the store's read connections; routes that change
an experiment run on the event loop, where the experiment loops live.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response

from manager.config import parse_config
from manager.http.bodies import CREATE_BODY, PATCH_BODY, json_body, parse_create, parse_patch
from manager.http.errors import ApiError
from manager.http.openapi import conflict, documented
from manager.http.queries import ChoiceQuery, experiment_or_404
from manager.http.responses import SafeJSONResponse
from manager.http.shapes import describe_experiment, experiment_json
from manager.http.state import SECURED, State
from manager.store import KEEP
from trials.messages import one_line
from trials.status import ExperimentStatus

router = APIRouter(dependencies=SECURED)

STATUS = ChoiceQuery("status", tuple(s.value for s in ExperimentStatus))
EXPERIMENT = "/experiments/{experiment_id}"


@router.get("/experiments", response_model=None, openapi_extra=documented(STATUS))
def list_experiments(request: Request, state: State) -> Response:
    store = state.store
    status_text = STATUS.read(request)
    records = store.list_experiments(ExperimentStatus(status_text) if status_text else None)
    ids = [r.id for r in records]
    counts, failures = store.trial_counts(ids), store.failure_summaries(ids)
    out = []
    for record in records:
        best = store.best_trials(record.id, 1, record.optimize_mode)
        out.append(experiment_json(record, counts[record.id], best[0] if best else None, failures[record.id]))
    return SafeJSONResponse(out)


@router.post("/experiments", status_code=201, response_model=None, openapi_extra=documented(body=CREATE_BODY))
async def create_experiment(request: Request, state: State) -> dict[str, Any]:
    config_json, base_dir = parse_create(await json_body(request))
    try:
        config = parse_config(config_json, Path(base_dir), source="config")
        record = await state.experiments.create(config)
    except ValueError as exc:  # ConfigError, SearchSpaceError, TunerError: nothing was created
        field = getattr(exc, "field", None)
        raise ApiError(400, one_line(str(exc)), "config" if field is None else f"config.{field}") from None
    return describe_experiment(state.store, state.store.get_experiment(record.id) or record)


@router.get(EXPERIMENT, response_model=None)
def get_experiment(experiment_id: str, state: State) -> Response:
    return SafeJSONResponse(describe_experiment(state.store, experiment_or_404(state.store, experiment_id)))


@router.patch(EXPERIMENT, response_model=None, openapi_extra=documented(body=PATCH_BODY))
async def update_experiment(experiment_id: str, request: Request, state: State) -> dict[str, Any]:
    experiment_or_404(state.store, experiment_id)
    changes = parse_patch(await json_body(request))
    fields = {
        name: changes.get(name, KEEP)
        for name in ("trial_concurrency", "max_trial_number", "max_experiment_duration")
    }
    record = await state.experiments.update(experiment_id, **fields)
    return describe_experiment(state.store, record)


@router.post(f"{EXPERIMENT}/stop", response_model=None, responses=conflict("the experiment is not active"))
async def stop_experiment(experiment_id: str, state: State) -> dict[str, Any]:
    experiment_or_404(state.store, experiment_id)
    return describe_experiment(state.store, await state.experiments.stop(experiment_id))


@router.post(
    f"{EXPERIMENT}/resume",
    response_model=None,
    responses=conflict("the experiment is not STOPPED, DONE or ERROR"),
)
async def resume_experiment(experiment_id: str, state: State) -> dict[str, Any]:
    experiment_or_404(state.store, experiment_id)
    return describe_experiment(state.store, await state.experiments.resume(experiment_id))


@router.delete(EXPERIMENT, status_code=204, response_model=None)
async def delete_experiment(experiment_id: str, state: State) -> Response:
    experiment_or_404(state.store, experiment_id)
    await state.experiments.delete(experiment_id)
    return Response(status_code=204)


@router.get(f"{EXPERIMENT}/search-space", response_model=None, responses=conflict("no search space yet"))
def search_space(experiment_id: str, state: State) -> Any:
    record = experiment_or_404(state.store, experiment_id)
    if record.search_space is None:
        raise ApiError(
            409, f"experiment {experiment_id} has no search space yet (ss_gen has not finished or failed)"
        )
    return record.search_space
