"""Die at each named crash point (manager/crash_points.py), resume, and check exactly once.

The daemon is a real process armed with ``NASCTL_CRASH_AT``; at the point it SIGKILLs itself,
as ``kill -9`` would, trials running on. A second daemon recovers, the experiment is resumed, and
bench/exactly_once.py checks what the crash must not have broken: each trial ran once, each
metric is stored once, the tuner heard each result once, every trial SUCCEEDED as it would have
without the crash, and no trial process outlives the daemon's shutdown.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.exactly_once import check_exactly_once, experiment_config, trial_processes
from manager.crash_points import CRASH_AT_ENV, POINTS
from nasctl.client import Client, DaemonInfo
from reliability.helpers import (
    REPO,
    cli_env,
    client_for,
    kill_trials_under,
    nasctl,
    read_manager_file,
    wait_for,
)

pytestmark = pytest.mark.slow

TRIALS = 4
REPORTS = 2
CRASH_TIMEOUT = 60.0


@dataclass
class Daemon:
    proc: subprocess.Popen[str]
    home: Path

    def client(self) -> httpx.Client:
        """A client once the daemon answers (it has written its manager.json)."""
        return client_for(read_manager_file(self.home, self.proc.pid, self.proc))

    def crashed(self) -> bool:
        """True once it died of SIGKILL (the armed point); it must not end any other way."""
        code = self.proc.poll()
        if code is None:
            return False
        stderr = self.proc.stderr.read() if self.proc.stderr else ""
        assert code == -signal.SIGKILL, f"the daemon exited {code}, not at its crash point: {stderr[-2000:]}"
        return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


class Lab:
    """A home, its experiment folder, and the daemons started on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.daemons: list[Daemon] = []

    def daemon(self, crash_at: str | None = None) -> Daemon:
        env = cli_env(self.home)
        if crash_at is not None:
            env[CRASH_AT_ENV] = crash_at
        proc = subprocess.Popen(
            [sys.executable, "-m", "manager", "serve", "--home", str(self.home)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        daemon = Daemon(proc, self.home)
        self.daemons.append(daemon)
        return daemon

    def create(self, daemon: Daemon, interval: float = 0.05) -> str:
        config = experiment_config(self.root, TRIALS, 2, REPORTS, interval)
        with daemon.client() as http:
            response = http.post("/experiments", json={"config": config, "baseDir": "/"})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def finish(self, experiment_id: str) -> list[str]:
        """With a clean daemon: resume, wait for the end, check, stop the daemon, check no process is left."""
        daemon = self.daemon()
        daemon.client().close()  # waits until it answers
        info = DaemonInfo.read(self.home)
        assert info is not None
        client = Client.from_info(info)
        try:
            client.resume(experiment_id)
            wait_for(
                "the resumed experiment to end",
                lambda: client.get_experiment(experiment_id)["status"] in ("DONE", "ERROR", "STOPPED"),
            )
            problems = check_exactly_once(client, experiment_id, self.root / "ledger.json", TRIALS, REPORTS)
        finally:
            client.close()
        daemon.stop()
        wait_for("trial processes to go", lambda: not trial_processes(experiment_id), timeout=10)
        return problems

    def close(self) -> None:
        for daemon in self.daemons:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
                daemon.proc.wait()
        kill_trials_under(self.root)


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    lab = Lab(tmp_path)
    yield lab  # type: ignore[misc]
    lab.close()


def crash_at(lab: Lab, point: str, interval: float = 0.05) -> str:
    """Run the experiment under a daemon armed at ``point``; returns its id once the daemon died there.

    ``interval``: seconds between a trial's reports (a trial lives about three of them).
    """
    daemon = lab.daemon(point)
    experiment_id = lab.create(daemon, interval)
    wait_for(f"the daemon to die at {point}", daemon.crashed, timeout=CRASH_TIMEOUT)
    return experiment_id


@pytest.mark.parametrize(
    ("point", "interval"),
    [
        ("launch.before_spawn:2", 0.05),
        ("launch.after_spawn:2", 0.05),
        # reports far enough apart that polls store some while the trial runs (its last chunk is
        # stored with its end, at trial.before_end_commit)
        ("metrics.before_commit:3", 0.3),
        ("trial.before_end_commit", 0.05),
        ("tuner.checkpoint", 0.05),
        ("tuner.before_result:2", 0.05),
    ],
)
def test_a_crash_at_this_point_loses_nothing_and_runs_nothing_twice(
    lab: Lab, point: str, interval: float
) -> None:
    experiment_id = crash_at(lab, point, interval)
    assert lab.finish(experiment_id) == []


def test_a_crash_during_recovery_is_recovered_from_in_turn(lab: Lab) -> None:
    experiment_id = crash_at(lab, "launch.after_spawn:2")
    recovering = lab.daemon("recovery.after_trial")
    wait_for("the recovering daemon to die", recovering.crashed, timeout=CRASH_TIMEOUT)
    assert lab.finish(experiment_id) == []


def test_stopping_an_experiment_whose_daemon_died_mid_launch_leaves_no_process(lab: Lab) -> None:
    experiment_id = crash_at(lab, "launch.after_spawn:2", interval=60)
    assert trial_processes(experiment_id), "the trial caught in the launch window should still run"
    stopped = nasctl(lab.home, "stop", experiment_id)  # the CLI starts a daemon, which recovers first
    assert stopped.returncode == 0, stopped.stderr
    assert trial_processes(experiment_id) == []
    assert nasctl(lab.home, "manager", "stop").returncode == 0


def test_every_crash_point_is_tested() -> None:
    armed = {"launch.before_spawn", "launch.after_spawn", "metrics.before_commit", "trial.before_end_commit"}
    armed |= {"tuner.checkpoint", "tuner.before_result", "recovery.after_trial"}
    assert armed == set(POINTS)
