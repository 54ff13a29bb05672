"""``create_app``: the daemon's FastAPI app, the REST API of docs/rest.md plus the dashboard.

Every answer is camelCase JSON (or text for logs and CSV) written by
:class:`~manager.http.responses.SafeJSONResponse`; bad input gets a 4xx with one line in
``{"detail": ...}`` naming the field and what is allowed, never a 500
(:mod:`manager.http.errors`). The routes live one resource per module under
:mod:`manager.http.routes` and reach the store and the experiment manager through
:class:`~manager.http.state.ApiState` in ``app.state.api``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from manager.http.errors import install_error_handlers
from manager.http.responses import SafeJSONResponse
from manager.http.routes import experiments, health, logs, metrics, trials, views
from manager.http.routes.dashboard import install_web
from manager.http.state import ApiState

API_PREFIX = "/api/v1"


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
    install_error_handlers(app)
    for resource in (health, experiments, trials, logs, metrics, views):
        app.include_router(resource.router, prefix=API_PREFIX)
    install_web(app, state.token, mode="daemon")  # the dashboard itself at /
    return app
