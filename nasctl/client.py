"""The Python client of the nasctl daemon's REST API (docs/rest.md): one method per route.

For scripts::

    from nasctl.client import Client, ApiError

    with Client.from_home() as client:             # $NASCTL_HOME (default ~/.nasctl)/manager.json
        exp = client.create_experiment(config, base_dir="/abs/folder/of/the/yaml")
        page = client.trials(exp["id"], sort="finalMetric", order="desc", limit=5)
        for trial in page["items"]:
            print(trial["id"], trial["finalMetric"], trial["parameters"])
        try:
            client.resume(exp["id"])
        except ApiError as err:                    # err.status == 409, err.detail is one line
            print(err.detail)

Every method returns the decoded JSON of the answer (dicts with the camelCase field names of
docs/rest.md); ``log`` and CSV ``export`` return text. A 4xx/5xx answer raises :class:`ApiError`
with the server's one-line detail; a daemon that cannot be reached raises
:class:`DaemonUnreachable`. ``Client.from_home`` only reads ``manager.json``: it does not start a
daemon (``nasctl.launcher.ensure_daemon`` does). The client never uses proxy settings from the
environment, so an ``HTTP_PROXY`` cannot swallow requests to 127.0.0.1.

The transport is the standard library's ``http.client`` over one kept-alive connection: the
daemon speaks plain HTTP on loopback, and every CLI command pays for the client's import, which
for httpx was about 170 ms of the 350 ms a ``nasctl status`` took.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

MANAGER_FILE = "manager.json"
DEFAULT_TIMEOUT = 30.0
#: Stop and delete wait on the server until the experiment's trials are gone.
SLOW_TIMEOUT = 600.0
PAGE_LIMIT = 1000

#: ``update_experiment`` keyword -> REST field; camelCase names are accepted as they are.
UPDATABLE_FIELDS = {
    "trial_concurrency": "trialConcurrency",
    "max_trial_number": "maxTrialNumber",
    "max_experiment_duration": "maxExperimentDuration",
}
TRIAL_SORT_KEYS = ("sequenceId", "finalMetric", "startTime", "endTime", "duration", "status")
LOG_STREAMS = ("stdout", "stderr")
EXPORT_FORMATS = ("json", "csv")


class ClientError(Exception):
    """Anything that kept a request from getting an answer; the message is one line."""


class DaemonUnreachable(ClientError):
    """No daemon answered (not running, wrong port, or too slow)."""


class NoDaemon(ClientError):
    """The home holds no ``manager.json``: no daemon runs for it."""


class ApiError(ClientError):
    """The daemon answered with an error status; ``detail`` is its one-line explanation."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


def default_home() -> Path:
    """``$NASCTL_HOME``, else ``~/.nasctl``: the folder of one daemon and its database."""
    return Path(os.environ.get("NASCTL_HOME") or Path.home() / ".nasctl").expanduser()


