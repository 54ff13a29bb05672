"""The daemon process: manager.json, one daemon per home, start failures, restarts, no torch."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from conftest import FAST_TRIAL, SMALL_SPACE, TRIALS_DIR, RunningDaemon, wait_until

from manager.daemon import Daemon, DaemonError

REPO = Path(__file__).resolve().parents[1]


def config(args: str = "", **overrides: Any) -> dict[str, Any]:
    base = {
        "trialCommand": f"{sys.executable} {FAST_TRIAL.name} {args}".strip(),
        "trialCodeDirectory": str(TRIALS_DIR),
        "searchSpace": SMALL_SPACE,
        "maxTrialNumber": 3,
    }
    return {**base, **overrides}


def serve(home: Path, *args: str) -> subprocess.Popen[str]:
    """``python -m manager serve`` as its own process (as the CLI starts it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "manager", "serve", "--home", str(home), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def read_manager_file(home: Path, pid: int | None = None, timeout: float = 20) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        try:
            info = json.loads((home / "manager.json").read_text())
        except (OSError, ValueError):
            return None
        return info if pid is None or info["pid"] == pid else None

    return wait_until(ready, timeout, "manager.json")


def gone(pid: int | None, create_time: float | None) -> bool:
    """True when ``pid`` no longer is the process that started at ``create_time`` (zombies count as gone)."""
    try:
        proc = psutil.Process(pid)
        return proc.status() == psutil.STATUS_ZOMBIE or abs(proc.create_time() - (create_time or 0)) > 0.5
    except psutil.NoSuchProcess:
        return True


def stored_trial_pid(home: Path, experiment_id: str, trial_id: str) -> tuple[int, float]:
    """The pid and start time the dead daemon stored for a trial, read from its database."""
    from manager.store import Store

    store = Store.open(home)
    try:
        trial = store.get_trial(experiment_id, trial_id)
    finally:
        store.close()
    assert trial is not None and trial.pid is not None and trial.pid_create_time is not None
    return trial.pid, trial.pid_create_time


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Daemon subprocesses started by a test; any still alive is killed afterwards."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_manager_json_is_private_complete_and_removed_on_shutdown(tmp_path: Path) -> None:
    home = tmp_path / "home"
    daemon = Daemon(home)
    port, token = daemon.start_in_thread()
    try:
        path = home / "manager.json"
        info = json.loads(path.read_text())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert set(info) == {"pid", "host", "port", "token", "startedAt", "version"}
        assert (info["pid"], info["host"], info["port"], info["token"]) == (
            os.getpid(),
            "127.0.0.1",
            port,
            token,
        )
        assert len(token) >= 40
        assert abs(info["startedAt"] / 1000 - time.time()) < 60
        health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", trust_env=False).json()
        assert health["pid"] == os.getpid()
    finally:
        daemon.shutdown()
    assert not path.exists()
    assert "listening on http://127.0.0.1" in (home / "manager.log").read_text()


def test_a_second_daemon_for_the_same_home_refuses_in_one_line(daemon: RunningDaemon) -> None:
    with pytest.raises(DaemonError) as caught:
        Daemon(daemon.home).start_in_thread()
    message = str(caught.value)
    assert message.startswith(f"a daemon already runs for {daemon.home.resolve()} (pid {os.getpid()}, port ")
    assert "\n" not in message
    assert daemon.client.get("/experiments").status_code == 200  # the first one is untouched


def test_a_non_loopback_host_needs_allow_remote(tmp_path: Path) -> None:
    with pytest.raises(DaemonError, match="refusing to listen on 0.0.0.0: .*--allow-remote"):
        Daemon(tmp_path / "home", host="0.0.0.0").start_in_thread()
    assert not (tmp_path / "home" / "manager.json").exists()


def test_allow_remote_binds_every_interface_and_warns(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path / "home", host="0.0.0.0", allow_remote=True)
    port, _ = daemon.start_in_thread()
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health", trust_env=False).status_code == 200
    finally:
        daemon.shutdown()
    assert "WARNING" in (tmp_path / "home" / "manager.log").read_text()


def test_shutdown_stops_running_experiments_so_resume_can_continue_them(
    daemon_factory: Callable[..., RunningDaemon],
) -> None:
    first = daemon_factory()
    exp = first.create(config("--sleep 30"))
    wait_until(lambda: first.trials(exp["id"], status="RUNNING"), what="a running trial")
    running = first.daemon.store.all_trials(exp["id"])[0]
    first.daemon.shutdown()
    assert gone(running.pid, running.pid_create_time)

    second = daemon_factory()
    stopped = second.experiment(exp["id"])
    assert stopped["status"] == "STOPPED"
    assert second.trials(exp["id"])[0]["reason"] == "daemon shut down"
    assert second.client.post(f"/experiments/{exp['id']}/resume").status_code == 200
    wait_until(lambda: second.trials(exp["id"], status="RUNNING"), what="a trial after resume")
    second.client.post(f"/experiments/{exp['id']}/stop")


def test_a_killed_daemons_experiments_are_stopped_on_restart_and_resume_readopts_their_trials(
    tmp_path: Path, processes: list[subprocess.Popen[str]], daemon_factory: Callable[..., RunningDaemon]
) -> None:
    home = tmp_path / "home"
    proc = serve(home)
    processes.append(proc)
    info = read_manager_file(home, proc.pid)
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{info['port']}/api/v1",
        headers={"Authorization": f"Bearer {info['token']}"},
        trust_env=False,
    )
    exp = client.post("/experiments", json={"config": config("--sleep 60"), "baseDir": "/"}).json()
    trial = wait_until(
        lambda: [
            t
            for t in client.get(f"/experiments/{exp['id']}/trials").json()["items"]
            if t["status"] == "RUNNING"
        ],
        what="a running trial",
    )[0]
    wait_until(lambda: client.get(f"/experiments/{exp['id']}/metrics").json()["items"], what="first metrics")
    client.close()
    os.kill(proc.pid, signal.SIGKILL)  # a crash: nothing is cleaned up
    proc.wait(timeout=10)
    assert (home / "manager.json").exists()
    orphan = stored_trial_pid(home, exp["id"], trial["id"])
    assert not gone(*orphan)  # the trial outlived its daemon

    restarted = daemon_factory(home)
    experiment = restarted.experiment(exp["id"])
    assert experiment["status"] == "STOPPED"
    (after,) = restarted.trials(exp["id"])
    assert (after["id"], after["status"], after["reason"]) == (trial["id"], "RUNNING", None)
    assert len(restarted.trial(exp["id"], trial["id"])["intermediate"]) == 2  # nothing reported was lost
    assert not gone(*orphan)  # nothing was killed: resume re-adopts it
    events = [e.message for e in restarted.daemon.store.events(exp["id"])]
    assert (
        "daemon restarted: the experiment was stopped; 1 trial(s) still run and resume re-adopts them "
        "(stop ends them)"
    ) in events
    assert restarted.client.post(f"/experiments/{exp['id']}/resume").status_code == 200
    restarted.wait_for_status(exp["id"], "RUNNING")
    assert [t["id"] for t in restarted.trials(exp["id"], status="RUNNING")] == [trial["id"]]
    restarted.client.post(f"/experiments/{exp['id']}/stop")
    assert gone(*orphan)


