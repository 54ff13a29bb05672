"""Helpers of the reliability tests: a daemon in its own process (so it can be killed for real),
one in this process, the CLI as a user runs it, the misbehaving trial's configs, and checks on
processes and metrics files.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FAULTY_TRIAL = HERE / "faulty_trial.py"
FINISHED = ("DONE", "STOPPED", "ERROR")

#: 3 x 2 = 6 architectures.
SPACE6: dict[str, Any] = {
    "conv": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "maxpool"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["in0", "in1"], "n_chosen": 1}},
}


#: 3 x 2 x 2 = 12 architectures.
SPACE12: dict[str, Any] = {
    **SPACE6,
    "act": {"_type": "layer_choice", "_value": ["relu", "gelu"]},
}


def faulty_config(modes: str = "ok", control: Path | None = None, **overrides: Any) -> dict[str, Any]:
    """A config (the REST body's ``config``) that runs faulty_trial.py with ``--modes``."""
    command = f"{sys.executable} {FAULTY_TRIAL.name} --modes {modes}"
    if control is not None:
        command += f" --control {control}"
    config: dict[str, Any] = {
        "experimentName": "reliability",
        "trialCommand": command,
        "trialCodeDirectory": str(HERE),
        "searchSpace": SPACE6,
        "trialConcurrency": 1,
        "maxTrialNumber": 1,
        "tuner": {"name": "Random", "classArgs": {"seed": 7}},
    }
    config.update(overrides)
    return config


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.pop("NASCTL_DEBUG", None)
    env["NASCTL_HOME"] = str(home)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def nasctl(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it (it starts the daemon of ``home`` when none runs)."""
    return subprocess.run(
        [sys.executable, "-m", "nasctl.cli", *args],
        env=cli_env(home),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def gone(pid: int | None, create_time: float | None = None) -> bool:
    """True when that process no longer runs (a zombie counts as gone)."""
    if pid is None:
        return True
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.05:
            return True
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def metrics_in_file(trial_dir: Path) -> list[dict[str, Any]]:
    """The records a trial wrote to its metrics.jsonl (the trial's own account of what it reported)."""
    path = Path(trial_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class ServedDaemon:
    """``python -m manager serve`` in its own process, and a client with its token."""

    home: Path
    proc: subprocess.Popen[str]
    info: dict[str, Any]
    client: httpx.Client = field(repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def create(self, config: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post("/experiments", json={"config": config, "baseDir": "/"})
        assert response.status_code == 201, response.text
        return response.json()

    def experiment(self, experiment_id: str) -> dict[str, Any]:
        response = self.client.get(f"/experiments/{experiment_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def trials(self, experiment_id: str) -> list[dict[str, Any]]:
        response = self.client.get(f"/experiments/{experiment_id}/trials", params={"limit": 1000})
        assert response.status_code == 200, response.text
        return response.json()["items"]

    def kill9(self) -> None:
        """A crash: SIGKILL, nothing cleaned up (manager.json stays, trials live on)."""
        self.client.close()
        end_daemon(self.proc, crash=True)

    def stop(self) -> None:
        self.client.close()
        end_daemon(self.proc)


def end_daemon(proc: subprocess.Popen[str], crash: bool = False) -> None:
    """SIGKILL (a crash: nothing cleaned up, trials live on), or SIGTERM and up to a minute."""
    if proc.poll() is None and not crash:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.kill()
    proc.wait(timeout=10)


def client_for(info: dict[str, Any]) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{info['port']}/api/v1",
        headers={"Authorization": f"Bearer {info['token']}"},
        timeout=60,
        trust_env=False,
    )


def read_manager_file(
    home: Path, pid: int, proc: subprocess.Popen[str], timeout: float = 30
) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            info = json.loads((home / "manager.json").read_text())
        except (OSError, ValueError):
            return None
        return info if info["pid"] == pid else None

    return wait_until(ready, timeout, "manager.json")


def kill_trials_under(folder: Path) -> None:
    """SIGKILL what a test's daemons left running: processes whose NASCTL_HOME or trial folder is under ``folder``."""
    mine = os.getpid()
    for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid == mine:
                continue
            environ = proc.info.get("environ") or {}
            if str(folder) in environ.get("NASCTL_TRIAL_DIR", "") or str(folder) in environ.get(
                "NASCTL_HOME", ""
            ):
                proc.kill()


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 60) -> Any:
    return wait_until(predicate, timeout, what)


def by_sequence(trials: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {t["sequenceId"]: t for t in trials}


class InProcessDaemon:
    """A daemon served by a thread of this process (quicker to start; cannot be SIGKILLed)."""

    def __init__(self, home: Path, **options: Any) -> None:
        from manager.daemon import Daemon

        self.home = home
        self.daemon = Daemon(home, **options)
        port, self.token = self.daemon.start_in_thread()
        self.base_url = f"http://127.0.0.1:{port}/api/v1"
        self.client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
            trust_env=False,
        )

    def create(self, config: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post("/experiments", json={"config": config, "baseDir": "/"})
        assert response.status_code == 201, response.text
        return response.json()

    def trials(self, experiment_id: str) -> list[dict[str, Any]]:
        response = self.client.get(f"/experiments/{experiment_id}/trials", params={"limit": 1000})
        assert response.status_code == 200, response.text
        return response.json()["items"]

    def wait_for_status(
        self, experiment_id: str, statuses: tuple[str, ...] | str, timeout: float = 90
    ) -> dict[str, Any]:
        wanted = (statuses,) if isinstance(statuses, str) else statuses
        return wait_for(
            f"experiment {experiment_id} in {'/'.join(wanted)}",
            lambda: (
                (exp := self.client.get(f"/experiments/{experiment_id}").json())["status"] in wanted and exp
            ),
            timeout,
        )

    def close(self) -> None:
        self.client.close()
        self.daemon.shutdown()
