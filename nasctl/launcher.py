"""Find the daemon of a home, start it on demand (detached), and stop it.

A daemon announces itself in ``$NASCTL_HOME/manager.json`` once it listens, and removes the file
on a clean exit. The file alone proves nothing (a killed daemon leaves it behind; its pid may
even belong to another process by now), so a daemon counts as running only when its pid is
alive, was born before the file was written, and its port answers ``/health`` with that pid.
Every failure is one line that says what happened and, when the daemon said why, its own words.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from nasctl.client import MANAGER_FILE, Client, ClientError, DaemonInfo

START_TIMEOUT = 15.0
STOP_TIMEOUT = 300.0
HEALTH_TIMEOUT = 3.0
#: The daemon's stderr while detached (its log proper is manager.log, written by the daemon).
STDERR_FILE = "daemon.stderr"
LOG_FILE = "manager.log"
#: The daemon holds an exclusive flock on this file for as long as it runs.
LOCK_FILE = "manager.lock"

Notify = Callable[[str], None]


class LauncherError(Exception):
    """The daemon could not be found, started or stopped; the message is one line."""


class DaemonState(enum.Enum):
    RUNNING = "running"
    NOT_RUNNING = "not running"
    #: manager.json names a process that is gone (or a newer process that reused its pid).
    STALE = "stale"
    #: The process lives but its port does not answer as it should.
    UNRESPONSIVE = "unresponsive"


@dataclass(frozen=True)
class DaemonStatus:
    state: DaemonState
    info: DaemonInfo | None
    detail: str = ""


def _quiet(message: str) -> None:
    """The default ``notify``: say nothing."""


def probe(home: Path) -> DaemonStatus:
    """What runs for ``home``, without changing anything."""
    try:
        info = DaemonInfo.read(home)
    except ClientError as exc:
        return DaemonStatus(DaemonState.STALE, None, str(exc))
    if info is None:
        return DaemonStatus(DaemonState.NOT_RUNNING, None)
    if not pid_alive(info.pid, info.started_at):
        return DaemonStatus(DaemonState.STALE, info, f"pid {info.pid} is gone")
    problem = _health_problem(info)
    if problem:
        return DaemonStatus(DaemonState.UNRESPONSIVE, info, problem)
    return DaemonStatus(DaemonState.RUNNING, info)


def pid_alive(pid: int, started_at_ms: int = 0) -> bool:
    """True for a live, non-zombie process that existed when ``started_at_ms`` was written."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
    # A process born after the daemon wrote its file has only reused the pid.
    return not (started_at_ms and created > started_at_ms / 1000 + 2.0)


def _health_problem(info: DaemonInfo, attempts: int = 2) -> str:
    """Empty when the daemon answers ``/health`` as pid ``info.pid``; else what went wrong."""
    problem = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.3)
        try:
            with Client.from_info(info, timeout=HEALTH_TIMEOUT) as client:
                health = client.health()
        except ClientError as exc:
            problem = str(exc)
            continue
        if isinstance(health, dict) and health.get("pid") not in (None, info.pid):
            return f"{info.url} answers as pid {health.get('pid')}, not pid {info.pid}"
        return ""
    return problem


def remove_manager_file(home: Path, info: DaemonInfo | None) -> None:
    """Remove manager.json if it still describes ``info`` (a newer daemon's file stays)."""
    path = home / MANAGER_FILE
    try:
        current = DaemonInfo.read(home)
    except ClientError:
        current = None
    if info is None or current is None or current.pid == info.pid:
        path.unlink(missing_ok=True)


def find_daemon(home: Path, notify: Notify = _quiet) -> DaemonInfo | None:
    """The running daemon of ``home``, or None; a stale manager.json is removed (and said so)."""
    status = probe(home)
    if status.state is DaemonState.RUNNING:
        return status.info
    if status.state is DaemonState.STALE:
        remove_manager_file(home, status.info)
        notify(f"removed stale {home / MANAGER_FILE} ({status.detail})")
        return None
    if status.state is DaemonState.UNRESPONSIVE:
        assert status.info is not None
        raise LauncherError(
            f"the daemon of {home} (pid {status.info.pid}) does not answer: {status.detail}; "
            f"'nasctl manager stop --force' ends it"
        )
    return None


#: How often a starting daemon's manager.json is looked for: a cold ``create`` waits for it, and
#: a look is one small file read.
START_POLL_SECONDS = 0.01


