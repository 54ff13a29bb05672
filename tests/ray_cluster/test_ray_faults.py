"""Faults on a real cluster, through the real daemon: a node dies under its trial, the daemon is
SIGKILLed and resumed, a trial ignores SIGTERM and leaves a grandchild in its own session, the
whole cluster goes away, and an address where nothing listens."""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from reliability.helpers import nasctl

from bench.exactly_once import COUNTING_TRIAL, LEDGER_FILE, RUNS_FILE, check_exactly_once, experiment_config
from nasctl.client import ClientError
from ray_cluster.cluster import HEAD, RayCluster, free_ports
from ray_cluster.ray_daemon import (
    FINISHED,
    Served,
    kill_experiment_processes,
    node_of,
    ray_config,
    served,
    trial_processes,
    write_probe,
)

#: bench/_counting_trial.py writes its "runs" line to stdout too: the node's trial folder is not
#: the daemon's, and stdout is what the daemon copies back.
RUN_LINE = re.compile(r"^\d+ \d+\.\d+$")

#: Ignores SIGTERM, and leaves a grandchild (also deaf to SIGTERM) in a session of its own whose
#: parent has exited: only the trial's id in its environment ties it to the trial.
STUBBORN_TRIAL = """
    import signal, subprocess, sys, time
    import trials

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    trials.get_next_parameter()
    grandchild = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    spawner = (
        "import subprocess, sys; "
        f"p = subprocess.Popen([sys.executable, '-c', {grandchild!r}], start_new_session=True, "
        "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "print(p.pid)"
    )
    pid = subprocess.run([sys.executable, "-c", spawner], capture_output=True, text=True).stdout.strip()
    print(f"GRANDCHILD {pid}", flush=True)
    time.sleep(600)
"""


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_probe(tmp_path_factory.mktemp("faults-code"))
    shutil.copy(COUNTING_TRIAL, folder / "counting.py")
    (folder / "stubborn.py").write_text(textwrap.dedent(STUBBORN_TRIAL))
    return folder


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("faults") / "home", "--kill-grace", "1") as running:
        yield running


def test_a_trial_whose_node_dies_fails_naming_it_and_its_place_goes_back(
    ray_cluster: Any, daemon: Served, code: Path
) -> None:
    experiment_id = daemon.create(
        ray_config(code, ray_cluster.address, trials=3, concurrency=2, seconds=5, reports=3)
    )
    running = daemon.running(experiment_id, count=2)
    # Each node has 1 CPU: of two trials at once, at least one is on a worker node.
    victim = next(t for t in running if node_of(ray_cluster, daemon.log(experiment_id, t["id"])) != "head")
    node = node_of(ray_cluster, daemon.log(experiment_id, victim["id"]))
    ray_cluster.kill_node(node)
    try:
        experiment = daemon.wait_status(experiment_id, timeout=60)
        assert experiment["status"] == "DONE", experiment
        records = {t["id"]: t for t in daemon.trials(experiment_id)}
        assert len(records) == 4  # the lost trial's place was given back: one more ran
        lost = records.pop(victim["id"])
        assert lost["status"] == "FAILED"
        assert "node 127.0.0.1" in (lost.get("reason") or ""), lost
        assert [t["status"] for t in records.values()] == ["SUCCEEDED"] * 3
        for trial_id in [victim["id"], *records]:
            assert daemon.log(experiment_id, trial_id).count("RUN ") == 1  # nothing ran twice
    finally:
        kill_experiment_processes(experiment_id)  # the lost trial's process outlives its raylet
        ray_cluster.restart_node(node)


