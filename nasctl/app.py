"""What every ``nasctl`` command shares: the per-invocation :class:`App`, the error a person sees,
the exit codes, the ``--json`` output, and finding the experiment or trial a command names.

Nothing heavy is imported at module top (no client, manager, fastapi or torch): ``nasctl --help``
must answer at once, so each function imports what it needs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from trials.status import ACTIVE_EXPERIMENT_STATUSES

if TYPE_CHECKING:
    from nasctl.client import Client, DaemonInfo

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


class CliError(Exception):
    """A failure to show as ``error: <message>``; ``exit_code`` 2 for bad input, 1 for the system."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass
class App:
    """Per-invocation state: the home, and the client once a command needs the daemon."""

    home_option: Path | None = None
    _client: Client | None = field(default=None, repr=False)
    _info: DaemonInfo | None = field(default=None, repr=False)

    @property
    def home(self) -> Path:
        if self.home_option is not None:
            return self.home_option.expanduser().resolve()
        from nasctl.client import default_home

        return default_home().resolve()

    def client(self) -> Client:
        """A client of the daemon of this home, which is started if none runs."""
        if self._client is None:
            from nasctl.client import Client
            from nasctl.launcher import LauncherError, ensure_daemon

            try:
                self._info = ensure_daemon(self.home, notify=notice)
            except LauncherError as exc:
                raise CliError(str(exc), EXIT_FAILURE) from None
            self._client = Client.from_info(self._info)
        return self._client

    @property
    def dashboard_url(self) -> str | None:
        return self._info.dashboard_url if self._info else None


pass_app = click.make_pass_decorator(App, ensure=True)


def notice(message: str) -> None:
    """A side remark for the person (stderr), never mixed into the stdout a script reads."""
    click.echo(message, err=True)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print a JSON document for scripts.")(func)


def resolve_experiment(client: Client, given: str | None, *, latest: bool = False) -> dict[str, Any]:
    """The experiment ``given`` (an id or a unique prefix), or the only running one when None.

    With ``latest`` (commands that only read), no ID and none running means the most recent
    experiment, named in a notice: the experiment a person just watched end is the one they ask about.
    """
    from nasctl.client import ApiError

    if given:
        try:
            return client.get_experiment(given)
        except ApiError as exc:
            if exc.status != 404:
                raise
            matches = [e for e in client.list_experiments() if e["id"].startswith(given)]
            if len(matches) == 1:
                return matches[0]
            if matches:
                ids = ", ".join(e["id"] for e in matches)
                raise CliError(f"experiment id '{given}' is ambiguous: it starts {ids}") from None
            raise CliError(f"no experiment '{given}' ('nasctl list --all' shows them all)") from None
    experiments = client.list_experiments()
    running = [e for e in experiments if e["status"] in ACTIVE_EXPERIMENT_STATUSES]
    if len(running) == 1:
        return running[0]
    if not running and latest and experiments:
        recent = experiments[0]
        notice(f"no experiment is running; the most recent is {recent['id']} ({_label(recent)})")
        return recent
    if not running:
        if latest:
            raise CliError("there is no experiment yet; 'nasctl create --config FILE' starts one")
        raise CliError("no experiment is running; give an experiment ID ('nasctl list --all' shows them all)")
    listing = ", ".join(f"{e['id']} ({_label(e)})" for e in running)
    raise CliError(f"{len(running)} experiments are running: {listing}; give one ID")


def _label(experiment: dict[str, Any]) -> str:
    return f"{experiment.get('name') or '-'}, {experiment['status']}"


def find_trial_experiment(client: Client, trial_id: str) -> str:
    """The id of the experiment that holds ``trial_id`` (running experiments are asked first)."""
    from nasctl.client import ApiError

    experiments = sorted(
        client.list_experiments(), key=lambda e: e["status"] not in ACTIVE_EXPERIMENT_STATUSES
    )
    for experiment in experiments:
        try:
            client.trial(experiment["id"], trial_id)
        except ApiError as exc:
            if exc.status == 404:
                continue
            raise
        return experiment["id"]
    raise CliError(f"no experiment has a trial '{trial_id}' ('nasctl trial ls ID' lists trials)")
