"""Test helper: stop the detached daemon a test started in its home, whatever state it is in."""

from __future__ import annotations

from pathlib import Path

from nasctl.launcher import LauncherError, stop_daemon


def shut_down(home: Path, timeout: float = 60) -> None:
    """A clean stop; a daemon that will not stop in ``timeout`` seconds is killed with its trials."""
    try:
        stop_daemon(home, timeout=timeout)
    except LauncherError:
        stop_daemon(home, force=True, timeout=10)