@pytest.mark.parametrize(
    ("reports", "interval", "down_for"),
    [(8, 1.0, 0.0), (3, 0.3, 3.0)],
    ids=["trials-still-run-at-resume", "trials-end-while-no-daemon-runs"],
)
def test_a_daemon_killed_mid_run_resumes_with_each_trial_once_and_each_metric_once(
    ray_cluster: Any, code: Path, tmp_path: Path, reports: int, interval: float, down_for: float
) -> None:
    trials = 4
    config = experiment_config(tmp_path, trials=trials, concurrency=2, reports=reports, interval=interval)
    config.update(
        trialCommand=f"{sys.executable} counting.py --reports {reports} --interval {interval}",
        trialCodeDirectory=str(code),
        trialCpuNumber=0.5,
        trainingService={"platform": "ray", "address": ray_cluster.address},
    )
    home = tmp_path / "home"
    first = Served(home)
    try:
        experiment_id = first.create(config)
        first.wait(
            "a stored metric of two running trials", lambda: _two_running_with_metrics(first, experiment_id)
        )
        first.kill9()
    except BaseException:
        first.stop()
        raise
    time.sleep(down_for)  # long enough, in the second case, for the two trials to end unwatched
    with served(home) as second:
        resumed = nasctl(home, "resume", experiment_id)
        assert resumed.returncode == 0, resumed.stderr
        experiment = second.wait_status(experiment_id, timeout=90)
        records = second.trials(experiment_id)
        for trial in records:  # the counting trial's runs file, from its copied stdout
            stdout = (Path(trial["trialDir"]) / "stdout").read_text()
            runs = [line for line in stdout.splitlines() if RUN_LINE.match(line)]
            (Path(trial["trialDir"]) / RUNS_FILE).write_text("".join(f"{line}\n" for line in runs))
        assert check_exactly_once(second.client, experiment_id, tmp_path / LEDGER_FILE, trials, reports) == []
        assert experiment["status"] == "DONE"
        if not down_for:
            readopted = [t for t in records if "re-adopted" in (t.get("reason") or "")]
            assert readopted, [(t["id"], t.get("reason")) for t in records]


def _two_running_with_metrics(daemon: Served, experiment_id: str) -> bool:
    running = {t["id"] for t in daemon.trials(experiment_id) if t["status"] == "RUNNING"}
    stored = {m["trialId"] for m in daemon.metrics(experiment_id)}
    return len(running & stored) == 2


def test_stop_and_max_trial_duration_leave_no_process_of_a_stubborn_trial_anywhere(
    ray_cluster: Any, daemon: Served, code: Path
) -> None:
    command = f"{sys.executable} stubborn.py"
    timed = daemon.create(
        ray_config(code, ray_cluster.address, 1, 1, trialCommand=command, maxTrialDuration=6)
    )
    stopped = daemon.create(ray_config(code, ray_cluster.address, 1, 1, trialCommand=command))
    for experiment_id in (timed, stopped):
        daemon.wait(
            f"the grandchild of {experiment_id}'s trial",
            lambda e=experiment_id: any("GRANDCHILD" in daemon.log(e, t["id"]) for t in daemon.trials(e)),
        )
    (trial,) = daemon.trials(timed)
    assert trial["status"] == "RUNNING", trial  # the grandchild came before maxTrialDuration
    (trial,) = daemon.trials(stopped)
    assert len(trial_processes(trial["id"], stopped)) == 2  # the trial and its grandchild
    result = nasctl(daemon.home, "stop", stopped)
    assert result.returncode == 0, result.stderr
    assert trial_processes(trial["id"], stopped) == []
    assert daemon.trials(stopped)[0]["status"] == "USER_CANCELED"

    daemon.wait_status(timed, timeout=30)
    (trial,) = daemon.trials(timed)
    assert trial["status"] != "SUCCEEDED"
    daemon.wait(f"no process of {trial['id']}", lambda: not trial_processes(trial["id"], timed), timeout=5)


class _OwnPortsCluster(RayCluster):
    """A second cluster: its head's worker ports are not the session head's."""

    def _args(self, spec: Any, temp_dir: Path, first: list[str]) -> list[str]:
        args = super()._args(spec, temp_dir, first)
        return [
            a.replace("=20000", "=21000").replace("=20199", "=21199") if "worker-port" in a else a
            for a in args
        ]


