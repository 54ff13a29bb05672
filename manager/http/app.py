"""``create_app``: the daemon's FastAPI app, the REST API of docs/rest.md plus the dashboard.

Every answer is camelCase JSON (or text for logs and CSV) written by
:class:`~manager.http.responses.SafeJSONResponse`; bad input gets a 4xx as problem details whose
one-line ``detail`` names the field and what is allowed, never a 500 (:mod:`manager.http.errors`;
the OpenAPI document lists every error of every operation, :mod:`manager.http.openapi`). The routes live one resource per module under
:mod:`manager.http.routes` and reach the store and the experiment manager through
:class:`~manager.http.state.ApiState` in ``app.state.api``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from manager.http.errors import install_error_handlers
from manager.http.methods import RouteTable
from manager.http.openapi import document_errors
from manager.http.responses import SafeJSONResponse
from manager.http.routes import experiments, health, logs, metrics, trials, views
from manager.http.routes.dashboard import install_web
from manager.http.state import ApiState, authorize

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
    routers = [
        (API_PREFIX, resource.router) for resource in (health, experiments, trials, logs, metrics, views)
    ]
    for prefix, router in routers:
        app.include_router(router, prefix=prefix)
    routers.append(("", install_web(app, state.token, mode="daemon")))  # the dashboard itself at /
    app.state.routes = RouteTable.of(
        routers, lambda route: any(d.dependency is authorize for d in route.dependencies)
    )
    document_errors(app, app.state.routes)
    return app
