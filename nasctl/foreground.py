"""``nasctl create --foreground``: run the experiment from this process, with a live progress display.

With no daemon for the home, the daemon runs inside this process (a thread) for the experiment's
lifetime; this is the one place the CLI imports the daemon itself. With one running, the
experiment is submitted to it and followed the same way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasctl.app import EXIT_FAILURE, CliError, notice
from nasctl.best import ForegroundResult, report_best
from nasctl.interrupts import sigterm_as_interrupt
from trials.status import FINISHED_EXPERIMENT_STATUSES, TrialStatus

if TYPE_CHECKING:
    from nasctl.client import Client

POLL_SECONDS = 1.0


def run_foreground(
    home: Path,
    config: Mapping[str, Any],
    base_dir: Path,
    *,
    as_json: bool = False,
    poll: float = POLL_SECONDS,
    after: Callable[[Client, ForegroundResult], None] | None = None,
) -> ForegroundResult:
    """Create the experiment and follow it in this process until it ends or Ctrl-C stops it.

    With no daemon for ``home``, one runs inside this process for the experiment's lifetime;
    with one, the experiment is submitted to it and followed the same way. ``after`` is called
    with the result while the daemon still answers (e.g. to export the trials).
    """
    from nasctl.client import Client
    from nasctl.launcher import LauncherError, find_daemon
    from nasctl.output import ProgressDisplay

    try:
        info = find_daemon(home, notify=notice)
    except LauncherError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    daemon = None
    if info is None:
        daemon, client, dashboard = _start_in_process(home)
    else:
        notice(f"submitting to the running daemon (pid {info.pid}) at {info.url}")
        client, dashboard = Client.from_info(info), info.dashboard_url
    try:
        with sigterm_as_interrupt():
            created = client.create_experiment(config, base_dir)
            notice(
                f"experiment {created['id']} ({created.get('name') or '-'}) created; dashboard: {dashboard}"
            )
            notice("Ctrl-C stops the experiment")
            experiment, interrupted = follow(client, created["id"], ProgressDisplay(sys.stderr), poll)
            result = report_best(client, experiment, base_dir, interrupted, as_json)
            if after is not None:
                after(client, result)
    finally:
        client.close()
        if daemon is not None:
            daemon.shutdown()
    return result


def _start_in_process(home: Path) -> tuple[Any, Client, str]:
    from manager.daemon import Daemon, DaemonError
    from nasctl.client import Client

    daemon = Daemon(home, host="127.0.0.1", port=0, db_url=None)
    try:
        port, token = daemon.start_in_thread()
    except DaemonError as exc:  # the daemon's own one line: lock, database, home not writable
        raise CliError(str(exc), EXIT_FAILURE) from None
    url = f"http://127.0.0.1:{port}"
    return daemon, Client(url, token), f"{url}/?token={token}"


def follow(
    client: Client, exp_id: str, display: Any, poll: float = POLL_SECONDS
) -> tuple[dict[str, Any], bool]:
    """Redraw the progress until the experiment finishes; Ctrl-C stops it (waiting for its trials)."""
    from nasctl.output import last_line

    experiment = client.get_experiment(exp_id)
    failed_seen: set[str] = set()
    try:
        while True:
            experiment = client.get_experiment(exp_id)
            counts = experiment.get("trialCounts") or {}
            if counts.get(TrialStatus.FAILED.value, 0) > len(failed_seen):
                for trial in client.iter_trials(exp_id, status=TrialStatus.FAILED.value):
                    if trial["id"] not in failed_seen:
                        failed_seen.add(trial["id"])
                        display.message(
                            f"trial {trial['id']} FAILED: {trial.get('reason') or 'no reason given'} "
                            f"(nasctl log stderr {trial['id']})"
                        )
            best = client.best(exp_id, display.top) if experiment.get("bestTrialId") else []
            display.update(experiment, best)
            if experiment["status"] in FINISHED_EXPERIMENT_STATUSES:
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        display.close()
        notice(f"stopping experiment {exp_id}: cancelling its trials and waiting for them...")
        experiment = client.stop(exp_id)
        notice(f"experiment {exp_id}: {experiment['status']}")
        return experiment, True
    display.close()
    if experiment.get("error"):
        notice(f"experiment error: {last_line(str(experiment['error']))}")
    return experiment, False
