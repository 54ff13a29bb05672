"""How the API answers what went wrong: one line in ``{"detail": ...}`` with a 4xx, never a bare 500.

:class:`ApiError` is an ``HTTPException``, so any FastAPI app (the daemon's, and ``nasctl
view-nas``'s with FastAPI's own handler) answers it the same way; :func:`install_error_handlers`
maps the experiment loop's and the store's errors to their statuses.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from manager.http.responses import SafeJSONResponse
from manager.loop.errors import ExperimentNotFound, InvalidState, TrialNotFound
from manager.store import StorageError

log = logging.getLogger(__name__)


class ApiError(HTTPException):
    """A 4xx answer with a one-line detail (a 401 also names the scheme, ``WWW-Authenticate: Bearer``)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(status, detail, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)

    @property
    def status(self) -> int:
        return self.status_code

    def __str__(self) -> str:
        return str(self.detail)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return SafeJSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


async def _not_found(_request: Request, exc: Exception) -> Response:
    return SafeJSONResponse({"detail": str(exc)}, status_code=404)


async def _conflict(_request: Request, exc: Exception) -> Response:
    return SafeJSONResponse({"detail": str(exc)}, status_code=409)


async def _storage_full(_request: Request, exc: Exception) -> Response:
    # the disk is full or read-only: not the client's fault, and nothing was changed
    return SafeJSONResponse({"detail": str(exc)}, status_code=507)


async def _malformed(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return SafeJSONResponse({"detail": "; ".join(parts) or "malformed request"}, status_code=422)


async def _internal(_request: Request, exc: Exception) -> Response:
    log.exception("unexpected error in a request")
    return SafeJSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as ``{"detail": ...}``: 404 unknown ids, 409 a change the state forbids,
    422 a malformed request, 507 a full disk, 500 (logged) anything unexpected."""
    app.add_exception_handler(HTTPException, _http_error)  # ApiError too
    app.add_exception_handler(ExperimentNotFound, _not_found)
    app.add_exception_handler(TrialNotFound, _not_found)
    app.add_exception_handler(InvalidState, _conflict)
    app.add_exception_handler(StorageError, _storage_full)
    app.add_exception_handler(RequestValidationError, _malformed)
    app.add_exception_handler(Exception, _internal)
