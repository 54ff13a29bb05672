"""Nobody let in: the token on every route, loopback by default, private files, no CORS, logs
confined to the experiment's folder (symlinks included), bounded bodies, and no command run for
a client without the token."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from manager.daemon import Daemon, DaemonError
from manager.http import auth
from manager.http.guard import MAX_BODY_BYTES
from reliability.helpers import REPO, faulty_config

pytestmark = pytest.mark.slow


def api_routes(daemon: Any) -> list[tuple[str, str]]:
    """Every (method, path) the daemon's app serves under /api/v1, ids filled in."""
    app = daemon.daemon._server.config.app.app  # RequestGuard -> FastAPI
    try:  # FastAPI >= 0.165 keeps an included router whole in app.routes
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI copies its routes into app.routes
        routes: Any = app.routes
    else:
        routes = list(iter_route_contexts(app.routes))
    out = []
    for route in routes:
        path = getattr(route, "path", "")
        if not path.startswith("/api/v1"):
            continue
        for method in sorted(getattr(route, "methods", ()) or ()):
            if method != "HEAD":
                out.append((method, re.sub(r"\{[^}]+\}", "x", path)))
    return out


def test_every_api_route_but_health_refuses_a_request_without_the_right_token(daemon: Any) -> None:
    routes = api_routes(daemon)
    assert len(routes) >= 15
    with httpx.Client(base_url=daemon.base_url.removesuffix("/api/v1"), trust_env=False) as anonymous:
        for method, path in routes:
            if path == "/api/v1/health":
                assert anonymous.get(path).status_code == 200
                continue
            wrong = "x" * len(daemon.token)  # same length: only the comparison can refuse it
            for headers, params in (
                ({}, {}),
                ({"Authorization": f"Bearer {wrong}"}, {}),
                ({"Authorization": f"Basic {daemon.token}"}, {}),
                ({}, {"token": daemon.token}),  # never in a URL (logs, history, referrers)
            ):
                response = anonymous.request(method, path, headers=headers, params=params)
                assert response.status_code == 401, (method, path, headers, params, response.text)


