"""CDARTS with ``distributed=True``: two CPU processes over gloo, and what it refuses.

The two processes run under ``torchrun`` inside a network namespace of their own with only
``lo`` up (as ``test_ray_netns.py`` does for Ray): torch's rendezvous and gloo may bind the
machine's other addresses, and tests here listen on loopback only. Needs root or unprivileged
user namespaces (then ``--map-root-user``); where neither is available the test fails, unless
``NASCTL_SKIP_NETNS=1`` skips it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from netns import unshare_prefix

from trials.nas.oneshot.cdarts import CdartsTrainer
from trials.nas.oneshot.distributed import join
from trials.nas.zoo import DartsNetwork

REPO = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "cdarts_ddp_worker.py"
TIMEOUT_S = 120
SKIP_ENV = "NASCTL_SKIP_NETNS"
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def in_network_namespace(command: str) -> list[str]:
    """``command`` in a fresh network (and PID) namespace with loopback up."""
    prefix = unshare_prefix("the distributed CDARTS test", f"set {SKIP_ENV}=1 to skip it")
    return [*prefix, "sh", "-c", f"ip link set lo up && {command}"]


def small_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,)))]


def trainer(**kwargs: object) -> CdartsTrainer:
    return CdartsTrainer(
        DartsNetwork(1, 4, 10, n_layers=3, n_nodes=2),
        DartsNetwork(1, 4, 10, n_layers=5, n_nodes=2, affine=True),
        train_data=small_batches(),
        valid_data=small_batches(),
        num_epochs=1,
        distributed=True,
        progress=False,
        **kwargs,
    )


@pytest.mark.skipif(os.environ.get(SKIP_ENV) == "1", reason=f"{SKIP_ENV}=1")
def test_two_cpu_processes_end_with_the_same_architecture_and_one_search_log(tmp_path: Path) -> None:
    command = (
        f"exec {sys.executable} -m torch.distributed.run --standalone --nproc_per_node 2 {WORKER} {tmp_path}"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for name in TORCHRUN_VARIABLES:
        env.pop(name, None)
    began = time.monotonic()
    done = subprocess.run(
        in_network_namespace(command),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, (
        f"torchrun failed after {time.monotonic() - began:.0f}s:\n{done.stdout[-4000:]}"
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]

    assert [r["backend"] for r in ranks] == ["gloo", "gloo"]
    assert all(torch.equal(a, b) for a, b in zip(ranks[0]["start"], ranks[1]["start"], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(ranks[0]["alphas"], ranks[1]["alphas"], strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(ranks[0]["alphas"], ranks[0]["start"], strict=True))
    for network in ("model", "eval_model"):
        first, second = ranks[0][network], ranks[1][network]
        assert all(
            torch.equal(value, second[key]) for key, value in first.items()
        )  # BatchNorm statistics too
    assert ranks[0]["architecture"] == ranks[1]["architecture"]

    assert [r["writes_log"] for r in ranks] == [True, False]
    log = tmp_path / "log"
    assert json.loads((log / "architecture.json").read_text()) == ranks[0]["architecture"]
    epochs = [json.loads(line)["epoch"] for line in (log / "architectures.jsonl").read_text().splitlines()]
    assert epochs == [0, 1]  # one writer: no line twice
    metrics = [json.loads(line) for line in (log / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in metrics if "val_eval_acc" in line["metrics"]] == [0, 1]
    assert (log / "checkpoint.pt").exists()


def test_distributed_without_torchrun_says_how_to_start_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(
        ValueError, match=r"RANK, WORLD_SIZE, LOCAL_RANK not set.*torchrun --nproc_per_node=N"
    ):
        trainer()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where CUDA is absent")
def test_distributed_on_cuda_where_there_is_none_gives_the_device_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=r"device 'cuda' asked for, but CUDA is not available here"):
        trainer(device="cuda")
    assert not torch.distributed.is_initialized()


def test_more_processes_than_gpus_on_a_machine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match=r"4 processes on this machine but 2 GPU\(s\).*--nproc_per_node=2"):
        join("CdartsTrainer", torch.device("cuda"))
    assert not torch.distributed.is_initialized()
