"""SIGTERM handled like Ctrl-C while the CLI serves something in this process.

``nasctl create --foreground`` (a daemon) and ``nasctl view-nas --logdir`` (a web server) run
until interrupted; ``nasctl manager stop`` or a service manager ends them with SIGTERM, which
must stop them as cleanly as Ctrl-C does.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (e.g. ``nasctl manager stop`` aimed at this process) stops the experiment like Ctrl-C."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
