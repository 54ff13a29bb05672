"""The Ray group (tests/ray_cluster and the training-service contract suite) in its own namespace,
started as soon as collection ends so that it runs beside the rest of the suite.

Ray binds the machine's routable address even when told 127.0.0.1, and tests here listen on
loopback only. So the group runs under ``unshare``: a new network namespace with only ``lo`` up,
a new PID namespace (``ray stop --force`` there sees only our cluster, and when the group ends
the kernel kills whatever it left), and a mount namespace for its own /proc. It spends most of
its minutes waiting on Ray, so ``conftest.py`` starts it early (:func:`start_early`) and
``tests/test_ray_netns.py`` collects its verdict; run alone, the test starts it itself.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from netns import unshare_prefix

REPO = Path(__file__).resolve().parent.parent
SKIP_ENV = "NASCTL_SKIP_RAY"
INNER_TESTS = ("tests/ray_cluster", "tests/contracts/test_training_service.py")
TIMEOUT_S = 600
HOW_TO_SKIP = f"set {SKIP_ENV}=1 to skip the Ray tests on a machine without them"
TEST_FILE = "tests/test_ray_netns.py"


class RayGroup:
    """The inner pytest run, its output kept in a temporary file until :meth:`result`."""

    def __init__(self, prefix: list[str]) -> None:
        # sh stays PID 1 of the namespace (no exec): it reaps the Ray daemons orphaned by `ray start`.
        inner = (
            f"ip link set lo up && {sys.executable} -m pytest -q -rs -p no:cacheprovider "
            f"{' '.join(INNER_TESTS)}"
        )
        env = {**os.environ, "NASCTL_RAY_NETNS": "1", "PYTHONPATH": str(REPO)}
        self.output = tempfile.TemporaryFile(mode="w+t")  # noqa: SIM115 - read by result(), later
        self.began = time.monotonic()
        self.process = subprocess.Popen(
            [*prefix, "sh", "-c", inner],
            cwd=REPO,
            env=env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def result(self) -> tuple[int | None, str, float]:
        """(exit code, or None past :data:`TIMEOUT_S`; everything it printed; seconds since its start)."""
        left = TIMEOUT_S - (time.monotonic() - self.began)
        try:
            code: int | None = self.process.wait(timeout=max(left, 1))
        except subprocess.TimeoutExpired:
            self.stop()
            code = None
        self.output.seek(0)
        return code, self.output.read(), time.monotonic() - self.began

    def stop(self) -> None:
        """Kill it (``unshare --kill-child`` takes the namespace's processes along)."""
        if self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)


_early: RayGroup | None = None


def start_early(items: list[pytest.Item]) -> None:
    """Start the group in the background when its test was collected and it can run here; a problem
    (no Ray, no namespaces) is left for the test itself to report."""
    global _early
    if os.environ.get(SKIP_ENV) == "1" or not any(item.nodeid.startswith(TEST_FILE) for item in items):
        return
    with contextlib.suppress(pytest.fail.Exception):
        if ray_installed():
            _early = RayGroup(unshare_prefix("the Ray tests", HOW_TO_SKIP, mount_proc=True))


def started() -> RayGroup:
    """The group started early, else one started now (the test run on its own)."""
    global _early
    group, _early = _early, None
    return group or RayGroup(unshare_prefix("the Ray tests", HOW_TO_SKIP, mount_proc=True))


def stop_early() -> None:
    """At the end of the session: a group whose test never ran (deselected, -x) is not left running."""
    if _early is not None:
        _early.stop()


def ray_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None
