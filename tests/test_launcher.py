"""Finding, starting and stopping the daemon of a home (nasctl.launcher).

The start tests run the real ``python -m manager serve``; the stop mechanics are also checked on
plain processes that stand in for a daemon, so signals and waiting are tested on their own.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from daemons import shut_down

from nasctl.client import Client, DaemonInfo
from nasctl.launcher import (
    DaemonState,
    LauncherError,
    ensure_daemon,
    find_daemon,
    pid_alive,
    probe,
    start_daemon,
    stop_daemon,
)


def write_manager_file(home: Path, pid: int, port: int = 9, started_at: int | None = None) -> None:
    home.mkdir(parents=True, exist_ok=True)
    started = int(time.time() * 1000) if started_at is None else started_at
    record = {
        "pid": pid,
        "host": "127.0.0.1",
        "port": port,
        "token": "t0k",
        "startedAt": started,
        "version": "0",
    }
    (home / "manager.json").write_text(json.dumps(record))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "home"
    yield path
    shut_down(path, timeout=30)


@pytest.fixture
def stand_in(home: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own session that a manager.json names as the daemon of ``home``."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    write_manager_file(home, proc.pid)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


# -- probe ---------------------------------------------------------------------------------------


def test_no_manager_file_means_not_running(home: Path) -> None:
    assert probe(home).state is DaemonState.NOT_RUNNING


def test_a_dead_pid_makes_the_file_stale(home: Path) -> None:
    pid = dead_pid()
    write_manager_file(home, pid)
    status = probe(home)
    assert status.state is DaemonState.STALE
    assert f"pid {pid} is gone" in status.detail


def test_a_pid_reused_by_a_younger_process_is_stale(home: Path) -> None:
    write_manager_file(home, os.getpid(), started_at=1000)  # "written" in 1970, long before this process
    status = probe(home)
    (home / "manager.json").unlink()
    assert status.state is DaemonState.STALE


def test_a_zombie_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])  # exits; not reaped until proc.wait()
    deadline = time.monotonic() + 10
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(proc.pid)
    proc.wait()


def test_a_live_pid_whose_port_does_not_answer_is_unresponsive(home: Path) -> None:
    write_manager_file(home, os.getpid(), port=closed_port())
    status = probe(home)
    (home / "manager.json").unlink()
    assert status.state is DaemonState.UNRESPONSIVE
    assert "cannot reach" in status.detail


def test_a_garbled_manager_file_is_stale(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "manager.json").write_text("{not json")
    status = probe(home)
    assert status.state is DaemonState.STALE and "not valid JSON" in status.detail


# -- find_daemon ---------------------------------------------------------------------------------


def test_find_daemon_removes_a_stale_file_and_says_so(home: Path) -> None:
    pid = dead_pid()
    write_manager_file(home, pid)
    said: list[str] = []
    assert find_daemon(home, notify=said.append) is None
    assert not (home / "manager.json").exists()
    assert said == [f"removed stale {home / 'manager.json'} (pid {pid} is gone)"]


def test_find_daemon_refuses_an_unresponsive_daemon_and_names_the_way_out(home: Path) -> None:
    write_manager_file(home, os.getpid(), port=closed_port())
    with pytest.raises(LauncherError, match=r"does not answer.*manager stop --force"):
        find_daemon(home)
    assert (home / "manager.json").exists()  # a live process: nothing is removed behind its back
    (home / "manager.json").unlink()


# -- start ---------------------------------------------------------------------------------------


def test_ensure_daemon_starts_a_detached_daemon_once(home: Path) -> None:
    said: list[str] = []
    info = ensure_daemon(home, notify=said.append)
    assert pid_alive(info.pid) and os.getsid(info.pid) == info.pid
    assert said and "started the nasctl daemon" in said[0]
    with Client.from_info(info) as client:
        assert client.health()["pid"] == info.pid
    assert ensure_daemon(home) == info


def test_concurrent_starts_for_one_home_end_with_one_daemon(home: Path) -> None:
    with ThreadPoolExecutor(3) as pool:
        infos = list(pool.map(lambda _: ensure_daemon(home), range(3)))
    assert len({info.pid for info in infos}) == 1
    assert pid_alive(infos[0].pid)


def test_start_reports_the_daemons_own_error_when_it_exits(home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LauncherError, match=rf"exited during start \(exit code 1\): .*{port}"):
            start_daemon(home, port=port)


def test_start_gives_up_after_its_deadline_and_leaves_no_process(home: Path) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(LauncherError, match="did not answer within"):
        start_daemon(home, timeout=0.01)
    after = {p.pid for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE}
    assert after <= before


# -- stop ----------------------------------------------------------------------------------------


def test_stop_sends_sigterm_and_waits_until_the_process_is_gone(
    home: Path, stand_in: subprocess.Popen[bytes]
) -> None:
    info = stop_daemon(home, timeout=10)
    assert info is not None and info.pid == stand_in.pid
    assert stand_in.wait(1) == -15
    assert not (home / "manager.json").exists()


def test_stop_force_kills_the_daemon_and_its_children(home: Path) -> None:
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); time.sleep(120)"
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    write_manager_file(home, proc.pid)
    child = next(iter(_wait_children(proc.pid)))
    stop_daemon(home, force=True, timeout=10)
    assert proc.wait(5) == -9
    assert not pid_alive(child)


def test_stop_that_times_out_says_how_to_force(home: Path) -> None:
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(120)"
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        write_manager_file(home, proc.pid)
        with pytest.raises(LauncherError, match=r"did not exit within 0 s.*--force"):
            stop_daemon(home, timeout=0.3)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_stop_with_no_daemon_returns_none(home: Path) -> None:
    assert stop_daemon(home) is None


def test_stop_of_a_stale_file_removes_it(home: Path) -> None:
    write_manager_file(home, dead_pid())
    said: list[str] = []
    assert stop_daemon(home, notify=said.append) is None
    assert not (home / "manager.json").exists() and "removed stale" in said[0]


def test_stop_of_a_real_daemon_waits_for_its_exit(home: Path) -> None:
    info = ensure_daemon(home)
    assert stop_daemon(home, timeout=60) == info
    assert not pid_alive(info.pid)
    assert DaemonInfo.read(home) is None


def _wait_children(pid: int) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = [c.pid for c in psutil.Process(pid).children()]
        if children:
            return children
        time.sleep(0.02)
    raise AssertionError("the stand-in daemon started no child")
