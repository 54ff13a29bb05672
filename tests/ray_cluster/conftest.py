"""Fixtures of the Ray tests: one real multi-node cluster for the whole session.

These tests run only inside the network namespace that ``tests/test_ray_netns.py`` creates
(``NASCTL_RAY_NETNS=1``): outside it Ray would bind the machine's routable address, and this
project's tests listen on loopback only. Elsewhere every test file here is reported as skipped
without being imported (so a plain ``pytest`` never starts Ray, and never imports it).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ray_cluster.cluster import AUTH_ENV, NETNS_ENV, RayCluster, in_private_namespaces

#: The contract suite's Ray harness (tests/contracts/test_training_service.py) reads this.
ADDRESS_ENV = "NASCTL_RAY_ADDRESS"
OUTSIDE_REASON = f"Ray tests run only inside the network namespace of tests/test_ray_netns.py ({NETNS_ENV}=1)"


class _OutsideNamespace(pytest.File):
    """Stands for a test file of this folder outside the namespace: reports it skipped, unimported."""

    def collect(self) -> Iterator[pytest.Item]:
        pytest.skip(OUTSIDE_REASON)


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if in_private_namespaces():
        return None
    return _OutsideNamespace.from_parent(parent, path=module_path)


def pytest_configure(config: pytest.Config) -> None:
    if in_private_namespaces() and not config.pluginmanager.has_plugin(_ClusterPlugin.name):
        config.pluginmanager.register(_ClusterPlugin(), _ClusterPlugin.name)


def _disconnect_this_process() -> None:
    """``ray.shutdown()`` when a test connected this process to the cluster (``connect``): Ray's
    driver, once its GCS is gone, turns the interpreter's exit status into 1 at exit."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


class _ClusterPlugin:
    """Holds the session's cluster fixture as a plugin, not a conftest fixture, so that it is
    global: the contract suite in tests/contracts runs in the same session and needs the cluster
    (through ``NASCTL_RAY_ADDRESS``) even though it lives outside this folder."""

    name = "nasctl-ray-cluster"

    @pytest.fixture(scope="session", autouse=True)
    @classmethod
    def ray_cluster(cls) -> Iterator[RayCluster]:
        """A started cluster (head, ``node_a``, ``gpu``); its address in ``NASCTL_RAY_ADDRESS``,
        and ``RAY_AUTH_MODE=disabled`` (see ``cluster.AUTH_ENV``) in ``os.environ``.

        Autouse: it is started before the first test of the session (the namespaced session runs
        only Ray tests), and stopped at the end, also when a test or the start itself failed.
        """
        began = time.monotonic()
        cluster = RayCluster()
        previous = {name: os.environ.get(name) for name in (ADDRESS_ENV, *AUTH_ENV)}
        try:
            cluster.start()
            print(f"\nRay cluster at {cluster.address}: ready in {time.monotonic() - began:.1f}s")
            # Drivers of this session (daemon, CLI) use the cluster's auth mode, whatever ~/.ray holds.
            os.environ.update({ADDRESS_ENV: cluster.address, **AUTH_ENV})
            yield cluster
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            _disconnect_this_process()  # a driver left connected to a stopped cluster exits 1
            cluster.stop(sweep=True)  # session end: ray stop --force too, safe in the PID namespace
