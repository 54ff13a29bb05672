"""The web dashboard: its files at ``/``, the token link that logs a browser in, and its JSON views.

The pages are plain HTML, CSS and JavaScript modules in ``manager/web`` (no build step, so
nothing can ship without its build), with uPlot and Cytoscape vendored under ``web/vendor``; they
are read into memory once and served from there, so no request can name a file outside them.

Logging in: the CLI prints ``http://HOST:PORT/?token=T``. That request, with the right token,
answers with an HTTP-only cookie (see :mod:`manager.webauth`) and a redirect to ``/`` (the
token leaves the address bar and the history; the ``#/...`` part of the link survives). Every page,
file and API request after that carries the cookie. Without it, ``/`` answers 401 with a short
page that says where the link is.

The same files serve ``nasctl view-nas`` (:mod:`manager.viewnas`); ``mode`` tells the page which
server it talks to. The extra JSON views of an experiment (:func:`add_experiment_views`) are
documented with the rest of the API in docs/rest.md.
"""

from __future__ import annotations

import hashlib
import html
import json
import mimetypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.params import Depends
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.exceptions import HTTPException

from manager import webauth
from manager.searchlog import DEFAULT_POINTS, MAX_POINTS
from manager.store import Store
from manager.views import archstats

WEB_DIR = Path(__file__).resolve().parent / "web"
STATIC_PREFIX = "/static/"
MODES = ("daemon", "searchlog")
MAX_TOP_K = 1000

#: The pages load scripts, styles and data from this origin only; nothing may frame them.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".html": "text/html"}


@dataclass(frozen=True)
class WebFile:
    body: bytes
    media_type: str
    etag: str


