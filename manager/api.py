"""The REST API of docs/rest.md: routes, JSON shapes, the token check, and error answers.

Every answer is camelCase JSON (or text for logs and CSV); the reading routes return their
:class:`SafeJSONResponse` themselves, as FastAPI would first walk every value of a returned dict
with ``jsonable_encoder`` (7 ms for a page of 50 trials, more than the page's query). Bad input
gets a 4xx with one line in ``{"detail": ...}`` naming the field and what is allowed; never a 500. Query parameters are
parsed here rather than by FastAPI so that their errors read like the config's (a 400 naming the
parameter) and so that an empty value (``?status=``, which some clients send for "unset") means
"not given". Reading routes run in FastAPI's thread pool on the store's read connections;
routes that change an experiment run on the event loop, where the experiment loops live.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from manager import webauth
from manager.config import MAX_COUNT, parse_config
from manager.dashboard import add_experiment_views, install_web
from manager.loop.errors import ExperimentNotFound, InvalidState, TrialNotFound
from manager.loop.experiments import ExperimentManager
from manager.store import (
    KEEP,
    ExperimentRecord,
    MetricRecord,
    StorageError,
    Store,
    TrialRecord,
    TrialSort,
    now_ms,
)
from manager.training.base import LOG_STREAMS, LogAccessError, open_trial_log, stream_file
from trials.durations import parse_duration
from trials.messages import did_you_mean, one_line
from trials.metrics import PERIODICAL, metric_default
from trials.numbers import is_whole
from trials.status import ExperimentStatus, TrialStatus

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_PAGE = 1000
MAX_METRICS_PAGE = 10000
#: The largest integer a database column (SQLite's INTEGER) holds: larger ids or offsets are a 400.
MAX_SQL_INT = 2**63 - 1
PATCHABLE = ("trialConcurrency", "maxTrialNumber", "maxExperimentDuration")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("nasctl")
    except Exception:
        return "0.1.0"


VERSION = _version()


@dataclass(frozen=True)
class ApiState:
    """What the routes need: the store (reads), the experiment manager (changes), the token."""

    store: Store
    experiments: ExperimentManager
    token: str
    version: str = VERSION


class ApiError(Exception):
    """A 4xx answer with a one-line detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class SafeJSONResponse(JSONResponse):
    """JSON where NaN and infinities, which JSON cannot carry, become "NaN"/"Infinity"/"-Infinity"."""

    def render(self, content: Any) -> bytes:
        try:  # the common case has no NaN: skip the walk over a (possibly large) answer
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except ValueError:
            text = json.dumps(_finite(content), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# -- JSON shapes ------------------------------------------------------------------------------------


def experiment_json(
    record: ExperimentRecord, counts: Mapping[TrialStatus, int], best: TrialRecord | None
) -> dict[str, Any]:
    config = dict(record.config)
    config.update(
        trialConcurrency=record.trial_concurrency,
        maxTrialNumber=record.max_trial_number,
        maxExperimentDuration=record.max_experiment_duration,
    )
    return {
        "id": record.id,
        "name": record.name,
        "status": record.status.value,
        "createdAt": record.created_at,
        "startTime": record.start_time,
        "endTime": record.end_time,
        "trialConcurrency": record.trial_concurrency,
        "maxTrialNumber": record.max_trial_number,
        "maxExperimentDuration": record.max_experiment_duration,
        "optimizeMode": record.optimize_mode,
        "tuner": record.tuner_name,
        "trialCounts": {status.value: counts.get(status, 0) for status in TrialStatus},
        "trialsStarted": record.trials_started,
        "bestTrialId": best.id if best is not None else None,
        "bestMetric": _final_metric(best) if best is not None else None,
        "error": record.error,
        "experimentDir": str(record.experiment_dir),
        "config": config,
    }


def _final_metric(trial: TrialRecord) -> float | None:
    return None if trial.final_metric_data is None else metric_default(trial.final_metric_data)


def trial_json(trial: TrialRecord, now: int | None = None) -> dict[str, Any]:
    return {
        "id": trial.id,
        "experimentId": trial.experiment_id,
        "sequenceId": trial.sequence_id,
        "status": trial.status.value,
        "parameterId": trial.parameter_id,
        "parameters": trial.parameters,
        "startTime": trial.start_time,
        "endTime": trial.end_time,
        "duration": trial.duration(now),
        "exitCode": trial.exit_code,
        "signal": trial.signal,
        "reason": trial.reason,
        "waitingReason": trial.waiting_reason,
        "finalMetric": _final_metric(trial),
        "finalMetricData": trial.final_metric_data,
        "gpus": list(trial.gpus),
        "trialDir": str(trial.trial_dir),
    }


def metric_json(metric: MetricRecord) -> dict[str, Any]:
    default = metric.default_value
    if default is None:  # NaN (or inf) is stored as NULL in the float column; the JSON keeps it
        default = metric_default(metric.value)
    return {
        "id": metric.id,
        "trialId": metric.trial_id,
        "type": metric.type,
        "sequence": metric.sequence,
        "value": metric.value,
        "defaultValue": default,
        "time": metric.time,
    }


# -- query and body parsing ------------------------------------------------------------------


def _query(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value not in (None, "") else None


def _int_query(request: Request, name: str, default: int, low: int, high: int | None = None) -> int:
    text = _query(request, name)
    if text is None:
        return default
    allowed = f"a whole number from {low} to {high}" if high is not None else f"a whole number >= {low}"
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name}: must be {allowed}, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise ApiError(400, f"{name}: must be {allowed}, got {value}")
    if value > MAX_SQL_INT:  # the database cannot even compare with it
        raise ApiError(400, f"{name}: must be a whole number from {low} to {MAX_SQL_INT}, got {value}")
    return value


def _choice_query(request: Request, name: str, options: tuple[str, ...], default: str | None) -> str | None:
    text = _query(request, name)
    if text is None:
        return default
    if text not in options:
        raise ApiError(
            400, f"{name}: unknown value {text!r}{did_you_mean(text, options)}; allowed: {', '.join(options)}"
        )
    return text


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(422, f"body: not valid JSON ({exc})") from None
    except RecursionError:
        raise ApiError(422, "body: nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(422, "body: must be a JSON object")
    return body


def parse_patch(body: Mapping[str, Any]) -> dict[str, Any]:
    """The limits a PATCH body changes (store field -> value); ApiError(400) naming a bad field."""
    if not body:
        raise ApiError(400, f"body: nothing to change; give any of {', '.join(PATCHABLE)}")
    changes: dict[str, Any] = {}
    for key, value in body.items():
        if key not in PATCHABLE:
            raise ApiError(
                400, f"unknown field {key!r}{did_you_mean(key, PATCHABLE)}; allowed: {', '.join(PATCHABLE)}"
            )
        if key == "trialConcurrency":
            if not is_whole(value) or not 1 <= value <= MAX_COUNT:
                raise ApiError(
                    400, f"trialConcurrency: must be a whole number from 1 to {MAX_COUNT}, got {_show(value)}"
                )
            changes["trial_concurrency"] = int(value)
        elif key == "maxTrialNumber":
            if value is not None and (not is_whole(value) or not 1 <= value <= MAX_COUNT):
                raise ApiError(
                    400,
                    f"maxTrialNumber: must be a whole number from 1 to {MAX_COUNT} or null (no limit), "
                    f"got {_show(value)}",
                )
            changes["max_trial_number"] = None if value is None else int(value)
        else:
            try:
                seconds = None if value is None else parse_duration(value)
            except ValueError:
                raise ApiError(
                    400,
                    "maxExperimentDuration: must be seconds > 0, a string like '30m' or '2h', or null "
                    f"(no limit), got {_show(value)}",
                ) from None
            changes["max_experiment_duration"] = seconds
    return changes


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def tail_lines(path: Path, count: int | None) -> str:
    """The file's text, or its last ``count`` lines (read from the end: logs may be large)."""
    try:
        with open(path, "rb") as file:
            data = file.read() if count is None else _read_tail(file, count)
    except FileNotFoundError:
        return ""
    return data.decode("utf-8", errors="replace")


def _read_tail(file: Any, count: int) -> bytes:
    if count == 0:
        return b""
    file.seek(0, os.SEEK_END)
    end = file.tell()
    block = 8192
    data = b""
    position = end
    while position > 0:
        step = min(block, position)
        position -= step
        file.seek(position)
        data = file.read(step) + data
        # count+1 newlines guarantee count complete lines (the last line may lack a newline)
        if data.count(b"\n") > count:
            break
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-count:])