def ensure_daemon(home: Path, notify: Notify = _quiet) -> DaemonInfo:
    """The daemon of ``home``, started detached if none runs."""
    info = find_daemon(home, notify)
    if info is not None:
        return info
    info = start_daemon(home)
    notify(f"started the nasctl daemon (pid {info.pid}) at {info.url} for {home}")
    return info


def start_daemon(
    home: Path,
    *,
    host: str | None = None,
    port: int = 0,
    db_url: str | None = None,
    allow_remote: bool = False,
    timeout: float = START_TIMEOUT,
) -> DaemonInfo:
    """Start ``python -m manager serve`` in its own session and wait until it answers.

    The caller checks first that none runs (:func:`find_daemon`). If another daemon wins a race
    for the same home, that one is returned.
    """
    home.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "manager", "serve", "--home", str(home), "--port", str(port)]
    if host:
        command += ["--host", host]
    if allow_remote:
        command.append("--allow-remote")
    stderr_path = home / STDERR_FILE
    try:
        stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed below, once the child has it
    except OSError as exc:  # a read-only or full home: say so in one line
        raise LauncherError(
            f"cannot start the daemon: home {home} is not writable ({exc.strerror})"
        ) from None
    with stderr:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=home,
            start_new_session=True,
            close_fds=True,
            # the URL may hold a password: in the environment (this user's), not the command line (everyone's)
            env={**os.environ, "NASCTL_DB_URL": db_url} if db_url else None,
        )
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            winner = probe(home)
            if winner.state is DaemonState.RUNNING and winner.info is not None:
                return winner.info
            if not (_lock_held(home) and time.monotonic() < deadline):
                raise LauncherError(f"the daemon exited during start (exit code {code}): {_why(home)}")
            # Another start for this home won the race and is still coming up: wait for it.
            time.sleep(0.05)
            continue
        info = _read_quietly(home)
        if info is not None and info.pid == proc.pid and not _health_problem(info, attempts=1):
            return info
        if time.monotonic() > deadline:
            _end(proc)
            raise LauncherError(f"the daemon did not answer within {timeout:.0f} s: {_why(home)}")
        time.sleep(START_POLL_SECONDS)


def _lock_held(home: Path) -> bool:
    """True while some daemon holds the home's lock (it may still be starting)."""
    try:
        fd = os.open(home / LOCK_FILE, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _read_quietly(home: Path) -> DaemonInfo | None:
    try:
        return DaemonInfo.read(home)
    except ClientError:
        return None  # being written


def _end(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _why(home: Path) -> str:
    """The daemon's own last word: its ``error:`` line on stderr, else the last line of its log."""
    for name in (STDERR_FILE, LOG_FILE):
        lines = _lines(home / name)
        errors = [line for line in lines if line.startswith("error:")]
        if errors:
            return errors[-1].removeprefix("error:").strip()
        if lines and name == STDERR_FILE:
            return lines[-1]
        if lines:
            return f"{lines[-1]} (from {home / name})"
    return f"it said nothing; see {home / LOG_FILE}"


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def stop_daemon(
    home: Path, *, force: bool = False, timeout: float = STOP_TIMEOUT, notify: Notify = _quiet
) -> DaemonInfo | None:
    """Stop the daemon of ``home`` and wait until its process is gone; None when none ran.

    SIGTERM lets the daemon stop its experiments and wait for their trials; ``force`` sends
    SIGKILL to the daemon and every process below it (resume continues from the database).
    """
    try:
        info = DaemonInfo.read(home)
    except ClientError as exc:
        (home / MANAGER_FILE).unlink(missing_ok=True)
        notify(f"removed unreadable {home / MANAGER_FILE} ({exc})")
        return None
    if info is None:
        return None
    if not pid_alive(info.pid, info.started_at):
        remove_manager_file(home, info)
        notify(f"removed stale {home / MANAGER_FILE} (pid {info.pid} is gone)")
        return None
    if info.pid == os.getpid():
        raise LauncherError("the daemon runs inside this process; stop it with Ctrl-C")
    if force:
        _kill_tree(info.pid)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGTERM)
    if not _wait_gone(info.pid, timeout):
        raise LauncherError(
            f"the daemon (pid {info.pid}) did not exit within {timeout:.0f} s; "
            f"'nasctl manager stop --force' kills it"
        )
    remove_manager_file(home, info)
    return info


def _kill_tree(pid: int) -> None:
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    # SIGKILL lands asynchronously: return once the descendants are gone (the caller waits for the root).
    psutil.wait_procs(procs[:-1], timeout=5)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