def load_web_files(root: Path = WEB_DIR) -> dict[str, WebFile]:
    """Every file under ``root`` by its relative POSIX path (read once: the set is fixed and small)."""
    files = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith(".") or "__pycache__" in path.parts:
            continue
        body = path.read_bytes()
        media_type = (
            _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        if media_type.startswith("text/"):
            media_type += "; charset=utf-8"
        files[path.relative_to(root).as_posix()] = WebFile(
            body, media_type, f'"{hashlib.sha1(body).hexdigest()[:16]}"'
        )
    return files


def _page(status: int, title: str, message: str) -> HTMLResponse:
    """A small self-contained page for a person (the 401 of a browser without the token)."""
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>nasctl: "
        f"{html.escape(title)}</title></head><body style='font-family:sans-serif;margin:3em;max-width:40em'>"
        f"<h1 style='font-size:1.3em'>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def install_web(app: FastAPI, token: str, mode: str) -> None:
    """Serve the dashboard at ``/`` and its files under ``/static/``, both behind the token."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    files = load_web_files()
    index = files["index.html"].body.decode("utf-8").replace("__NASCTL_MODE__", mode).encode("utf-8")
    login_hint = (
        "open the link that 'nasctl status' (or 'nasctl manager status') prints: it carries the token"
        if mode == "daemon"
        else "open the link that 'nasctl view-nas' printed: it carries the token"
    )

    @app.get("/", include_in_schema=False, response_model=None)
    def dashboard(request: Request) -> Response:
        given = request.query_params.get("token")
        if given is not None:
            if not webauth.token_matches(given, token):
                return _page(401, "Wrong token", f"This link's token is not this server's; {login_hint}.")
            response = RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
            response.set_cookie(
                webauth.cookie_name(request), token, httponly=True, samesite="strict", path="/"
            )
            return response
        failure = webauth.check(request, token)
        if failure is not None:
            return _page(
                401, "This dashboard needs its token", f"{failure.detail.split(':')[0]}: {login_hint}."
            )
        return Response(
            index,
            media_type="text/html; charset=utf-8",
            headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
        )

    @app.get(STATIC_PREFIX + "{path:path}", include_in_schema=False, response_model=None)
    def static(path: str, request: Request) -> Response:
        failure = webauth.check(request, token)
        if failure is not None:
            raise HTTPException(failure.status, failure.detail)
        found = files.get(path)
        if found is None or path == "index.html":
            raise HTTPException(404, f"no dashboard file {path!r}")
        headers = {**SECURITY_HEADERS, "ETag": found.etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        return Response(found.body, media_type=found.media_type, headers=headers)


# -- the experiment views --------------------------------------------------------------------------


def int_query(request: Request, name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter in [low, high]; a 400 naming it otherwise (empty = not given)."""
    text = request.query_params.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        raise HTTPException(
            400, f"{name}: must be a whole number from {low} to {high}, got {text!r}"
        ) from None
    if not low <= value <= high:
        raise HTTPException(400, f"{name}: must be a whole number from {low} to {high}, got {value}")
    return value


MAX_SINCE = 2**62


def _query_doc(name: str, low: int, high: int) -> dict[str, Any]:
    """The OpenAPI entry of a whole-number query parameter parsed by :func:`int_query`."""
    schema = {"type": "integer", "minimum": low, "maximum": high}
    return {"parameters": [{"name": name, "in": "query", "required": False, "schema": schema}]}


def add_experiment_views(app: FastAPI, store: Store, secured: Sequence[Depends], prefix: str) -> None:
    """The JSON the dashboard's charts need beyond the REST API (docs/rest.md, "Dashboard views")."""

    from manager.api import SafeJSONResponse  # here: manager.api imports this module

    trials = archstats.TrialCache()

    def cached_view(record: Any, key: tuple[Any, ...], build: Callable[[Any], dict[str, Any]]) -> Response:
        """A view rendered once per change of the experiment (the cache keeps the bytes), not
        walked by FastAPI's jsonable_encoder on every request (half of nas-view's time)."""
        body = trials.view(
            store,
            record.id,
            (*key, record.status, record.search_space is None),
            lambda t: bytes(SafeJSONResponse(build(t)).body),
        )
        return Response(body, media_type="application/json")

    def experiment_or_404(experiment_id: str) -> Any:
        record = store.get_experiment(experiment_id)
        if record is None:
            raise HTTPException(404, f"experiment {experiment_id!r} not found")
        return record

    @app.get(
        f"{prefix}/experiments/{{experiment_id}}/final-metrics",
        dependencies=list(secured),
        response_model=None,
        openapi_extra=_query_doc("since", 0, MAX_SINCE),
    )
    def final_metrics(experiment_id: str, request: Request) -> Response:
        experiment_or_404(experiment_id)
        since = int_query(request, "since", 0, 0, MAX_SINCE)
        # values are finite or None already: skip the API's per-value NaN walk over 10,000 rows
        body = json.dumps(archstats.final_metrics(store, experiment_id, since), separators=(",", ":"))
        return Response(body, media_type="application/json")

    @app.get(
        f"{prefix}/experiments/{{experiment_id}}/choice-stats",
        dependencies=list(secured),
        response_model=None,
        openapi_extra=_query_doc("top", 1, MAX_TOP_K),
    )
    def choice_stats(experiment_id: str, request: Request) -> Response:
        record = experiment_or_404(experiment_id)
        top = int_query(request, "top", 10, 1, MAX_TOP_K)
        return cached_view(record, ("stats", top), lambda t: archstats.choice_stats(t, record, top))

    @app.get(
        f"{prefix}/experiments/{{experiment_id}}/nas-view",
        dependencies=list(secured),
        response_model=None,
        openapi_extra=_query_doc("points", 2, MAX_POINTS),
    )
    def nas_view(experiment_id: str, request: Request) -> Response:
        record = experiment_or_404(experiment_id)
        points = int_query(request, "points", DEFAULT_POINTS, 2, MAX_POINTS)
        return cached_view(record, ("nas", points), lambda t: archstats.nas_view(t, record, points))
