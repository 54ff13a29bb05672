"""The ``manager`` commands: start, stop and inspect the daemon of ``--home``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from nasctl.app import EXIT_FAILURE, App, CliError, echo_json, json_option, notice, pass_app

if TYPE_CHECKING:
    from nasctl.client import DaemonInfo


@click.group()
def manager() -> None:
    """Start, stop or inspect the daemon of --home."""


@manager.command(name="start")
@click.option("--host", help="Address to bind (default 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 picks a free port."
)
@click.option("--db-url", help="SQLAlchemy URL of the database (default: SQLite in the home).")
@click.option("--allow-remote", is_flag=True, help="Allow binding an address other than loopback.")
@json_option
@pass_app
def manager_start(
    app: App, host: str | None, port: int, db_url: str | None, allow_remote: bool, as_json: bool
) -> None:
    """Start the daemon in the background.

    Nothing happens when it already runs. Other commands start it on demand too.
    """
    from nasctl.launcher import LauncherError, find_daemon, start_daemon

    try:
        info = find_daemon(app.home, notify=notice)
        already = info is not None
        if info is None:
            info = start_daemon(app.home, host=host, port=port, db_url=db_url, allow_remote=allow_remote)
    except LauncherError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    if not already and host and allow_remote:
        from manager.daemon import REMOTE_WARNING, is_loopback

        if not is_loopback(host):
            notice(f"warning: {REMOTE_WARNING % host}")
    if as_json:
        echo_json({**_info_json(info), "alreadyRunning": already})
        return
    verb = "already runs" if already else "started"
    click.echo(f"daemon {verb}: pid {info.pid} at {info.url} (home {app.home})")
    click.echo(f"dashboard: {info.dashboard_url}")


@manager.command(name="stop")
@click.option("--force", is_flag=True, help="SIGKILL the daemon and its trials instead of a clean stop.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=300,
    show_default=True,
    help="Seconds to wait for the daemon to exit.",
)
@pass_app
def manager_stop(app: App, force: bool, timeout: float) -> None:
    """Stop the daemon and wait until it exits.

    The daemon stops its experiments first; `nasctl resume ID` continues them later.
    """
    from nasctl.launcher import LauncherError, stop_daemon

    try:
        info = stop_daemon(app.home, force=force, timeout=timeout, notify=notice)
    except LauncherError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    if info is None:
        click.echo(f"no daemon runs for {app.home}")
    else:
        click.echo(f"daemon pid {info.pid} {'killed' if force else 'stopped'}")


@manager.command(name="status")
@json_option
@pass_app
def manager_status(app: App, as_json: bool) -> None:
    """Say whether the daemon runs, and where."""
    from nasctl.launcher import DaemonState, probe

    found = probe(app.home)
    if as_json:
        echo_json(
            {
                "home": str(app.home),
                "state": found.state.value,
                "running": found.state is DaemonState.RUNNING,
                "detail": found.detail or None,
                **(_info_json(found.info) if found.info else {}),
            }
        )
        return
    info = found.info
    if found.state is DaemonState.RUNNING and info is not None:
        click.echo(f"running: pid {info.pid} at {info.url}, version {info.version} (home {app.home})")
        click.echo(f"dashboard: {info.dashboard_url}")
    elif found.state is DaemonState.NOT_RUNNING:
        click.echo(f"not running (home {app.home})")
    elif found.state is DaemonState.STALE:
        click.echo(f"not running: stale manager.json ({found.detail}); the next command removes it")
    else:
        click.echo(f"not answering: pid {info.pid if info else '?'}: {found.detail}")


def _info_json(info: DaemonInfo) -> dict[str, Any]:
    return {
        "pid": info.pid,
        "host": info.host,
        "port": info.port,
        "url": info.url,
        "dashboardUrl": info.dashboard_url,
        "startedAt": info.started_at,
        "version": info.version,
    }
