"""Connecting the daemon to a Ray cluster, once per process, and checking a trial fits on it.

``ray.init`` is per process, so one daemon serves one cluster; a config naming another is refused
in one line. Every way a connection fails (nothing listens, the cluster does not let the daemon
in, a token missing or wrong) is one line naming ``trainingService.address``, and a request no
live node can hold one naming the resource keys. ``import ray`` happens only here and in
:mod:`manager.training.ray`. See docs/architecture.md, "Training services".
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from manager.training import ray_runner
from manager.training.ray_watch import DRIVER_PATIENCE_ENV, DRIVER_PATIENCE_SECONDS, host_port
from trials.messages import one_line

if TYPE_CHECKING:
    from manager.config import TrainingServiceConfig

NAMESPACE = "nasctl"
MISSING_RAY = "trainingService.platform: ray needs Ray: pip install 'nasctl[ray]'"
#: How long connecting to a cluster may take.
CONNECT_SECONDS = 15.0

_connection_lock = threading.Lock()
_connected_address: str | None = None
_gcs_address: str | None = None  # the head's host:port, whatever address the config gave


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ValueError(MISSING_RAY) from None
    return ray


def connect(address: str, timeout: float = CONNECT_SECONDS) -> Any:
    """Connect this process to the cluster at ``address`` once; ValueError naming the field when
    it cannot be reached in ``timeout`` s or another cluster is already connected. Blocking."""
    global _connected_address, _gcs_address
    ray = import_ray()
    with _connection_lock:
        if ray.is_initialized():
            if _connected_address != address:
                raise ValueError(
                    f"trainingService.address: this daemon is connected to the Ray cluster at "
                    f"{_connected_address}; one daemon serves one Ray cluster, got {address!r}"
                )
            return ray
        _probe(address, timeout)
        _register_runner_by_value()
        # Ray's driver would end the whole daemon once the head is away for 60 s: ClusterWatch decides
        os.environ[DRIVER_PATIENCE_ENV] = str(DRIVER_PATIENCE_SECONDS)
        failure: list[BaseException] = []

        def init() -> None:
            try:
                ray.init(
                    address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING
                )
            except BaseException as exc:  # handed to the caller's thread
                failure.append(exc)

        worker = threading.Thread(target=init, name="ray-init", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise ValueError(  # its port answers (_probe): it did not let the daemon in
                f"trainingService.address: the Ray cluster at {address!r} did not let the daemon "
                f"connect in {timeout:g} s; with token authentication, the daemon's token is wrong "
                "or its RAY_AUTH_MODE is not the cluster's"
            )
        if failure:
            raise ValueError(_connect_failure(address, failure[0]))
        _connected_address = address
        _gcs_address = ray.get_runtime_context().gcs_address
        return ray


def connected_gcs_address() -> str | None:
    """The head's ``host:port`` this process is connected to, whatever address the config gave."""
    return _gcs_address


def _probe(address: str, timeout: float) -> None:
    """Fail fast on a ``host:port`` (or ``ray://host:port``) where nothing listens."""
    if address == "auto":
        return
    target = host_port(address)
    if target is None:
        raise ValueError(
            f"trainingService.address: must be auto, host:port or ray://host:port, got {address!r}"
        )
    try:
        socket.create_connection(target, timeout=min(timeout, 5.0)).close()
    except OSError as exc:
        raise ValueError(
            f"trainingService.address: cannot reach the Ray cluster at {address!r}: {exc.strerror or exc}"
        ) from None


def _connect_failure(address: str, exc: BaseException) -> str:
    """One line for a cluster that answers but refuses the daemon (Ray 2.60: a missing token is an
    AuthenticationError; a wrong one, or token mode on one side only, a plain ConnectionError)."""
    text = one_line(exc)
    if type(exc).__name__ == "AuthenticationError":
        return (
            f"trainingService.address: the Ray cluster at {address!r} asks for a token and the daemon "
            "has none: start the daemon with RAY_AUTH_MODE=token and the cluster's token in "
            "RAY_AUTH_TOKEN_PATH, RAY_AUTH_TOKEN or ~/.ray/auth_token"
        )
    return (
        f"trainingService.address: the Ray cluster at {address!r} refused the daemon ({text}); "
        "if the cluster uses token authentication, the daemon's token is wrong or its RAY_AUTH_MODE "
        "is not the cluster's"
    )


def _register_runner_by_value() -> None:
    """Ship ray_runner's code with the actor class, so the nodes need no nasctl installed."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(ray_runner)


def trial_resources(config: TrainingServiceConfig) -> dict[str, float]:
    """What one trial asks of a node, in Ray's names (CPU, GPU, custom resources)."""
    need: dict[str, float] = {"CPU": float(config.trial_cpu_number)}
    if config.trial_gpu_number:
        need["GPU"] = float(config.trial_gpu_number)
    need.update({name: float(amount) for name, amount in config.resources.items()})
    return need


def check_resources(ray: Any, need: Mapping[str, float], address: str) -> None:
    """ValueError unless some live node of the cluster can hold one trial."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    for node in nodes:
        offered = node.get("Resources", {})
        if all(offered.get(name, 0.0) >= amount for name, amount in need.items()):
            return
    asked = ", ".join(f"{name} {amount:g}" for name, amount in need.items())
    offers = "; ".join(
        f"{n.get('NodeManagerAddress')}: "
        + ", ".join(
            f"{k} {v:g}"
            for k, v in sorted(n.get("Resources", {}).items())
            if "node:" not in k and "memory" not in k
        )
        for n in nodes
    )
    raise ValueError(
        f"trialCpuNumber/trialGpuNumber/trainingService.resources: no node of the Ray cluster at "
        f"{address} has {asked} for one trial (nodes: {offers or 'none'})"
    )
