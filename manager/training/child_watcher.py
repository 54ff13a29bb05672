"""Learning that a trial's process ended without a thread per process (Python 3.10 and 3.11).

Before 3.12, asyncio's default child watcher starts one thread per subprocess that blocks in
``waitpid``: a thread start per trial on the loop's thread (about 2 ms on a loaded two-core
machine) and a thread that competes with the trials. Linux (5.3+) gives a pidfd that turns
readable when the process ends, which the loop polls like any socket; 3.12 made that the
default. :func:`use_pidfd_child_watcher` installs the same for older Pythons, once per process.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

_installed = False
_install_lock = threading.Lock()


def pidfd_works() -> bool:
    """True when this system can open a pidfd (Linux 5.3 and later)."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


#: asyncio's watcher base class; gone in 3.14, where this module has nothing to install.
_WatcherBase: Any = getattr(asyncio, "AbstractChildWatcher", object)


class LoopPidfdChildWatcher(_WatcherBase):
    """3.12's pidfd watcher: each child is watched on the loop that started it, so every loop
    of the process (the daemon's, a test's) may share it; no thread, no signal handler."""

    def __init__(self) -> None:
        self._children: dict[int, tuple[asyncio.AbstractEventLoop, int]] = {}

    def __enter__(self) -> LoopPidfdChildWatcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def is_active(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        pass  # each child is watched on the running loop of the caller that started it

    def add_child_handler(self, pid: int, callback: Callable[..., Any], *args: Any) -> None:
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(pid)
        self._children[pid] = (loop, pidfd)
        loop.add_reader(pidfd, self._reap, pid, callback, args)

    def remove_child_handler(self, pid: int) -> bool:
        found = self._children.pop(pid, None)
        if found is None:
            return False
        loop, pidfd = found
        loop.remove_reader(pidfd)
        os.close(pidfd)
        return True

    def _reap(self, pid: int, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        found = self._children.pop(pid, None)
        if found is None:
            return
        loop, pidfd = found
        loop.remove_reader(pidfd)
        os.close(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # reaped elsewhere: asyncio's own watchers answer 255 then
            returncode = 255
        else:
            returncode = os.waitstatus_to_exitcode(status)
        callback(pid, returncode, *args)


def use_pidfd_child_watcher() -> bool:
    """Make asyncio learn of child exits through pidfds; True when that is how it works now.

    A no-op on 3.12+ (already the default where pidfds work) and where pidfds do not work.
    """
    global _installed
    if sys.version_info >= (3, 12):
        return pidfd_works()
    with _install_lock:
        if not _installed and pidfd_works():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                asyncio.set_child_watcher(LoopPidfdChildWatcher())
            _installed = True
        return _installed
