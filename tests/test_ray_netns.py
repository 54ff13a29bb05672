"""Runs the Ray tests (tests/ray_cluster and the contract suite) inside their own network namespace.

How and why the group runs there is ``tests/ray_group.py``; it starts right after collection and
runs beside the rest of the suite, and this test collects its verdict.

Needs root (CI runs as root) or unprivileged user namespaces (then ``--map-root-user``), and Ray
(``pip install -e '.[dev]'`` brings it). Missing either FAILS, so CI cannot pass without running
Ray. Developers without them set ``NASCTL_SKIP_RAY=1`` to skip this test instead.
"""

from __future__ import annotations

import os
import sys

import pytest
import ray_group

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(ray_group.TIMEOUT_S + 60),
    pytest.mark.skipif(os.environ.get(ray_group.SKIP_ENV) == "1", reason=f"{ray_group.SKIP_ENV}=1"),
]


def test_ray_group_passes_inside_its_own_network_namespace() -> None:
    if not ray_group.ray_installed():
        pytest.fail(
            f"Ray is not installed in {sys.executable}: pip install -e '.[dev]' (or '.[ray]'); "
            f"{ray_group.HOW_TO_SKIP}"
        )
    code, output, took = ray_group.started().result()
    print(output)  # shown by pytest when this test fails
    if code is None:
        pytest.fail(f"the Ray group ran over {ray_group.TIMEOUT_S}s (its output is above)")
    summary = output.strip().splitlines()[-1] if output.strip() else "(no output)"
    assert code == 0, f"the Ray group failed in {took:.0f}s: {summary}"
    assert " passed" in summary, summary
    assert "run only inside the network namespace" not in output, "tests/ray_cluster were skipped inside it"
