"""Runs the Ray tests (tests/ray_cluster and the contract suite) inside their own network namespace.

Ray binds the machine's routable address even when told 127.0.0.1, and tests here listen on
loopback only. So the Ray group runs under ``unshare``: a new network namespace with only ``lo``
up, a new PID namespace (``ray stop --force`` there sees only our cluster, and when the group
ends the kernel kills whatever it left), and a mount namespace for its own /proc.

Needs root (CI runs as root) or unprivileged user namespaces (then ``--map-root-user``), and Ray
(``pip install -e '.[dev]'`` brings it). Missing either FAILS, so CI cannot pass without running
Ray. Developers without them set ``NASCTL_SKIP_RAY=1`` to skip this test instead.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from netns import unshare_prefix

REPO = Path(__file__).resolve().parent.parent
SKIP_ENV = "NASCTL_SKIP_RAY"
INNER_TESTS = ("tests/ray_cluster", "tests/contracts/test_training_service.py")
TIMEOUT_S = 600
HOW_TO_SKIP = f"set {SKIP_ENV}=1 to skip the Ray tests on a machine without them"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(TIMEOUT_S + 60),
    pytest.mark.skipif(os.environ.get(SKIP_ENV) == "1", reason=f"{SKIP_ENV}=1"),
]


def test_ray_group_passes_inside_its_own_network_namespace() -> None:
    if importlib.util.find_spec("ray") is None:
        pytest.fail(
            f"Ray is not installed in {sys.executable}: pip install -e '.[dev]' (or '.[ray]'); {HOW_TO_SKIP}"
        )
    prefix = unshare_prefix("the Ray tests", HOW_TO_SKIP, mount_proc=True)
    # sh stays PID 1 of the namespace (no exec): it reaps the Ray daemons orphaned by `ray start`.
    inner = (
        f"ip link set lo up && {sys.executable} -m pytest -q -rs -p no:cacheprovider {' '.join(INNER_TESTS)}"
    )
    env = {**os.environ, "NASCTL_RAY_NETNS": "1", "PYTHONPATH": str(REPO)}
    began = time.monotonic()
    try:
        done = subprocess.run(
            [*prefix, "sh", "-c", inner],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as timeout:
        output = timeout.output if isinstance(timeout.output, str) else (timeout.output or b"").decode()
        print(output)
        pytest.fail(f"the Ray group ran over {TIMEOUT_S}s (its output is above)")
    took = time.monotonic() - began
    print(done.stdout)  # shown by pytest when this test fails
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "(no output)"
    assert done.returncode == 0, f"the Ray group failed in {took:.0f}s: {summary}"
    assert " passed" in summary, summary
    assert "run only inside the network namespace" not in done.stdout, (
        "tests/ray_cluster were skipped inside it"
    )