def export_rows(trials: list[TrialRecord]) -> list[dict[str, Any]]:
    now = now_ms()
    return [
        {
            "id": t.id,
            "sequenceId": t.sequence_id,
            "status": t.status.value,
            "parameters": t.parameters,
            "finalMetric": _final_metric(t),
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
                "" if metric is None else _finite(metric),
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


# -- the app --------------------------------------------------------------------------------------


def create_app(
    state: ApiState,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """The FastAPI app with every route of docs/rest.md; ``lifespan`` runs around serving."""
    app = FastAPI(
        title="nasctl manager",
        version=state.version,
        default_response_class=SafeJSONResponse,
        lifespan=lifespan,
    )
    app.state.api = state
    store = state.store
    experiments = state.experiments

    def authorize(request: Request) -> None:
        # the Bearer header, or the dashboard's HTTP-only cookie (manager/webauth.py); constant time
        failure = webauth.check(request, state.token, request.method)
        if failure is not None:
            raise ApiError(failure.status, failure.detail)

    def experiment_or_404(experiment_id: str) -> ExperimentRecord:
        record = store.get_experiment(experiment_id)
        if record is None:
            raise ApiError(404, f"experiment {experiment_id!r} not found")
        return record

    def trial_or_404(experiment_id: str, trial_id: str) -> TrialRecord:
        experiment_or_404(experiment_id)
        trial = store.get_trial(experiment_id, trial_id)
        if trial is None:
            raise ApiError(404, f"trial {trial_id!r} not found in experiment {experiment_id}")
        return trial

    def describe(record: ExperimentRecord) -> dict[str, Any]:
        counts = store.trial_counts([record.id])[record.id]
        best = store.best_trials(record.id, 1, record.optimize_mode)
        return experiment_json(record, counts, best[0] if best else None)

    # -- error answers -----------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return SafeJSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    @app.exception_handler(ExperimentNotFound)
    @app.exception_handler(TrialNotFound)
    async def not_found(_request: Request, exc: Exception) -> Response:
        return SafeJSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(InvalidState)
    async def conflict(_request: Request, exc: InvalidState) -> Response:
        return SafeJSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(StorageError)
    async def storage_full(_request: Request, exc: StorageError) -> Response:
        # the disk is full or read-only: not the client's fault, and nothing was changed
        return SafeJSONResponse({"detail": str(exc)}, status_code=507)

    @app.exception_handler(RequestValidationError)
    async def malformed(_request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()))
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
        return SafeJSONResponse({"detail": "; ".join(parts) or "malformed request"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return SafeJSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> Response:
        log.exception("unexpected error in a request")
        return SafeJSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    # -- routes ----------------------------------------------------------------------------
    @app.get(f"{API_PREFIX}/health", response_model=None)
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": state.version, "pid": os.getpid()}

    secured = [Depends(authorize)]

    @app.get(f"{API_PREFIX}/experiments", dependencies=secured, response_model=None)
    def list_experiments(request: Request) -> Response:
        status_text = _choice_query(request, "status", tuple(s.value for s in ExperimentStatus), None)
        records = store.list_experiments(ExperimentStatus(status_text) if status_text else None)
        counts = store.trial_counts([r.id for r in records])
        out = []
        for record in records:
            best = store.best_trials(record.id, 1, record.optimize_mode)
            out.append(experiment_json(record, counts[record.id], best[0] if best else None))
        return SafeJSONResponse(out)

    @app.post(f"{API_PREFIX}/experiments", dependencies=secured, status_code=201, response_model=None)
    async def create_experiment(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        unknown = [k for k in body if k not in ("config", "baseDir")]
        if unknown:
            raise ApiError(422, f"body: unknown field {unknown[0]!r}; allowed: config, baseDir")
        if "config" not in body:
            raise ApiError(422, "body: missing 'config' (the experiment YAML as a JSON object)")
        base_dir = body.get("baseDir")
        if not isinstance(base_dir, str) or not os.path.isabs(base_dir):
            raise ApiError(
                400, f"baseDir: must be an absolute path (the folder of the YAML), got {_show(base_dir)}"
            )
        try:
            config = parse_config(body["config"], Path(base_dir), source="config")
            record = await experiments.create(config)
        except ValueError as exc:  # ConfigError, SearchSpaceError, TunerError: nothing was created
            raise ApiError(400, one_line(str(exc))) from None
        return describe(store.get_experiment(record.id) or record)

    @app.get(f"{API_PREFIX}/experiments/{{experiment_id}}", dependencies=secured, response_model=None)
    def get_experiment(experiment_id: str) -> Response:
        return SafeJSONResponse(describe(experiment_or_404(experiment_id)))

    @app.patch(f"{API_PREFIX}/experiments/{{experiment_id}}", dependencies=secured, response_model=None)
    async def update_experiment(experiment_id: str, request: Request) -> dict[str, Any]:
        experiment_or_404(experiment_id)
        changes = parse_patch(await _json_body(request))
        fields = {
            name: changes.get(name, KEEP)
            for name in ("trial_concurrency", "max_trial_number", "max_experiment_duration")
        }
        record = await experiments.update(experiment_id, **fields)
        return describe(record)

    @app.post(f"{API_PREFIX}/experiments/{{experiment_id}}/stop", dependencies=secured, response_model=None)
    async def stop_experiment(experiment_id: str) -> dict[str, Any]:
        experiment_or_404(experiment_id)
        return describe(await experiments.stop(experiment_id))

    @app.post(f"{API_PREFIX}/experiments/{{experiment_id}}/resume", dependencies=secured, response_model=None)
    async def resume_experiment(experiment_id: str) -> dict[str, Any]:
        experiment_or_404(experiment_id)
        return describe(await experiments.resume(experiment_id))

    @app.delete(
        f"{API_PREFIX}/experiments/{{experiment_id}}",
        dependencies=secured,
        status_code=204,
        response_model=None,
    )
    async def delete_experiment(experiment_id: str) -> Response:
        experiment_or_404(experiment_id)
        await experiments.delete(experiment_id)
        return Response(status_code=204)

    @app.get(
        f"{API_PREFIX}/experiments/{{experiment_id}}/search-space", dependencies=secured, response_model=None
    )
    def search_space(experiment_id: str) -> Any:
        record = experiment_or_404(experiment_id)
        if record.search_space is None:
            raise ApiError(
                409, f"experiment {experiment_id} has no search space yet (ss_gen has not finished or failed)"
            )
        return record.search_space

    @app.get(f"{API_PREFIX}/experiments/{{experiment_id}}/trials", dependencies=secured, response_model=None)
    def list_trials(experiment_id: str, request: Request) -> Response:
        experiment_or_404(experiment_id)
        status_text = _choice_query(request, "status", tuple(s.value for s in TrialStatus), None)
        sort = _choice_query(request, "sort", tuple(s.value for s in TrialSort), TrialSort.SEQUENCE_ID.value)
        order = _choice_query(request, "order", ("asc", "desc"), "asc")
        offset = _int_query(request, "offset", 0, 0)
        limit = _int_query(request, "limit", 50, 1, MAX_PAGE)
        page = store.trial_page(
            experiment_id,
            status=TrialStatus(status_text) if status_text else None,
            sort=TrialSort(sort),
            descending=order == "desc",
            offset=offset,
            limit=limit,
        )
        now = now_ms()
        items = [trial_json(t, now) for t in page.items]
        return SafeJSONResponse({"total": page.total, "offset": page.offset, "items": items})

    @app.get(
        f"{API_PREFIX}/experiments/{{experiment_id}}/trials/{{trial_id}}",
        dependencies=secured,
        response_model=None,
    )
    def get_trial(experiment_id: str, trial_id: str) -> Response:
        trial = trial_or_404(experiment_id, trial_id)
        out = trial_json(trial)
        out["intermediate"] = [metric_json(m) for m in store.trial_metrics(trial_id, PERIODICAL)]
        return SafeJSONResponse(out)

    @app.delete(
        f"{API_PREFIX}/experiments/{{experiment_id}}/trials/{{trial_id}}",
        dependencies=secured,
        response_model=None,
    )
    async def kill_trial(experiment_id: str, trial_id: str) -> dict[str, Any]:
        trial_or_404(experiment_id, trial_id)
        return trial_json(await experiments.cancel_trial(experiment_id, trial_id))

    @app.get(
        f"{API_PREFIX}/experiments/{{experiment_id}}/trials/{{trial_id}}/log/{{stream}}",
        dependencies=secured,
        response_class=PlainTextResponse,
        response_model=None,
    )
    def trial_log(experiment_id: str, trial_id: str, stream: str, request: Request) -> Response:
        trial = trial_or_404(experiment_id, trial_id)
        if stream not in LOG_STREAMS:
            raise ApiError(404, f"no log {stream!r}; a trial has {' and '.join(LOG_STREAMS)}")
        tail = _int_query(request, "tail", -1, 0)
        try:  # only inside the experiment's folder, symlinks followed (manager/training/base.py)
            file = open_trial_log(experiment_or_404(experiment_id).experiment_dir, trial.trial_dir, stream)
        except LogAccessError as exc:
            raise ApiError(403, f"trial {trial_id}: {exc}") from None
        if file is None:
            return PlainTextResponse("")
        if tail < 0:  # streamed: a log may be large, the daemon's memory stays bounded
            return StreamingResponse(stream_file(file), media_type="text/plain; charset=utf-8")
        with file:
            return PlainTextResponse(_read_tail(file, tail).decode("utf-8", errors="replace"))

    @app.get(f"{API_PREFIX}/experiments/{{experiment_id}}/metrics", dependencies=secured, response_model=None)
    def metrics(experiment_id: str, request: Request) -> Response:
        experiment_or_404(experiment_id)
        since = _int_query(request, "since", 0, 0)
        limit = _int_query(request, "limit", MAX_METRICS_PAGE // 10, 1, MAX_METRICS_PAGE)
        items = store.metrics_since(experiment_id, since, limit)
        return SafeJSONResponse(
            {"items": [metric_json(m) for m in items], "next": items[-1].id if items else since}
        )

    @app.get(f"{API_PREFIX}/experiments/{{experiment_id}}/best", dependencies=secured, response_model=None)
    def best(experiment_id: str, request: Request) -> Response:
        record = experiment_or_404(experiment_id)
        k = _int_query(request, "k", 1, 1, MAX_PAGE)
        now = now_ms()
        return SafeJSONResponse(
            [trial_json(t, now) for t in store.best_trials(experiment_id, k, record.optimize_mode)]
        )

    @app.get(f"{API_PREFIX}/experiments/{{experiment_id}}/export", dependencies=secured, response_model=None)
    def export(experiment_id: str, request: Request) -> Any:
        experiment_or_404(experiment_id)
        kind = _choice_query(request, "format", ("json", "csv"), "json")
        trials = store.all_trials(experiment_id)
        if kind == "csv":
            return PlainTextResponse(export_csv(trials), media_type="text/csv")
        return SafeJSONResponse(export_rows(trials))

    document_hand_parsed_inputs(app)
    add_experiment_views(app, store, secured, API_PREFIX)  # the dashboard's charts (manager/dashboard.py)
    install_web(app, state.token, mode="daemon")  # the dashboard itself at /
    return app


def _integer(low: int, high: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": low}
    if high is not None:
        schema["maximum"] = high
    return schema


def _enum(values: Any) -> dict[str, Any]:
    return {"type": "string", "enum": [v.value if hasattr(v, "value") else v for v in values]}


_EXPERIMENT = f"{API_PREFIX}/experiments/{{experiment_id}}"
#: What the routes above parse by hand (for errors that name the field), for the OpenAPI document.
HAND_PARSED_INPUTS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", f"{API_PREFIX}/experiments"): {"query": {"status": _enum(ExperimentStatus)}},
    ("POST", f"{API_PREFIX}/experiments"): {
        "body": {
            "type": "object",
            "required": ["config", "baseDir"],
            "properties": {
                "config": {"type": "object", "description": "the experiment YAML as JSON"},
                "baseDir": {
                    "type": "string",
                    "description": "absolute folder that relative paths start from",
                },
            },
        }
    },
    ("PATCH", _EXPERIMENT): {
        "body": {
            "type": "object",
            "properties": {
                "trialConcurrency": _integer(1, MAX_COUNT),
                "maxTrialNumber": {"anyOf": [_integer(1, MAX_COUNT), {"type": "null"}]},
                "maxExperimentDuration": {
                    "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}, {"type": "null"}]
                },
            },
        }
    },
    ("GET", f"{_EXPERIMENT}/trials"): {
        "query": {
            "status": _enum(TrialStatus),
            "sort": _enum(TrialSort),
            "order": _enum(("asc", "desc")),
            "offset": _integer(0, MAX_SQL_INT),
            "limit": _integer(1, MAX_PAGE),
        }
    },
    ("GET", f"{_EXPERIMENT}/trials/{{trial_id}}/log/{{stream}}"): {
        "query": {"tail": _integer(0, MAX_SQL_INT)}
    },
    ("GET", f"{_EXPERIMENT}/metrics"): {
        "query": {"since": _integer(0, MAX_SQL_INT), "limit": _integer(1, MAX_METRICS_PAGE)}
    },
    ("GET", f"{_EXPERIMENT}/best"): {"query": {"k": _integer(1, MAX_PAGE)}},
    ("GET", f"{_EXPERIMENT}/export"): {"query": {"format": _enum(("json", "csv"))}},
}


def document_hand_parsed_inputs(app: FastAPI) -> None:
    """Put the query parameters and bodies of :data:`HAND_PARSED_INPUTS` into the OpenAPI document."""
    for route in app.routes:
        for method in getattr(route, "methods", ()) or ():
            inputs = HAND_PARSED_INPUTS.get((method, getattr(route, "path", "")))
            if inputs is None:
                continue
            extra: dict[str, Any] = dict(getattr(route, "openapi_extra", None) or {})
            if "query" in inputs:
                extra["parameters"] = [
                    {"name": name, "in": "query", "required": False, "schema": schema}
                    for name, schema in inputs["query"].items()
                ]
            if "body" in inputs:
                extra["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": inputs["body"]}},
                }
            route.openapi_extra = extra  # type: ignore[attr-defined]
