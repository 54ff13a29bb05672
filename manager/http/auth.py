"""Who may talk to the daemon: the bearer token, or the dashboard's HTTP-only cookie.

Scripts send ``Authorization: Bearer <token>``. A browser cannot keep a header across page loads,
so the link the CLI prints (``/?token=...``) trades the token for an HTTP-only cookie that page
scripts cannot read. Both are compared with the token in constant time.

A cookie rides along on any request the browser makes to this host, including ones another local
page triggers (a form POST from ``127.0.0.1:other-port`` counts as same-site, because cookies do not
care about ports). So a request authenticated by the cookie that changes something must also carry
:data:`DASHBOARD_HEADER`: a page from another origin cannot add a custom header without a CORS
preflight, and the daemon grants no CORS. The cookie's name carries the port, so two daemons (or a
daemon and ``nasctl view-nas``) on one host keep their own cookies.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import HTTPConnection

COOKIE_PREFIX = "nasctl_token_"
#: Header the dashboard's scripts add to every request; required with the cookie for changes.
DASHBOARD_HEADER = "X-Requested-By"
DASHBOARD_HEADER_VALUE = "nasctl-dashboard"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MISSING_TOKEN = (
    "missing token: send 'Authorization: Bearer <token>' (see $NASCTL_HOME/manager.json), "
    "or open the dashboard link that nasctl prints"
)


@dataclass(frozen=True)
class AuthFailure:
    """Why a request is refused: the HTTP status and a one-line detail."""

    status: int
    detail: str


def token_matches(given: str, token: str) -> bool:
    """Constant-time comparison (on bytes, so a non-ASCII guess is just wrong, never an error)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


def cookie_name(connection: HTTPConnection) -> str:
    """The cookie of the port this request came to (the port the browser sees)."""
    port = connection.url.port
    return f"{COOKIE_PREFIX}{port if port is not None else 80}"


def check(connection: HTTPConnection, token: str, method: str = "GET") -> AuthFailure | None:
    """None when the request may proceed, else why not.

    The header wins when present (a wrong header is refused even with a good cookie).
    """
    header = connection.headers.get("authorization")
    if header:
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not token_matches(given.strip(), token):
            return AuthFailure(401, "invalid token")
        return None
    cookie = connection.cookies.get(cookie_name(connection))
    if cookie is None:
        return AuthFailure(401, MISSING_TOKEN)
    if not token_matches(cookie, token):
        return AuthFailure(401, "invalid token")
    if (
        method.upper() not in SAFE_METHODS
        and connection.headers.get(DASHBOARD_HEADER) != DASHBOARD_HEADER_VALUE
    ):
        return AuthFailure(
            403,
            f"a change authenticated by the dashboard cookie needs the header "
            f"'{DASHBOARD_HEADER}: {DASHBOARD_HEADER_VALUE}' (the dashboard sends it)",
        )
    return None
