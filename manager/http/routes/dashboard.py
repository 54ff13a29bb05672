"""The web dashboard: its page at ``/`` and its files under ``/static/``, both behind the token.

Logging in: the CLI prints ``http://HOST:PORT/?token=T``. That request, with the right token,
answers with an HTTP-only cookie (see :mod:`manager.http.auth`) and a redirect to ``/`` (the
token leaves the address bar and the history; the ``#/...`` part of the link survives). Every page,
file and API request after that carries the cookie. Without it, ``/`` answers 401 with a short
page that says where the link is.

The same files serve ``nasctl view-nas`` (:mod:`manager.http.viewnas`); ``mode`` tells the page which
server it talks to. The charts' JSON is :mod:`manager.http.routes.views`.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.exceptions import HTTPException

from manager.http import auth
from manager.http.web_files import WebFile, load_web_files

STATIC_PREFIX = "/static/"
MODES = ("daemon", "searchlog")

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


def _page(status: int, title: str, message: str) -> HTMLResponse:
    """A small self-contained page for a person (the 401 of a browser without the token)."""
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>nasctl: "
        f"{html.escape(title)}</title></head><body style='font-family:sans-serif;margin:3em;max-width:40em'>"
        f"<h1 style='font-size:1.3em'>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


class Dashboard:
    """The dashboard of one server: its token, its mode, and its files (read once)."""

    def __init__(self, token: str, mode: str, files: dict[str, WebFile] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.token = token
        self.files = load_web_files() if files is None else files
        self.index = (
            self.files["index.html"].body.decode("utf-8").replace("__NASCTL_MODE__", mode).encode("utf-8")
        )
        self.login_hint = (
            "open the link that 'nasctl status' (or 'nasctl manager status') prints: it carries the token"
            if mode == "daemon"
            else "open the link that 'nasctl view-nas' printed: it carries the token"
        )

    def page(self, request: Request) -> Response:
        """``GET /``: the page; with ``?token=``, the login (cookie and redirect)."""
        given = request.query_params.get("token")
        if given is not None:
            if not auth.token_matches(given, self.token):
                return _page(
                    401, "Wrong token", f"This link's token is not this server's; {self.login_hint}."
                )
            response = RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
            response.set_cookie(
                auth.cookie_name(request), self.token, httponly=True, samesite="strict", path="/"
            )
            return response
        failure = auth.check(request, self.token)
        if failure is not None:
            return _page(
                401, "This dashboard needs its token", f"{failure.detail.split(':')[0]}: {self.login_hint}."
            )
        return Response(
            self.index,
            media_type="text/html; charset=utf-8",
            headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
        )

    def static(self, path: str, request: Request) -> Response:
        """``GET /static/{path}``: one of the files, revalidated by its ETag."""
        failure = auth.check(request, self.token)
        if failure is not None:
            raise HTTPException(failure.status, failure.detail)
        found = self.files.get(path)
        if found is None or path == "index.html":
            raise HTTPException(404, f"no dashboard file {path!r}")
        headers = {**SECURITY_HEADERS, "ETag": found.etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        return Response(found.body, media_type=found.media_type, headers=headers)

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        router.add_api_route("/", self.page, methods=["GET"], name="dashboard", response_model=None)
        router.add_api_route(
            STATIC_PREFIX + "{path:path}", self.static, methods=["GET"], name="static", response_model=None
        )
        return router


def install_web(app: FastAPI, token: str, mode: str) -> APIRouter:
    """Serve the dashboard at ``/`` and its files under ``/static/``, both behind the token; its router."""
    router = Dashboard(token, mode).router()
    app.include_router(router)
    return router
