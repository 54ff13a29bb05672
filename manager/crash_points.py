"""Named places where a test can make the daemon die as ``kill -9`` would.

Exactly-once launches and metric ingestion are claims about what survives a crash at any
moment; random kills rarely hit a window a few milliseconds wide. So the daemon passes named
crash points on its critical paths, and a test sets ``NASCTL_CRASH_AT=name`` (or ``name:N``, to
die the N-th time it passes there) when it starts a daemon: at that point the daemon sends
itself SIGKILL. No cleanup runs, no buffer is flushed, trials keep running, as in a real crash.
etcd's failpoints and FoundationDB's simulated faults are the model. Without the variable
(every run but a test's), a crash point is one dictionary lookup.
See docs/architecture.md, "Crash recovery".
"""

from __future__ import annotations

import os
import signal
import threading

#: The environment variable that arms one crash point; only tests set it.
CRASH_AT_ENV = "NASCTL_CRASH_AT"

#: Every crash point, and the moment it stands for.
POINTS = {
    "launch.before_spawn": "a trial's launch intent is committed, its process not yet started",
    "launch.after_spawn": "a trial's process started, its pid not yet committed",
    "metrics.before_commit": "metrics read from a trial's channel, not yet committed",
    "trial.before_end_commit": "a trial's process ended, its status not yet committed",
    "tuner.checkpoint": "the tuner's state saved, the checkpoint not yet committed",
    "tuner.before_result": "a trial's end committed, its result not yet given to the tuner",
    "recovery.after_trial": "recovery after a crash sorted or settled a trial, not yet the rest",
}


def _armed(setting: str | None) -> tuple[str, int] | None:
    """``(point, n)`` from the variable's value; ValueError naming what is allowed."""
    if not setting:
        return None
    name, _, count = setting.partition(":")
    if name not in POINTS:
        raise ValueError(f"{CRASH_AT_ENV} must name one of {', '.join(POINTS)}, got {name!r}")
    if count and (not count.isdigit() or int(count) < 1):
        raise ValueError(f"{CRASH_AT_ENV}: the count after ':' must be a whole number >= 1, got {count!r}")
    return name, int(count or 1)


_ARMED = _armed(os.environ.get(CRASH_AT_ENV))
_passes = 0
_lock = threading.Lock()


def crash_point(name: str) -> None:
    """Die here (SIGKILL to this process) when a test armed this point; else do nothing."""
    global _passes
    assert name in POINTS, name
    if _ARMED is None or _ARMED[0] != name:
        return
    with _lock:
        _passes += 1
        if _passes >= _ARMED[1]:
            os.kill(os.getpid(), signal.SIGKILL)