@dataclass(frozen=True)
class DaemonInfo:
    """What a running daemon wrote to ``$NASCTL_HOME/manager.json`` once it was listening."""

    pid: int
    host: str
    port: int
    token: str
    started_at: int
    version: str

    @property
    def connect_host(self) -> str:
        """Where to connect: a daemon bound to every interface is reached over loopback."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    @property
    def url(self) -> str:
        host = f"[{self.connect_host}]" if ":" in self.connect_host else self.connect_host
        return f"http://{host}:{self.port}"

    @property
    def dashboard_url(self) -> str:
        return f"{self.url}/?token={self.token}"

    @classmethod
    def read(cls, home: str | Path) -> DaemonInfo | None:
        """The file's content, or None when there is no file; ``ClientError`` when it is garbled."""
        path = Path(home) / MANAGER_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ClientError(f"{path}: cannot read ({exc.strerror})") from None
        except json.JSONDecodeError:
            raise ClientError(f"{path}: not valid JSON; remove it if no daemon runs") from None
        try:
            return cls(
                pid=int(raw["pid"]),
                host=str(raw["host"]),
                port=int(raw["port"]),
                token=str(raw["token"]),
                started_at=int(raw.get("startedAt") or 0),
                version=str(raw.get("version", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ClientError(f"{path}: missing or bad field {exc}; remove it if no daemon runs") from None


@dataclass(frozen=True)
class _Response:
    status: int
    reason: str
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class Client:
    """A thin synchronous wrapper of every route in docs/rest.md."""

    def __init__(self, base_url: str, token: str | None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        parsed = urllib.parse.urlsplit(self.base_url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ClientError(f"the daemon's address must be http://host:port, got {base_url!r}")
        self._host, self._port = parsed.hostname, parsed.port or 80
        self._prefix = parsed.path.rstrip("/") + "/api/v1"
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    @classmethod
    def from_home(cls, home: str | Path | None = None, timeout: float = DEFAULT_TIMEOUT) -> Client:
        """A client for the daemon of ``home`` (default :func:`default_home`); ``NoDaemon`` if none."""
        home = Path(home) if home is not None else default_home()
        info = DaemonInfo.read(home)
        if info is None:
            raise NoDaemon(
                f"no daemon runs for {home} (no {MANAGER_FILE}); start one with 'nasctl manager start'"
            )
        return cls.from_info(info, timeout)

    @classmethod
    def from_info(cls, info: DaemonInfo, timeout: float = DEFAULT_TIMEOUT) -> Client:
        return cls(info.url, info.token, timeout)

    # -- plumbing ------------------------------------------------------------------------------
    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> _Response:
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
        target = self._prefix + path + (f"?{query}" if query else "")
        headers = dict(self._headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile is retried once
            reused = self._conn is not None
            try:
                response = self._send(method, target, payload, headers, timeout)
                break
            except TimeoutError:
                self.close()
                raise DaemonUnreachable(
                    f"the daemon at {self.base_url} did not answer {method} {path} in time"
                ) from None
            except (http.client.HTTPException, OSError) as exc:
                self.close()
                if (
                    reused
                    and attempt == 1
                    and isinstance(
                        exc, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
                    )
                ):
                    continue
                reason = str(exc) or type(exc).__name__
                raise DaemonUnreachable(f"cannot reach the daemon at {self.base_url}: {reason}") from None
        if response.status >= 400:
            raise ApiError(response.status, _detail(response))
        return response

    def _send(
        self, method: str, target: str, payload: bytes | None, headers: dict[str, str], timeout: float | None
    ) -> _Response:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        self._conn.timeout = self._timeout if timeout is None else timeout
        if self._conn.sock is not None:
            self._conn.sock.settimeout(self._conn.timeout)
        self._conn.request(method, target, body=payload, headers=headers)
        raw = self._conn.getresponse()
        data = raw.read()
        if raw.will_close:
            self.close()
        return _Response(raw.status, raw.reason, data)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ClientError(f"{method} {path}: the daemon answered something that is not JSON") from None

    @staticmethod
    def _exp(experiment_id: str) -> str:
        return f"/experiments/{_segment(experiment_id, 'experiment id')}"

    # -- routes --------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``{"status": "ok", "version", "pid"}``; needs no token."""
        return self._json("GET", "/health")

    def list_experiments(self, status: str | None = None) -> list[dict[str, Any]]:
        """All experiments, newest first, optionally only those with ``status``."""
        return self._json("GET", "/experiments", params={"status": status})

    def create_experiment(self, config: Mapping[str, Any], base_dir: str | Path) -> dict[str, Any]:
        """Submit ``config`` (the YAML as a dict); relative paths in it resolve against ``base_dir``."""
        body = {"config": dict(config), "baseDir": str(Path(base_dir).resolve())}
        return self._json("POST", "/experiments", body=body)

    def get_experiment(self, experiment_id: str) -> dict[str, Any]:
        return self._json("GET", self._exp(experiment_id))

    def update_experiment(self, experiment_id: str, **fields: Any) -> dict[str, Any]:
        """Change ``trialConcurrency``, ``maxTrialNumber`` or ``maxExperimentDuration`` (seconds).

        Keywords may be spelled in camelCase or snake_case (``max_trial_number=30``).
        """
        allowed = set(UPDATABLE_FIELDS.values())
        body: dict[str, Any] = {}
        for name, value in fields.items():
            field = UPDATABLE_FIELDS.get(name, name)
            if field not in allowed:
                raise ValueError(
                    f"update_experiment: unknown field '{name}'; allowed are {', '.join(sorted(allowed))}"
                )
            body[field] = value
        if not body:
            raise ValueError(f"update_experiment: give at least one of {', '.join(sorted(allowed))}")
        return self._json("PATCH", self._exp(experiment_id), body=body)

    def stop(self, experiment_id: str, timeout: float = SLOW_TIMEOUT) -> dict[str, Any]:
        """Cancel the running trials and wait (on the server) until they are gone."""
        return self._json("POST", f"{self._exp(experiment_id)}/stop", timeout=timeout)

    def resume(self, experiment_id: str) -> dict[str, Any]:
        """Continue a STOPPED, DONE or ERROR experiment."""
        return self._json("POST", f"{self._exp(experiment_id)}/resume")

    def delete(self, experiment_id: str, timeout: float = SLOW_TIMEOUT) -> None:
        """Stop the experiment if needed, then remove its rows and its folder."""
        self._request("DELETE", self._exp(experiment_id), timeout=timeout)

    def search_space(self, experiment_id: str) -> dict[str, Any]:
        return self._json("GET", f"{self._exp(experiment_id)}/search-space")

    def trials(
        self,
        experiment_id: str,
        status: str | None = None,
        sort: str | None = None,
        order: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """One page ``{"total", "offset", "items": [Trial]}``; ``limit`` 1..1000 (server default 50)."""
        params = {"status": status, "sort": sort, "order": order, "offset": offset, "limit": limit}
        return self._json("GET", f"{self._exp(experiment_id)}/trials", params=params)

    def iter_trials(
        self, experiment_id: str, status: str | None = None, sort: str | None = None, order: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every trial, page after page."""
        offset = 0
        while True:
            page = self.trials(experiment_id, status, sort, order, offset=offset, limit=PAGE_LIMIT)
            items = page.get("items", [])
            yield from items
            offset += len(items)
            if not items or offset >= int(page.get("total", 0)):
                return

    def trial(self, experiment_id: str, trial_id: str) -> dict[str, Any]:
        """One trial plus its ``intermediate`` metrics."""
        return self._json("GET", f"{self._exp(experiment_id)}/trials/{_segment(trial_id, 'trial id')}")

    def kill_trial(self, experiment_id: str, trial_id: str) -> dict[str, Any]:
        """Kill one trial (it ends USER_CANCELED)."""
        path = f"{self._exp(experiment_id)}/trials/{_segment(trial_id, 'trial id')}"
        return self._json("DELETE", path, timeout=SLOW_TIMEOUT)

    def log(self, experiment_id: str, trial_id: str, stream: str = "stdout", tail: int | None = None) -> str:
        """A trial's stdout or stderr, or its last ``tail`` lines."""
        if stream not in LOG_STREAMS:
            raise ValueError(f"log: stream must be one of {', '.join(LOG_STREAMS)}, got {stream!r}")
        path = f"{self._exp(experiment_id)}/trials/{_segment(trial_id, 'trial id')}/log/{stream}"
        return self._request("GET", path, params={"tail": tail}).text

    def metrics(self, experiment_id: str, since: int = 0, limit: int | None = None) -> dict[str, Any]:
        """Metrics with ``id > since``, ascending: ``{"items": [Metric], "next": lastId}``."""
        params = {"since": since, "limit": limit}
        return self._json("GET", f"{self._exp(experiment_id)}/metrics", params=params)

    def best(self, experiment_id: str, k: int = 1) -> list[dict[str, Any]]:
        """The ``k`` best succeeded trials, by ``finalMetric`` in the experiment's optimize mode."""
        return self._json("GET", f"{self._exp(experiment_id)}/best", params={"k": k})

    def pareto(self, experiment_id: str) -> dict[str, Any]:
        """The Pareto front of a multi-objective experiment (a 409 ``ApiError`` for one objective)."""
        return self._json("GET", f"{self._exp(experiment_id)}/pareto")

    def export(self, experiment_id: str, format: str = "json") -> Any:
        """Every trial: a list of dicts for ``json``, the CSV text for ``csv``."""
        if format not in EXPORT_FORMATS:
            raise ValueError(f"export: format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
        response = self._request("GET", f"{self._exp(experiment_id)}/export", params={"format": format})
        if format == "csv":
            return response.text
        try:
            return response.json()
        except ValueError:
            raise ClientError("export: the daemon answered something that is not JSON") from None


def _segment(value: str, what: str) -> str:
    """An id as one path segment; an id with a slash could address another route."""
    if not value or "/" in value or value in (".", ".."):
        raise ValueError(f"{what} must be a non-empty name without '/', got {value!r}")
    return value


def _detail(response: _Response) -> str:
    """The server's one-line ``detail``, whatever shape the error body has."""
    detail: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        if isinstance(detail, list):  # FastAPI's 422: a list of {loc, msg}
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                    parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
                else:
                    parts.append(str(item))
            detail = "; ".join(parts)
    if detail is None:
        text = response.text.strip()
        detail = text.splitlines()[0] if text else response.reason or "no detail"
    text = str(detail).strip()
    return text or f"HTTP {response.status}"