def test_serve_runs_until_sigterm_then_cleans_up(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    home = tmp_path / "home"
    proc = serve(home)
    processes.append(proc)
    info = read_manager_file(home, proc.pid)
    health = httpx.get(f"http://127.0.0.1:{info['port']}/api/v1/health", trust_env=False).json()
    assert health["pid"] == proc.pid
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert f"listening on http://127.0.0.1:{info['port']}" in stdout
    assert not (home / "manager.json").exists()


def test_serve_on_a_port_in_use_fails_with_one_error_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "manager", "serve", "--home", str(home), "--port", str(port)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert done.stderr.strip() in (home / "manager.log").read_text()
    assert not (home / "manager.json").exists()


def test_serve_with_a_home_that_cannot_be_created_fails_with_one_error_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "manager", "serve", "--home", str(blocker / "home")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"error: cannot create home {blocker / 'home'}: Not a directory"]


def test_a_bad_database_url_fails_with_one_error_line(tmp_path: Path) -> None:
    with pytest.raises(DaemonError, match=r"^cannot open the database nosuchdb://x: ") as caught:
        Daemon(tmp_path / "home", db_url="nosuchdb://x").start_in_thread()
    assert "\n" not in str(caught.value)


def test_a_database_other_than_sqlite_or_postgresql_is_refused_naming_both(tmp_path: Path) -> None:
    with pytest.raises(DaemonError, match=r"^cannot open the database mysql://u:\*\*\*@h/db: .*not mysql"):
        Daemon(tmp_path / "home", db_url="mysql://u:secret@h/db").start_in_thread()


def test_a_database_url_puts_the_data_where_it_says(
    tmp_path: Path, daemon_factory: Callable[..., RunningDaemon]
) -> None:
    db = tmp_path / "elsewhere.db"
    running = daemon_factory(db_url=f"sqlite:///{db}")
    exp = running.create(config(maxTrialNumber=1))
    running.wait_for_status(exp["id"], "DONE")
    assert db.is_file() and not (running.home / "nasctl.db").exists()


def test_the_daemon_module_imports_no_torch() -> None:
    code = (
        "import sys, manager.daemon, manager.__main__; print('torch' in sys.modules, 'numpy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_help_imports_no_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "manager", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "serve" in done.stdout
    assert not [line for line in done.stderr.splitlines() if line.rstrip().endswith(("| torch", "| numpy"))]
