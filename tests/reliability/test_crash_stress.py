"""The crash-stress run as a test: ten rounds of SIGKILLs to the daemon, each trial run exactly once.

``bench/crash_stress.py`` kills the daemon at random and at aimed moments (just after a trial
process is forked, just after a metric line, during a resume) and checks every invariant; it
exits 1 naming each problem. The aimed kills make a rare window common, so ten rounds catch a
daemon that can lose track of a trial it started (issue 20) most of the time, not always.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from reliability.helpers import REPO

pytestmark = pytest.mark.slow


def test_ten_rounds_of_daemon_crashes_run_every_trial_exactly_once_and_leave_nothing() -> None:
    # The script puts this tree first on the path of the CLI, daemons and trials it starts.
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "crash_stress.py"), "--rounds", "10"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:  # the script's own report: each round and every problem, in words
        pytest.fail(f"crash_stress.py exited {done.returncode}:\n{done.stdout[-6000:]}{done.stderr[-2000:]}")
