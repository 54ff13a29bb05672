"""What every HTTP request must pass before the API sees it: a bounded body and, on loopback, a
Host header that names this machine.

- Bodies are read here, at most ``max_body_bytes`` of them (a ``Content-Length`` above the limit
  is refused before a byte is read), and handed on whole: so no route, however it reads its
  body, can be made to hold more than that in memory. 413 otherwise.
- A daemon listening on a loopback address answers only requests addressed to a loopback name
  (``127.0.0.1``, ``localhost``, ``[::1]``). A web page whose own host name an attacker points at
  127.0.0.1 ("DNS rebinding") is then refused with 421, whatever it guesses.

Answers are problem details (``application/problem+json``) like the API's own.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from manager.http.errors import PROBLEM_MEDIA_TYPE, problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The largest request body the daemon reads (an experiment config with an inline space fits easily).
MAX_BODY_BYTES = 4 * 1024 * 1024
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class RequestGuard:
    """ASGI middleware around the API; see the module docstring."""

    def __init__(self, app: App, *, max_body_bytes: int = MAX_BODY_BYTES, loopback_only: bool = True):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        if self.loopback_only:
            host = _host_name(headers.get("host", ""))
            if host and host not in LOOPBACK_NAMES:
                await _answer(
                    send, 421, f"Host {host!r} is not this daemon's address (it answers on loopback only)"
                )
                return
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _answer(send, 400, f"Content-Length must be a whole number, got {length!r}")
                return
            if int(length) > self.max_body_bytes:
                await _answer(send, 413, self._too_large())
                return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            if len(body) > self.max_body_bytes:
                await _answer(send, 413, self._too_large())
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"request body too large: at most {self.max_body_bytes} bytes"


def _host_name(host: str) -> str:
    """The name part of a Host header ("[::1]:8080" -> "[::1]", "x:1" -> "x"), lowercased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if ":" in host else host


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps(problem(status, detail)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
