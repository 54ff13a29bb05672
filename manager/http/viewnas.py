"""``nasctl view-nas --logdir DIR``: a small server that shows one search log in the dashboard.

One-shot NAS needs no daemon, so neither does its view: this serves the dashboard's files in
``searchlog`` mode and one JSON route, ``GET /api/v1/searchlog?points=N`` (what
:meth:`manager.views.searchlog.SearchLog.view` returns), read afresh on each call so that a running search
shows its new steps. It listens on 127.0.0.1 with a token of its own, like the daemon.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Request
from starlette.exceptions import HTTPException

from manager.http import auth
from manager.http.errors import install_error_handlers
from manager.http.methods import RouteTable
from manager.http.queries import int_query
from manager.http.routes.dashboard import install_web
from manager.views.searchlog import DEFAULT_POINTS, MAX_POINTS, SearchLog

HOST = "127.0.0.1"
START_TIMEOUT = 15.0


def create_viewnas_app(log: SearchLog, token: str) -> FastAPI:
    """The app: the dashboard at ``/`` and the search log at ``/api/v1/searchlog``, behind ``token``."""
    app = FastAPI(title="nasctl view-nas", docs_url=None, redoc_url=None, openapi_url=None)

    def authorize(request: Request) -> None:
        failure = auth.check(request, token, request.method)
        if failure is not None:
            raise HTTPException(failure.status, failure.detail)

    @app.get("/api/v1/health", response_model=None)
    def health() -> dict[str, Any]:
        return {"status": "ok", "mode": "searchlog"}

    @app.get("/api/v1/searchlog", dependencies=[Depends(authorize)], response_model=None)
    def searchlog(request: Request) -> Any:
        points = int_query(request, "points", DEFAULT_POINTS, 2, MAX_POINTS)
        return log.view(points)

    web = install_web(app, token, mode="searchlog")
    install_error_handlers(app)  # errors as problem details, Allow on a 405, like the daemon's
    app.state.routes = RouteTable.of([("", app.router), ("", web)], lambda _route: False)
    return app


class ViewNasServer:
    """Serves one search log on a free (or given) loopback port, in a background thread."""

    def __init__(self, log: SearchLog, port: int = 0) -> None:
        self.log = log
        self.token = secrets.token_urlsafe(32)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((HOST, port))
            self._socket.listen(64)
        except OSError as exc:
            self._socket.close()
            raise OSError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            create_viewnas_app(log, self.token), log_config=None, access_log=False, loop="asyncio", http="h11"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="nasctl-view-nas", daemon=True)

    @classmethod
    def for_folder(cls, folder: Path | str, port: int = 0) -> ViewNasServer:
        """A server of the search log in ``folder``; :class:`SearchLogError` when it is not one."""
        return cls(SearchLog(folder), port)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def link(self) -> str:
        """The address to open: it logs the browser in and lands on the NAS view."""
        return f"{self.url}/?token={self.token}#/nas"

    def _serve(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> ViewNasServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise OSError("the view-nas server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def serve_until_interrupted(self, on_started: Callable[[ViewNasServer], None] | None = None) -> None:
        """Start, call ``on_started``, and serve until Ctrl-C (KeyboardInterrupt) or the server ends."""
        self.start()
        try:
            if on_started is not None:
                on_started(self)
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        finally:
            self.stop()
