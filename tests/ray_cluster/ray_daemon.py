"""Helpers of the end-to-end Ray tests: a real daemon (``python -m manager serve``) in its own
process, driven over REST and by the CLI, running experiments on the session's Ray cluster.

The daemon inherits this process's environment, which the ``ray_cluster`` fixture has given the
cluster's ``RAY_AUTH_MODE``; ``NASCTL_HOME`` is a folder of the test. Trials are
:data:`PROBE_TRIAL`: it says on stdout which node it runs on (the ``--temp_dir`` of the raylet
above it: on one machine every node has the same hostname) and which GPUs it sees, then reports.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
from reliability.helpers import REPO, cli_env, end_daemon, read_manager_file

from nasctl.client import Client

FINISHED = ("DONE", "STOPPED", "ERROR")
TRIAL_ENDED = ("SUCCEEDED", "FAILED", "USER_CANCELED", "EARLY_STOPPED", "SYS_CANCELED")
#: 4 x 4 = 16 architectures: more than any experiment here asks for.
SPACE: dict[str, Any] = {
    "conv": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "maxpool", "skip"]},
    "width": {"_type": "choice", "_value": [8, 16, 32, 64]},
}

#: ``python probe.py SECONDS REPORTS``: prints its node and GPUs, one stderr line, REPORTS
#: intermediate results over SECONDS, then a final one.
PROBE_TRIAL = """
    import os, sys, time
    import trials

    def node_dir():
        pid = os.getppid()
        while pid > 1:
            args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
            for arg in args:
                if arg.startswith(b"--temp_dir="):
                    return arg.split(b"=", 1)[1].decode()
            pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        return "?"

    parameters = trials.get_next_parameter()
    print(f"RUN {os.getpid()}", flush=True)
    print(f"NODE_DIR={node_dir()}", flush=True)
    print("CUDA_VISIBLE_DEVICES=" + os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"), flush=True)
    print(f"stderr of {os.environ['NASCTL_TRIAL_ID']}", file=sys.stderr, flush=True)
    seconds, reports = float(sys.argv[1]), int(sys.argv[2])
    for step in range(reports):
        time.sleep(seconds / max(reports, 1))
        trials.report_intermediate_result(step / 10)
    trials.report_final_result(1.0)
"""


def write_probe(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "probe.py").write_text(textwrap.dedent(PROBE_TRIAL))
    return folder


def ray_config(
    code: Path,
    address: str,
    trials: int,
    concurrency: int,
    seconds: float = 1.0,
    reports: int = 2,
    **top: Any,
) -> dict[str, Any]:
    """A REST config running the probe trial on the cluster at ``address``; ``top`` adds or
    replaces top-level keys; ``service`` (a dict) is merged into ``trainingService``."""
    service = {"platform": "ray", "address": address, **top.pop("service", {})}
    config: dict[str, Any] = {
        "experimentName": "ray-e2e",
        "trialCommand": f"{sys.executable} probe.py {seconds} {reports}",
        "trialCodeDirectory": str(code),
        "searchSpace": SPACE,
        "trialConcurrency": concurrency,
        "maxTrialNumber": trials,
        "trialCpuNumber": 1,
        "tuner": {"name": "Random", "classArgs": {"seed": 3}},
        "trainingService": service,
    }
    config.update(top)
    return config


class Served:
    """``python -m manager serve --home HOME``, and a REST client (``nasctl.client.Client``)."""

    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "manager", "serve", "--home", str(home), *args],
            cwd=REPO,
            env={**cli_env(home), **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        read_manager_file(home, self.proc.pid, self.proc)
        self.client = Client.from_home(home, timeout=90)

    def create(self, config: dict[str, Any]) -> str:
        return str(self.client.create_experiment(config, "/")["id"])

    def trials(self, experiment_id: str) -> list[dict[str, Any]]:
        return list(self.client.iter_trials(experiment_id))

    def metrics(self, experiment_id: str) -> list[dict[str, Any]]:
        return list(self.client.metrics(experiment_id, limit=10000)["items"])

    def wait(self, what: str, predicate: Callable[[], Any], timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the daemon exited {self.proc.returncode} waiting for {what}")
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(0.1)

    def wait_status(
        self, experiment_id: str, statuses: tuple[str, ...] = FINISHED, timeout: float = 60
    ) -> dict[str, Any]:
        return self.wait(
            f"experiment {experiment_id} in {'/'.join(statuses)}",
            lambda: (e := self.client.get_experiment(experiment_id))["status"] in statuses and e,
            timeout,
        )

    def running(self, experiment_id: str, count: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
        """Wait until ``count`` trials run and each has printed its node; return them."""

        def ready() -> list[dict[str, Any]] | None:
            live = [t for t in self.trials(experiment_id) if t["status"] == "RUNNING"]
            live = [t for t in live if "NODE_DIR=" in self.log(experiment_id, t["id"])]
            return live if len(live) >= count else None

        return self.wait(f"{count} running trials of {experiment_id}", ready, timeout)

    def log(self, experiment_id: str, trial_id: str, stream: str = "stdout") -> str:
        return self.client.log(experiment_id, trial_id, stream)

    def kill9(self) -> None:
        self.client.close()
        end_daemon(self.proc, crash=True)

    def stop(self) -> None:
        self.client.close()
        end_daemon(self.proc)


@contextlib.contextmanager
def served(home: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    daemon = Served(home, *args, env=env)
    try:
        yield daemon
    finally:
        daemon.stop()


def field(log: str, name: str) -> str:
    """The value of ``NAME=value`` in a probe's stdout."""
    for line in log.splitlines():
        if line.startswith(name + "="):
            return line.split("=", 1)[1]
    raise AssertionError(f"no {name}= line in {log!r}")


def node_of(cluster: Any, log: str) -> str:
    """Which node of ``cluster`` (its name) a probe's stdout says it ran on."""
    where = Path(field(log, "NODE_DIR"))
    for name, node in cluster.nodes.items():
        if where == node.temp_dir:
            return str(name)
    raise AssertionError(f"{where} is no node of the cluster ({cluster.nodes})")


def trial_processes(trial_id: str, experiment_id: str) -> list[psutil.Process]:
    """Live processes (zombies excepted) whose environment carries this trial's id: anywhere in
    this PID namespace, i.e. on every node."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            environ = proc.environ()
            if (
                environ.get("NASCTL_TRIAL_ID") == trial_id
                and environ.get("NASCTL_EXPERIMENT_ID") == experiment_id
            ):
                found.append(proc)
    return found


def kill_experiment_processes(experiment_id: str) -> None:
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("NASCTL_EXPERIMENT_ID") == experiment_id:
                proc.kill()