def test_an_address_where_nothing_listens_is_refused_at_once_in_one_line(code: Path, tmp_path: Path) -> None:
    with served(tmp_path / "home") as daemon:  # a daemon not connected to any cluster yet
        (nobody,) = free_ports(1, set())
        dead = ray_config(code, f"127.0.0.1:{nobody}", trials=1, concurrency=1)
        (tmp_path / "dead.yaml").write_text(yaml.safe_dump(dead))
        began = time.monotonic()
        refused = nasctl(daemon.home, "create", "--config", str(tmp_path / "dead.yaml"))
        assert (refused.returncode, time.monotonic() - began < 10) == (2, True), refused
        assert len(refused.stderr.strip().splitlines()) == 1 and "trainingService.address" in refused.stderr
        with pytest.raises(ClientError) as info:
            daemon.create(dead)
        assert 400 <= info.value.status < 500 and "cannot reach the Ray cluster" in str(info.value)
        assert daemon.client.list_experiments() == []


def test_a_cluster_that_goes_away_ends_the_experiment_and_the_daemon_lives(
    code: Path, tmp_path: Path
) -> None:
    # Ray's driver would end the daemon once the head is away for this long; the daemon must
    # keep it from doing so (manager/training/ray_watch.py), here at 10 s instead of 60 s.
    with served(
        tmp_path / "home", "--kill-grace", "1", env={"RAY_gcs_rpc_server_reconnect_timeout_s": "10"}
    ) as daemon:
        cluster = _OwnPortsCluster(HEAD, workers=())
        experiment_id = ""
        try:
            cluster.start()
            experiment_id = daemon.create(
                ray_config(code, cluster.address, trials=3, concurrency=1, seconds=60)
            )
            daemon.running(experiment_id)
            cluster.stop()
            gone_at = time.monotonic()
            experiment = daemon.wait_status(experiment_id, FINISHED, timeout=45)
        finally:
            cluster.stop()
            kill_experiment_processes(experiment_id)
        time.sleep(max(0.0, gone_at + 15 - time.monotonic()))  # past the driver's 10 s
        records = daemon.trials(experiment_id)  # the daemon still answers
        assert experiment["status"] in ("DONE", "ERROR")
        assert all(t["status"] == "FAILED" and "gone" in (t.get("reason") or "") for t in records), records


@pytest.fixture
def token_cluster(tmp_path: Path) -> Iterator[tuple[RayCluster, Path]]:
    """A head that asks every driver for its token (Ray's token authentication), and the token."""
    token = tmp_path / "auth_token"
    token.write_text("nasctl-test-token-0123456789abcdef0123456789abcdef\n")
    cluster = _OwnPortsCluster(
        HEAD, workers=(), env={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    )
    try:
        cluster.start()
        yield cluster, token
    finally:
        cluster.stop()


@pytest.mark.parametrize("token", ["missing", "wrong"])
def test_a_cluster_that_wants_a_token_refuses_a_daemon_without_the_right_one_in_one_line(
    token_cluster: tuple[RayCluster, Path], code: Path, tmp_path: Path, token: str
) -> None:
    cluster, _ = token_cluster
    env = {"RAY_AUTH_MODE": "token", "HOME": str(tmp_path)}  # no ~/.ray/auth_token there
    if token == "wrong":
        env["RAY_AUTH_TOKEN"] = "not-the-cluster-token-0123456789abcdef0123456789"
    with served(tmp_path / "home", env=env) as daemon:
        with pytest.raises(ClientError) as info:
            daemon.create(ray_config(code, cluster.address, trials=1, concurrency=1))
        assert 400 <= info.value.status < 500, info.value
        message = str(info.value)
        assert "trainingService.address" in message and "token" in message and "\n" not in message
        assert daemon.client.list_experiments() == []


def test_a_daemon_with_the_cluster_token_runs_trials_on_it(
    token_cluster: tuple[RayCluster, Path], code: Path, tmp_path: Path
) -> None:
    cluster, token = token_cluster
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "HOME": str(tmp_path)}
    with served(tmp_path / "home", env=env) as daemon:
        experiment_id = daemon.create(ray_config(code, cluster.address, trials=1, concurrency=1, seconds=0.5))
        assert daemon.wait_status(experiment_id, FINISHED, timeout=90)["status"] == "DONE"
