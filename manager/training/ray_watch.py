"""Whether the Ray cluster is still there: the daemon decides, not Ray's driver.

Ray's driver, once the cluster's head (its GCS) stays unreachable for
``gcs_rpc_server_reconnect_timeout_s`` (60 s by default), ends the whole process it lives in:
here that is the daemon, with every experiment in it, local ones too. Until then every call to
an actor simply hangs, so a trial's end would never come. So the Ray service connects with that
timeout pushed out of reach (:data:`DRIVER_PATIENCE_ENV`), and a :class:`ClusterWatch` probes the
head's port itself: unreachable for :data:`GONE_SECONDS`, the cluster is gone, its trials end as
lost with a reason that says so, and no new trial is sent there.
See docs/architecture.md, "Training services".
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

#: Ray reads this when the driver connects; a year: the driver never gives up on its own.
DRIVER_PATIENCE_ENV = "RAY_gcs_rpc_server_reconnect_timeout_s"
DRIVER_PATIENCE_SECONDS = 365 * 24 * 3600
#: The head's port has not accepted a connection for this long: the cluster is gone.
GONE_SECONDS = 10.0
PROBE_SECONDS = 1.0


def host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` or ``ray://host:port``; None for anything else."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def reachable(address: str, timeout: float) -> bool:
    """True when something accepts a TCP connection at ``host:port``."""
    target = host_port(address)
    if target is None:
        return False
    try:
        socket.create_connection(target, timeout=timeout).close()
    except OSError:
        return False
    return True


class ClusterWatch:
    """Probes the head at ``gcs_address`` while trials run; :attr:`gone` says why it gave up."""

    def __init__(self, gcs_address: str, shown_address: str, gone_seconds: float = GONE_SECONDS) -> None:
        self.gcs_address = gcs_address
        self.shown_address = shown_address
        self.gone_seconds = gone_seconds
        self.gone: str | None = None
        self._event: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin probing (idempotent; from the event loop)."""
        if self._task is None and self.gone is None:
            self._event = asyncio.Event()
            self._task = asyncio.create_task(self._probe(), name="ray-cluster-watch")

    async def wait_gone(self) -> str:
        """Resolve (with the reason) once the cluster is gone."""
        self.start()
        assert self._event is not None
        await self._event.wait()
        assert self.gone is not None
        return self.gone

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        silent_since: float | None = None
        while True:
            if await asyncio.to_thread(reachable, self.gcs_address, PROBE_SECONDS):
                silent_since = None
            else:
                silent_since = silent_since if silent_since is not None else loop.time()
                if loop.time() - silent_since >= self.gone_seconds:
                    self.gone = (
                        f"the Ray cluster at {self.shown_address} is gone: its head has not "
                        f"answered for {self.gone_seconds:g} s"
                    )
                    assert self._event is not None
                    self._event.set()
                    return
            await asyncio.sleep(PROBE_SECONDS)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