def test_tokens_are_compared_in_constant_time(daemon: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    response = httpx.get(
        daemon.url("/experiments"), headers={"Authorization": "Bearer guess"}, trust_env=False
    )
    assert response.status_code == 401
    assert compared == [(b"guess", daemon.token.encode())]


def test_the_daemon_listens_on_loopback_by_default_and_its_files_are_private(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path / "home")
    daemon.start_in_thread()
    try:
        assert daemon._socket is not None and daemon._socket.getsockname()[0] == "127.0.0.1"
        home = tmp_path / "home"
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        for name in ("manager.json", "nasctl.db"):
            assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
    finally:
        daemon.shutdown()


def test_another_address_needs_the_flag_and_then_prints_a_warning(tmp_path: Path) -> None:
    with pytest.raises(DaemonError, match="refusing to listen on 0.0.0.0"):
        Daemon(tmp_path / "refused", host="0.0.0.0").start_in_thread()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "manager",
            "serve",
            "--home",
            str(tmp_path / "home"),
            "--host",
            "0.0.0.0",
            "--allow-remote",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith(
            "warning: listening on 0.0.0.0: anyone who can reach this port and has the token"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_no_cross_origin_request_is_granted(daemon: Any) -> None:
    preflight = httpx.options(
        daemon.url("/experiments"),
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        trust_env=False,
    )
    simple = daemon.client.get("/experiments", headers={"Origin": "https://evil.example"})
    for response in (preflight, simple):
        assert not any(h.lower().startswith("access-control-allow") for h in response.headers)


def test_a_request_for_another_host_name_is_refused(daemon: Any) -> None:
    """A page whose own name an attacker points at 127.0.0.1 (DNS rebinding) gets nothing."""
    response = daemon.client.get("/experiments", headers={"Host": "evil.example"})
    assert response.status_code == 421
    assert daemon.client.get("/experiments", headers={"Host": "localhost:1"}).status_code == 200


def test_request_bodies_are_bounded(daemon: Any) -> None:
    big = b'{"config": "' + b"x" * MAX_BODY_BYTES + b'"}'
    declared = daemon.client.post("/experiments", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["detail"] == f"request body too large: at most {MAX_BODY_BYTES} bytes"

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536

    streamed = daemon.client.post("/experiments", content=chunks())
    assert streamed.status_code == 413
    assert daemon.client.get("/experiments").json() == []


def test_only_an_authenticated_client_makes_the_daemon_run_a_command(daemon: Any, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    config = faulty_config(trialCommand=f"touch {marker}")
    body = {"config": config, "baseDir": "/"}
    url = daemon.url("/experiments")
    cookie = {f"{auth.COOKIE_PREFIX}{daemon.daemon.port}": daemon.token}  # the dashboard's cookie
    attempts = [
        httpx.post(url, json=body, trust_env=False),
        httpx.post(url, json=body, headers={"Authorization": "Bearer nope"}, trust_env=False),
        httpx.post(url, params={"token": daemon.token}, json=body, trust_env=False),
        # a form another page makes the browser send carries the cookie, but not the header
        httpx.post(
            url, content=str(body), cookies=cookie, headers={"Content-Type": "text/plain"}, trust_env=False
        ),
    ]
    assert [a.status_code for a in attempts] == [401, 401, 401, 403]
    time.sleep(0.5)
    assert not marker.exists()
    assert daemon.client.get("/experiments").json() == []
    assert daemon.client.post("/experiments", json=body).status_code == 201  # with the token it runs
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()


# -- logs stay inside the experiment's folder ---------------------------------------------------


@pytest.fixture
def finished_trial(daemon: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    exp = daemon.create(faulty_config("ok"))
    daemon.wait_for_status(exp["id"], "DONE")
    (trial,) = daemon.trials(exp["id"])
    return daemon, exp, trial


def log_url(exp: dict[str, Any], trial: dict[str, Any], stream: str) -> str:
    return f"/experiments/{exp['id']}/trials/{trial['id']}/log/{stream}"


@pytest.mark.parametrize(
    "stream",
    ["..%2F..%2F..%2Fnasctl.db", "..%2Fparameter.json", "%2Fetc%2Fpasswd", "stdout%00", "metrics.jsonl"],
)
def test_a_log_name_cannot_reach_another_file(finished_trial: Any, stream: str) -> None:
    daemon, exp, trial = finished_trial
    response = daemon.client.get(log_url(exp, trial, stream))
    assert response.status_code == 404
    assert "SQLite" not in response.text and "root:" not in response.text


def test_a_trial_id_cannot_climb_out_of_its_experiment(finished_trial: Any) -> None:
    daemon, exp, _ = finished_trial
    response = daemon.client.get(f"/experiments/{exp['id']}/trials/..%2F..%2F/log/stdout")
    assert response.status_code == 404


def test_a_log_replaced_by_a_symlink_to_a_file_outside_is_refused(
    finished_trial: Any, tmp_path: Path
) -> None:
    daemon, exp, trial = finished_trial
    secret = tmp_path / "secret.txt"
    secret.write_text("the user's private key\n")
    log = Path(trial["trialDir"]) / "stdout"
    log.unlink()
    log.symlink_to(secret)
    response = daemon.client.get(log_url(exp, trial, "stdout"))
    assert response.status_code == 403
    assert "private key" not in response.text
    assert (
        response.json()["detail"]
        == f"trial {trial['id']}: stdout of this trial leads outside the experiment's folder"
    )
    tail = daemon.client.get(log_url(exp, trial, "stdout"), params={"tail": 1})
    assert tail.status_code == 403


def test_a_trial_folder_replaced_by_a_symlink_is_refused(finished_trial: Any, tmp_path: Path) -> None:
    daemon, exp, trial = finished_trial
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "stderr").write_text("not yours\n")
    folder = Path(trial["trialDir"])
    shutil.rmtree(folder)
    folder.symlink_to(elsewhere)
    response = daemon.client.get(log_url(exp, trial, "stderr"))
    assert response.status_code == 403 and "not yours" not in response.text


def test_a_symlink_that_stays_inside_the_experiment_is_served(finished_trial: Any) -> None:
    daemon, exp, trial = finished_trial
    folder = Path(trial["trialDir"])
    (folder / "stderr").unlink()
    (folder / "stderr").symlink_to(folder / "stdout")
    response = daemon.client.get(log_url(exp, trial, "stderr"))
    assert response.status_code == 200 and response.text == (folder / "stdout").read_text()


def test_a_log_replaced_by_a_fifo_does_not_hang_the_route(finished_trial: Any) -> None:
    daemon, exp, trial = finished_trial
    log = Path(trial["trialDir"]) / "stdout"
    log.unlink()
    os.mkfifo(log)
    response = daemon.client.get(log_url(exp, trial, "stdout"), timeout=10)
    assert response.status_code == 403


def test_a_large_log_is_streamed_whole(finished_trial: Any) -> None:
    daemon, exp, trial = finished_trial
    log = Path(trial["trialDir"]) / "stdout"
    log.write_bytes(b"line\n" * 1_000_000)  # 5 MB
    response = daemon.client.get(log_url(exp, trial, "stdout"))
    assert response.status_code == 200 and len(response.content) == 5_000_000
    assert response.headers.get("transfer-encoding") == "chunked"
    assert daemon.client.get(log_url(exp, trial, "stdout"), params={"tail": 2}).text == "line\nline\n"
