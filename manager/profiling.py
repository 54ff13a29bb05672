"""An opt-in profiler for the daemon's threads: ``NASCTL_PROFILE=DIR`` writes cProfile stats there.

The daemon's hot path runs on two threads (the event loop, the store's writer); cProfile sees
only the thread that enables it, so each thread gets its own profile, written as
``DIR/<name>-<pid>.prof`` when that thread's work ends (read them with ``python -m pstats``).
``NASCTL_PROFILE_CLOCK=cpu`` counts CPU time instead of wall time (the daemon's CPU is what
competes with the trials on a small machine). Without ``NASCTL_PROFILE`` this costs one
environment lookup per thread.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

PROFILE_ENV = "NASCTL_PROFILE"
#: ``wall`` (the default: where a thread waits, too) or ``cpu`` (only what it computes).
CLOCK_ENV = "NASCTL_PROFILE_CLOCK"


def profile_dir() -> Path | None:
    """The folder named by ``NASCTL_PROFILE``, or None when profiling is off."""
    value = os.environ.get(PROFILE_ENV)
    return Path(value) if value else None


def start(name: str) -> object | None:
    """Profile the calling thread from now on; hand the result to :func:`stop`."""
    folder = profile_dir()
    if folder is None:
        return None
    import cProfile
    import time

    clock = os.environ.get(CLOCK_ENV, "wall")
    if clock not in ("wall", "cpu"):
        raise ValueError(f"{CLOCK_ENV} must be wall or cpu, got {clock!r}")
    profile = cProfile.Profile(time.thread_time) if clock == "cpu" else cProfile.Profile()
    profile.enable()
    return (profile, folder / f"{name}-{os.getpid()}.prof")


def stop(handle: object | None) -> None:
    """Stop the profile :func:`start` began on this thread and write it."""
    if handle is None:
        return
    profile, path = handle  # type: ignore[misc]
    profile.disable()
    path.parent.mkdir(parents=True, exist_ok=True)
    profile.dump_stats(str(path))


@contextlib.contextmanager
def profiled(name: str) -> Iterator[None]:
    """Profile the calling thread for the block (when ``NASCTL_PROFILE`` is set)."""
    handle = start(name)
    try:
        yield
    finally:
        stop(handle)
