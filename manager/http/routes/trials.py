"""The trial routes: a page of an experiment's trials, one trial with its intermediate results,
and killing a trial (its logs: :mod:`manager.http.routes.logs`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from manager.http.openapi import conflict, documented
from manager.http.queries import MAX_PAGE, ChoiceQuery, IntQuery, experiment_or_404, trial_or_404
from manager.http.responses import SafeJSONResponse
from manager.http.shapes import metric_json, trial_json
from manager.http.state import SECURED, State
from manager.store import TrialSort, now_ms
from trials.metrics import PERIODICAL
from trials.status import TrialStatus

router = APIRouter(dependencies=SECURED)

STATUS = ChoiceQuery("status", tuple(s.value for s in TrialStatus))
SORT = ChoiceQuery("sort", tuple(s.value for s in TrialSort), TrialSort.SEQUENCE_ID.value)
ORDER = ChoiceQuery("order", ("asc", "desc"), "asc")
OFFSET = IntQuery("offset", 0, 0)
LIMIT = IntQuery("limit", 50, 1, MAX_PAGE)
TRIAL = "/experiments/{experiment_id}/trials/{trial_id}"


@router.get(
    "/experiments/{experiment_id}/trials",
    response_model=None,
    openapi_extra=documented(STATUS, SORT, ORDER, OFFSET, LIMIT),
)
def list_trials(experiment_id: str, request: Request, state: State) -> Response:
    experiment_or_404(state.store, experiment_id)
    status_text = STATUS.read(request)
    sort = SORT.read(request)
    order = ORDER.read(request)
    page = state.store.trial_page(
        experiment_id,
        status=TrialStatus(status_text) if status_text else None,
        sort=TrialSort(sort),
        descending=order == "desc",
        offset=OFFSET.read(request),
        limit=LIMIT.read(request),
    )
    now = now_ms()
    items = [trial_json(t, now) for t in page.items]
    return SafeJSONResponse({"total": page.total, "offset": page.offset, "items": items})


@router.get(TRIAL, response_model=None)
def get_trial(experiment_id: str, trial_id: str, state: State) -> Response:
    trial = trial_or_404(state.store, experiment_id, trial_id)
    out = trial_json(trial)
    out["intermediate"] = [metric_json(m) for m in state.store.trial_metrics(trial_id, PERIODICAL)]
    return SafeJSONResponse(out)


@router.delete(TRIAL, response_model=None, responses=conflict("the trial has ended already"))
async def kill_trial(experiment_id: str, trial_id: str, state: State) -> dict[str, Any]:
    trial_or_404(state.store, experiment_id, trial_id)
    return trial_json(await state.experiments.cancel_trial(experiment_id, trial_id))
