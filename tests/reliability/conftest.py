"""Fixtures of the reliability tests (the helpers are in helpers.py).

Faults are injected for real: SIGKILL to the daemon and to trials, processes that ignore
SIGTERM, and (where this runs as root) a small tmpfs or a read-only mount for the disk.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reliability.helpers import REPO, ServedDaemon, cli_env, client_for, kill_trials_under, read_manager_file


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServedDaemon]]:
    """Start daemons in their own processes: ``serve(home=None, *serve_args)``; every daemon (and
    every trial they started) is gone after the test."""
    started: list[ServedDaemon] = []

    def start(home: Path | None = None, *args: str) -> ServedDaemon:
        home = home or tmp_path / "home"
        proc = subprocess.Popen(
            [sys.executable, "-m", "manager", "serve", "--home", str(home), *args],
            cwd=REPO,
            env=cli_env(home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        info = read_manager_file(home, proc.pid, proc)
        served = ServedDaemon(home, proc, info, client_for(info))
        started.append(served)
        return served

    yield start
    for served in reversed(started):
        served.stop()
    kill_trials_under(tmp_path)
