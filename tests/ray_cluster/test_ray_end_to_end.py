"""Experiments on ``platform: ray`` through the real daemon and CLI, on the session's 3-node cluster:
trials land where their resource requests say, see the GPUs Ray gave them, and every metric and
output line reaches the daemon's trial folders."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from reliability.helpers import nasctl

from ray_cluster.ray_daemon import Served, field, node_of, ray_config, served, write_probe


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("e2e") / "home") as running:
        yield running


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_probe(tmp_path_factory.mktemp("e2e-code"))


def check_complete(daemon: Served, experiment_id: str, trials: int, reports: int) -> list[dict[str, Any]]:
    """DONE, every trial SUCCEEDED once, each result stored once, stdout and stderr in the daemon."""
    experiment = daemon.wait_status(experiment_id)
    assert experiment["status"] == "DONE", experiment
    records = daemon.trials(experiment_id)
    assert len(records) == trials
    assert [t["status"] for t in records] == ["SUCCEEDED"] * trials, [
        (t["status"], t.get("reason")) for t in records
    ]
    metrics = daemon.metrics(experiment_id)
    for trial in records:
        mine = [m for m in metrics if m["trialId"] == trial["id"]]
        assert Counter(m["sequence"] for m in mine if m["type"] == "PERIODICAL") == Counter(range(reports))
        assert [m["value"] for m in mine if m["type"] == "FINAL"] == [1.0]
        stdout = daemon.log(experiment_id, trial["id"])
        assert stdout.count("RUN ") == 1, stdout
        assert daemon.log(experiment_id, trial["id"], "stderr").strip() == f"stderr of {trial['id']}"
        folder = Path(trial["trialDir"])
        assert (folder / "stdout").read_text() == stdout  # the copy on the daemon's machine
        assert len((folder / "metrics.jsonl").read_text().splitlines()) == reports + 1
    return records


def test_gpu_trials_run_on_the_gpu_node_each_with_its_own_gpu(
    ray_cluster: Any, daemon: Served, code: Path
) -> None:
    config = ray_config(code, ray_cluster.address, trials=2, concurrency=2, seconds=3, trialGpuNumber=1)
    config["trialCpuNumber"] = 0.5  # the gpu node has 1 CPU: two trials fit side by side
    experiment_id = daemon.create(config)
    assert len(daemon.running(experiment_id, count=2)) == 2  # at once
    records = check_complete(daemon, experiment_id, trials=2, reports=2)
    logs = [daemon.log(experiment_id, t["id"]) for t in records]
    assert {node_of(ray_cluster, log) for log in logs} == {"gpu"}
    assert sorted(field(log, "CUDA_VISIBLE_DEVICES") for log in logs) == ["0", "1"]


def test_pinned_trials_run_on_their_node_and_cpu_trials_see_no_gpu(
    ray_cluster: Any, daemon: Served, code: Path, tmp_path: Path
) -> None:
    pinned = ray_config(
        code, ray_cluster.address, trials=2, concurrency=1, service={"resources": {"node_a": 1}}
    )
    config_file = tmp_path / "pinned.yaml"
    config_file.write_text(yaml.safe_dump(pinned))
    created = nasctl(daemon.home, "create", "--config", str(config_file), "--json")
    assert created.returncode == 0, created.stderr
    pinned_id = json.loads(created.stdout)["id"]
    cpu_id = daemon.create(ray_config(code, ray_cluster.address, trials=3, concurrency=2, seconds=0.5))

    for trial in check_complete(daemon, pinned_id, trials=2, reports=2):
        assert node_of(ray_cluster, daemon.log(pinned_id, trial["id"])) == "node_a"
    for trial in check_complete(daemon, cpu_id, trials=3, reports=2):
        assert field(daemon.log(cpu_id, trial["id"]), "CUDA_VISIBLE_DEVICES") == ""

    listed = nasctl(daemon.home, "trial", "ls", pinned_id, "--json")
    assert listed.returncode == 0, listed.stderr
    trials = json.loads(listed.stdout)
    items = trials["items"] if isinstance(trials, dict) else trials
    assert [t["status"] for t in items] == ["SUCCEEDED", "SUCCEEDED"]
    shown = nasctl(daemon.home, "log", "stdout", items[0]["id"], "--experiment", pinned_id)
    assert shown.returncode == 0, shown.stderr
    assert field(shown.stdout, "NODE_DIR") == str(ray_cluster.nodes["node_a"].temp_dir)


def test_a_trial_without_room_on_the_cluster_says_why_it_waits(
    ray_cluster: Any, daemon: Served, code: Path
) -> None:
    # one node has 2 GPUs: the second trial that asks for both waits for the first
    config = ray_config(code, ray_cluster.address, trials=2, concurrency=2, seconds=4, trialGpuNumber=2)
    config["trialCpuNumber"] = 0.5
    experiment_id = daemon.create(config)

    def waiting_reason() -> str | None:
        waiting = [t for t in daemon.trials(experiment_id) if t["status"] == "WAITING"]
        return waiting[0].get("waitingReason") if waiting else None

    reason = daemon.wait("a waiting trial with a reason", waiting_reason, timeout=30)
    assert "GPU 2" in reason and "free" in reason, reason
    status = nasctl(daemon.home, "status", experiment_id)
    assert status.returncode == 0 and "GPU 2" in status.stdout, status.stdout
    check_complete(daemon, experiment_id, trials=2, reports=2)
