"""How the API answers what went wrong: RFC 9457 problem details, one status per kind of mistake.

Every error is ``application/problem+json``: ``{"type", "title", "status", "detail", "field"?}``
with ``detail`` one line naming what was wrong (``nasctl.client`` and the dashboard read it). The
statuses, the same on every route (:data:`STATUSES`, which the OpenAPI document lists too):
400 a value or body the server refuses, 401 token, 403 refused although authenticated, 404
unknown id or path, 405 method (with ``Allow``), 409 not allowed in the current state, 413 body
too large, 421 not a loopback Host, 507 disk full, 500 a bug (logged).

:class:`ApiError` is an ``HTTPException``, so any FastAPI app (the daemon's, and ``nasctl
view-nas``'s with FastAPI's own handler) answers it; :func:`install_error_handlers` maps the
experiment loop's and the store's errors to their statuses and writes every answer here.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from manager.http.responses import SafeJSONResponse
from manager.loop.errors import ExperimentNotFound, InvalidState, TrialNotFound
from manager.store import StorageError

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

#: Every error status the API answers with, and the kind of mistake each one means.
STATUSES: dict[int, str] = {
    400: "a query value or body the server refuses (the field and what is allowed are named)",
    401: "no token or a wrong one",
    403: "refused although authenticated (a change by the dashboard cookie without its header, "
    "a log that leads outside the experiment's folder)",
    404: "unknown experiment, trial or log",
    405: "the resource does not take this method (see Allow)",
    409: "not allowed in the experiment's current state",
    413: "request body over the limit",
    421: "a Host that is not a loopback name while the daemon listens on loopback",
    507: "the disk under $NASCTL_HOME is full or read-only: nothing was changed",
}


class ApiError(HTTPException):
    """A 4xx answer with a one-line detail and, when one input was wrong, its name (``field``);
    a 401 also names the scheme (``WWW-Authenticate: Bearer``)."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(status, detail, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)
        self.field = field

    @property
    def status(self) -> int:
        return self.status_code

    def __str__(self) -> str:
        return str(self.detail)


def problem(status: int, detail: str, field: str | None = None) -> dict[str, Any]:
    """The RFC 9457 body of an error (``type`` about:blank: ``title`` is the status's phrase)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": " ".join(str(detail).split()) or HTTPStatus(status).phrase,
    }
    if field is not None:
        body["field"] = field
    return body


def problem_response(
    status: int, detail: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """An error answer as ``application/problem+json``."""
    return SafeJSONResponse(
        problem(status, detail, field), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        table = getattr(request.app.state, "routes", None)  # a RouteTable (manager.http.methods)
        allow = ", ".join(table.allowed(request.url.path) if table is not None else ["OPTIONS"])
        if request.method == "OPTIONS":  # the answer to OPTIONS: what this resource takes
            return Response(status_code=204, headers={"Allow": allow})
        headers["Allow"] = allow
        detail = f"{request.method} is not allowed here; allowed: {allow}"
    else:
        detail = str(exc.detail)
    return problem_response(exc.status_code, detail, getattr(exc, "field", None), headers or None)


async def _not_found(_request: Request, exc: Exception) -> Response:
    return problem_response(404, str(exc))


async def _conflict(_request: Request, exc: Exception) -> Response:
    return problem_response(409, str(exc))


async def _storage_full(_request: Request, exc: Exception) -> Response:
    # the disk is full or read-only: not the client's fault, and nothing was changed
    return problem_response(507, str(exc))


async def _malformed(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return problem_response(400, "; ".join(parts) or "malformed request")


async def _internal(_request: Request, exc: Exception) -> Response:
    log.exception("unexpected error in a request")
    return problem_response(500, f"internal error: {type(exc).__name__}: {exc}")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as problem details (:data:`STATUSES`); 500 (logged) anything unexpected."""
    app.add_exception_handler(HTTPException, _http_error)  # ApiError too
    app.add_exception_handler(ExperimentNotFound, _not_found)
    app.add_exception_handler(TrialNotFound, _not_found)
    app.add_exception_handler(InvalidState, _conflict)
    app.add_exception_handler(StorageError, _storage_full)
    app.add_exception_handler(RequestValidationError, _malformed)
    app.add_exception_handler(Exception, _internal)
