"""``nasctl``: drive the local nasctl daemon from a shell.

The daemon of ``--home`` (default ``$NASCTL_HOME``, else ``~/.nasctl``) is started on demand.
Errors are one line ``error: ...`` on stderr, exit code 2 for bad input and 1 for a failure of
the system; never a traceback. Read commands take ``--json`` for scripts.

Nothing heavy is imported at module top (no httpx, manager, fastapi or torch): ``nasctl --help``
must answer at once, so each command imports what it needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from trials.durations import parse_duration
from trials.status import (
    ACTIVE_EXPERIMENT_STATUSES,
    FINISHED_EXPERIMENT_STATUSES,
    ExperimentStatus,
    TrialStatus,
)

if TYPE_CHECKING:
    from nasctl.client import Client, DaemonInfo

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130
DEFAULT_SS_FILE = "nasctl_auto_gen_search_space.json"
BEST_ARCHITECTURE_FILE = "best_architecture.json"
POLL_SECONDS = 1.0

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


# -- the group ---------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="NASCTL_HOME",
    help="The daemon's folder (database, experiments). Default: $NASCTL_HOME, else ~/.nasctl.",
)
@click.version_option(package_name="nasctl", prog_name="nasctl")
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """Neural architecture search for PyTorch: experiments run by a local daemon.

    \b
    nasctl create --config configs/digits-random.yaml --foreground
    nasctl status                  # the running experiment
    nasctl trial ls --top 5        # its best trials
    nasctl ss_gen -t "python model.py"
    """
    ctx.obj = App(home_option=home)


# -- experiments ---------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--config",
    "-c",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Experiment YAML (NNI v2 or v1 keys).",
)
@click.option(
    "--foreground",
    "-f",
    is_flag=True,
    help="Follow the experiment here with a live display; Ctrl-C stops it.",
)
@json_option
@pass_app
def create(app: App, config_path: Path, foreground: bool, as_json: bool) -> int | None:
    """Validate a config and start an experiment."""
    config, base_dir = load_experiment_config(config_path)
    if foreground:
        return run_foreground(app.home, config, base_dir, as_json=as_json).exit_code
    client = app.client()
    experiment = client.create_experiment(config, base_dir)
    if as_json:
        echo_json(experiment)
        return None
    exp_id = experiment["id"]
    click.echo(
        f"created experiment {exp_id} ({experiment.get('name') or config_path.stem}): {experiment['status']}"
    )
    click.echo(f"dashboard: {app.dashboard_url}")
    click.echo(f"follow it:  nasctl status {exp_id}   |   nasctl trial ls {exp_id} --top 5")
    click.echo(f"stop it:    nasctl stop {exp_id}")
    return None


def load_experiment_config(path: Path) -> tuple[dict[str, Any], Path]:
    """The YAML as a dict and its folder, after the manager's own validation (so errors name the field)."""
    import yaml

    from manager.config import ConfigError, load_config

    if not path.is_file():
        raise CliError(f"{path}: no such file")
    try:
        load_config(path)
    except ConfigError as exc:
        message = str(exc)
        raise CliError(
            message if str(path) in message or path.name in message else f"{path}: {message}"
        ) from None
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:  # load_config read it a moment ago; this is a race
        raise CliError(f"{path}: cannot read ({exc})") from None
    return raw, path.resolve().parent


# -- create --foreground -------------------------------------------------------------------------


@dataclass(frozen=True)
class ForegroundResult:
    """How a followed experiment ended: ``exit_code`` is what ``create --foreground`` exits with."""

    experiment: dict[str, Any]
    best_trial: dict[str, Any] | None
    architecture_file: Path | None
    interrupted: bool
    exit_code: int


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
        with _sigterm_as_interrupt():
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


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
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


def report_best(
    client: Client, experiment: Mapping[str, Any], base_dir: Path, interrupted: bool, as_json: bool = False
) -> ForegroundResult:
    """Print the best architecture and write it to ``<experimentDir>/best_architecture.json``."""
    from nasctl.output import done_count, elapsed, format_decision, format_duration, format_metric

    exp_id = experiment["id"]
    counts = experiment.get("trialCounts") or {}
    best = client.best(exp_id, 1)
    trial = best[0] if best else None
    path: Path | None = None
    if trial is not None:
        path = Path(experiment["experimentDir"]) / BEST_ARCHITECTURE_FILE
        try:
            path.write_text(json.dumps(trial.get("parameters") or {}, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            notice(f"warning: cannot write {path} ({exc.strerror})")
            path = None
    if interrupted:
        code = EXIT_INTERRUPTED
    elif trial is None or experiment["status"] == ExperimentStatus.ERROR.value:
        code = EXIT_FAILURE
    else:
        code = 0
    result = ForegroundResult(dict(experiment), trial, path, interrupted, code)
    if as_json:
        echo_json(
            {"experiment": experiment, "bestTrial": trial, "architectureFile": str(path) if path else None}
        )
        return result
    cancelled = sum(
        counts.get(s, 0)
        for s in (
            TrialStatus.USER_CANCELED.value,
            TrialStatus.SYS_CANCELED.value,
            TrialStatus.EARLY_STOPPED.value,
        )
    )
    click.echo(
        f"experiment {exp_id} {experiment['status']}: {done_count(experiment)}/{experiment.get('maxTrialNumber')} "
        f"trials done, {counts.get('SUCCEEDED', 0)} succeeded, {counts.get('FAILED', 0)} failed"
        + (f", {cancelled} cancelled" if cancelled else "")
        + f", in {format_duration(elapsed(experiment))}"
    )
    if trial is None:
        click.echo(f"no trial succeeded; see 'nasctl trial ls {exp_id}' and 'nasctl log stderr TRIAL'")
        return result
    click.echo(f"best trial {trial['id']}: final metric {format_metric(trial.get('finalMetric'))}")
    params = trial.get("parameters") or {}
    width = max((len(key) for key in params), default=0)
    for key, value in params.items():
        click.echo(f"  {key.ljust(width)}  {format_decision(value)}")
    if path is not None:
        click.echo(f"architecture: {_short_path(path)}")
        click.echo(f"retrain it:   {_retrain_hint(experiment, base_dir, path)}")
    return result


def _retrain_hint(experiment: Mapping[str, Any], base_dir: Path, arch: Path) -> str:
    """The example's retrain script when it has one, else how to apply the file in any script."""
    code_dir = (experiment.get("config") or {}).get("trialCodeDirectory") or "."
    script = (base_dir / code_dir).resolve() / "retrain.py"
    if script.is_file():
        return f"python {_short_path(script)} --arch {_short_path(arch)}"
    return f"apply_fixed_architecture(model, '{arch}') in your training script"


def _short_path(path: Path) -> str:
    """Relative to the current folder when below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@cli.command()
@click.argument("experiment_id", metavar="ID")
@json_option
@pass_app
def resume(app: App, experiment_id: str, as_json: bool) -> None:
    """Continue a STOPPED, DONE or ERROR experiment."""
    client = app.client()
    experiment = client.resume(resolve_experiment(client, experiment_id)["id"])
    if as_json:
        echo_json(experiment)
        return
    click.echo(f"resumed experiment {experiment['id']}: {experiment['status']}")
    click.echo(f"dashboard: {app.dashboard_url}")


@cli.command()
@click.argument("experiment_id", metavar="[ID]", required=False)
@click.option("--all", "-a", "stop_all", is_flag=True, help="Stop every running experiment.")
@json_option
@pass_app
def stop(app: App, experiment_id: str | None, stop_all: bool, as_json: bool) -> None:
    """Stop an experiment and wait for its trials.

    Running trials are cancelled; the command returns once their processes are gone.
    `nasctl resume ID` continues later.
    """

    client = app.client()
    if stop_all and experiment_id:
        raise CliError("give an experiment ID or --all, not both")
    if stop_all:
        targets = [e for e in client.list_experiments() if e["status"] in ACTIVE_EXPERIMENT_STATUSES]
        if not targets and not as_json:
            click.echo("no experiment is running")
    else:
        targets = [resolve_experiment(client, experiment_id)]
    stopped = []
    for target in targets:
        running = (target.get("trialCounts") or {}).get(TrialStatus.RUNNING.value, 0)
        if not as_json and running:
            notice(f"stopping experiment {target['id']}: cancelling {running} running trial(s)...")
        experiment = client.stop(target["id"])
        stopped.append(experiment)
        if not as_json:
            click.echo(f"experiment {experiment['id']}: {experiment['status']}")
    if as_json:
        echo_json(stopped if stop_all else stopped[0])


@cli.command()
@click.argument("experiment_id", metavar="[ID]", required=False)
@json_option
@pass_app
def status(app: App, experiment_id: str | None, as_json: bool) -> None:
    """Show an experiment's progress and best.

    Status, trials done out of maxTrialNumber, running and failed counts, the best metric, the
    last error if any, and the dashboard link. ID may be left out while one experiment runs.
    """
    from nasctl.output import status_text

    client = app.client()
    experiment = resolve_experiment(client, experiment_id)
    waiting_reason = None
    if (experiment.get("trialCounts") or {}).get(TrialStatus.WAITING.value):
        waiting = client.trials(experiment["id"], status=TrialStatus.WAITING.value, limit=1)["items"]
        waiting_reason = waiting[0].get("waitingReason") if waiting else None
    if as_json:
        echo_json({**experiment, "dashboardUrl": app.dashboard_url, "waitingReason": waiting_reason})
        return
    click.echo(status_text(experiment, app.dashboard_url, waiting_reason))


@cli.command(name="list")
@click.option("--all", "-a", "show_all", is_flag=True, help="Include STOPPED experiments.")
@json_option
@pass_app
def list_(app: App, show_all: bool, as_json: bool) -> None:
    """List experiments, newest first.

    STOPPED experiments are shown only with --all.
    """
    from nasctl.output import experiment_table

    experiments = app.client().list_experiments()
    if not show_all:
        experiments = [e for e in experiments if e["status"] != ExperimentStatus.STOPPED.value]
    if as_json:
        echo_json(experiments)
    elif experiments:
        click.echo(experiment_table(experiments))
    else:
        click.echo("no experiments" + ("" if show_all else " (--all shows stopped ones too)"))


def resolve_experiment(client: Client, given: str | None) -> dict[str, Any]:
    """The experiment ``given`` (an id or a unique prefix), or the only running one when None."""
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
    running = [e for e in client.list_experiments() if e["status"] in ACTIVE_EXPERIMENT_STATUSES]
    if len(running) == 1:
        return running[0]
    if not running:
        raise CliError("no experiment is running; give an experiment ID ('nasctl list --all' shows them all)")
    listing = ", ".join(f"{e['id']} ({e.get('name') or '-'}, {e['status']})" for e in running)
    raise CliError(f"{len(running)} experiments are running: {listing}; give one ID")


# -- trials --------------------------------------------------------------------------------------


@cli.group()
def trial() -> None:
    """List and kill trials."""


@trial.command(name="ls")
@click.argument("experiment_id", metavar="[ID]", required=False)
@click.option("--top", type=click.IntRange(min=1), help="Only the N best trials by final metric.")
@click.option(
    "--status",
    "status_filter",
    type=click.Choice([status.value for status in TrialStatus], case_sensitive=False),
    help="Only trials with this status.",
)
@json_option
@pass_app
def trial_ls(
    app: App, experiment_id: str | None, top: int | None, status_filter: str | None, as_json: bool
) -> None:
    """List the trials of an experiment.

    One row per trial: TRIAL STATUS METRIC, one column per choice, DURATION. --top N shows the
    N best succeeded trials by final metric.
    """
    from nasctl.output import trial_table

    client = app.client()
    experiment = resolve_experiment(client, experiment_id)
    exp_id = experiment["id"]
    status_filter = status_filter.upper() if status_filter else None
    if top and not status_filter:
        trials = client.best(exp_id, top)
    elif top:
        order = "asc" if experiment.get("optimizeMode") == "minimize" else "desc"
        trials = client.trials(exp_id, status=status_filter, sort="finalMetric", order=order, limit=top)[
            "items"
        ]
    else:
        trials = list(client.iter_trials(exp_id, status=status_filter))
    if as_json:
        echo_json(trials)
    elif trials:
        click.echo(trial_table(trials))
    else:
        click.echo(
            f"experiment {exp_id} has no {'succeeded ' if top and not status_filter else ''}trials"
            + (f" with status {status_filter}" if status_filter else "")
            + " yet"
        )


@trial.command(name="kill")
@click.argument("ids", metavar="[ID] TRIAL", nargs=-1, required=True)
@json_option
@pass_app
def trial_kill(app: App, ids: tuple[str, ...], as_json: bool) -> None:
    """Kill a running trial (it ends USER_CANCELED)."""
    if len(ids) > 2:
        raise CliError(f"trial kill takes [ID] TRIAL, got {len(ids)} arguments")
    client = app.client()
    experiment_id, trial_id = ids if len(ids) == 2 else (None, ids[0])
    if experiment_id is None:
        exp_id = find_trial_experiment(client, trial_id)
    else:
        exp_id = resolve_experiment(client, experiment_id)["id"]
    killed = client.kill_trial(exp_id, trial_id)
    if as_json:
        echo_json(killed)
    else:
        click.echo(f"trial {killed['id']}: {killed['status']}")


@cli.command()
@click.argument("stream", type=click.Choice(["stdout", "stderr"]))
@click.argument("trial_id", metavar="TRIAL")
@click.option("--tail", type=click.IntRange(min=1), help="Only the last N lines.")
@click.option(
    "--experiment", "experiment_id", metavar="ID", help="The trial's experiment (found when left out)."
)
@pass_app
def log(app: App, stream: str, trial_id: str, tail: int | None, experiment_id: str | None) -> None:
    """Print a trial's stdout or stderr."""
    client = app.client()
    exp_id = (
        resolve_experiment(client, experiment_id)["id"]
        if experiment_id
        else find_trial_experiment(client, trial_id)
    )
    text = client.log(exp_id, trial_id, stream, tail)
    click.echo(text, nl=bool(text) and not text.endswith("\n"))


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


# -- experiment maintenance ----------------------------------------------------------------------


@cli.group()
def experiment() -> None:
    """Export or delete experiments."""


@experiment.command(name="export")
@click.argument("experiment_id", metavar="[ID]", required=False)
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to stdout."
)
@pass_app
def experiment_export(app: App, experiment_id: str | None, fmt: str, output: Path | None) -> None:
    """Export every trial of an experiment.

    Each trial's id, sequence id, status, parameters, final metric and times, as JSON or CSV.
    """
    client = app.client()
    exp_id = resolve_experiment(client, experiment_id)["id"]
    data = client.export(exp_id, fmt)
    text = data if fmt == "csv" else json.dumps(data, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise CliError(f"{output}: cannot write ({exc.strerror})", EXIT_FAILURE) from None
    count = len(data) if fmt == "json" else max(0, len(text.splitlines()) - 1)
    notice(f"wrote {count} trials of experiment {exp_id} to {output}")


@experiment.command(name="delete")
@click.argument("experiment_id", metavar="ID")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def experiment_delete(app: App, experiment_id: str, yes: bool) -> None:
    """Delete an experiment and its folder.

    A running experiment is stopped first.
    """
    client = app.client()
    target = resolve_experiment(client, experiment_id)
    if not yes and sys.stdin.isatty():
        click.confirm(
            f"delete experiment {target['id']} ({target.get('name') or '-'}, {target['status']}) and its folder?",
            abort=True,
        )
    client.delete(target["id"])
    click.echo(f"deleted experiment {target['id']}")


# -- update --------------------------------------------------------------------------------------

UPDATE_FIELDS = {
    "concurrency": "trialConcurrency",
    "trialnum": "maxTrialNumber",
    "duration": "maxExperimentDuration",
}


def parse_update_value(what: str, text: str) -> float | int:
    field_name = UPDATE_FIELDS[what]
    if what == "duration":
        try:
            return parse_duration(text, bare_text_is_seconds=True)
        except ValueError:
            raise CliError(
                f"{field_name}: must be a positive duration like 90 (seconds), 30m, 2h or 1d, got '{text}'"
            ) from None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise CliError(f"{field_name}: must be a whole number >= 1, got '{text}'")
    return value


@cli.command()
@click.argument("what", type=click.Choice(list(UPDATE_FIELDS)))
@click.argument("args", metavar="[ID] VALUE", nargs=-1, required=True)
@json_option
@pass_app
def update(app: App, what: str, args: tuple[str, ...], as_json: bool) -> None:
    """Change concurrency, trial number or duration.

    \b
    nasctl update concurrency ID 4
    nasctl update trialnum ID 50      # raising it continues a DONE experiment
    nasctl update duration ID 2h      # also 30m, 1d or seconds
    """
    from nasctl.output import format_duration

    if len(args) > 2:
        raise CliError(f"update {what} takes [ID] VALUE, got {len(args)} arguments")
    experiment_id, text = args if len(args) == 2 else (None, args[0])
    value = parse_update_value(what, text)
    client = app.client()
    target = resolve_experiment(client, experiment_id)
    experiment = client.update_experiment(target["id"], **{UPDATE_FIELDS[what]: value})
    if as_json:
        echo_json(experiment)
        return
    shown = experiment.get(UPDATE_FIELDS[what], value)
    if what == "duration":
        shown = format_duration(shown)
    click.echo(f"experiment {experiment['id']}: {UPDATE_FIELDS[what]} = {shown} ({experiment['status']})")


# -- ss_gen --------------------------------------------------------------------------------------


@cli.command(name="ss_gen")
@click.option(
    "--trial-command",
    "--trial_command",
    "-t",
    "trial_command",
    required=True,
    help='The trial command, e.g. "python model.py".',
)
@click.option(
    "--trial-dir",
    "--trial_dir",
    "-d",
    "trial_dir",
    default=".",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where the command runs.",
)
@click.option(
    "--file",
    "-f",
    "output",
    default=DEFAULT_SS_FILE,
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the search space.",
)
def ss_gen(trial_command: str, trial_dir: Path, output: Path) -> None:
    """Write a model's search space (a dry run).

    Runs the trial command once with NASCTL_GEN_SEARCH_SPACE set: the model writes its choices
    and exits before training. NNI's spellings --trial_command/--trial_dir also work.
    """
    from manager.searchspace import generate_search_space
    from trials.errors import SearchSpaceError

    if not trial_dir.is_dir():
        raise CliError(f"--trial-dir: {trial_dir} is not a directory")
    output = output.resolve()
    if output.exists():
        notice(f"warning: {output} exists and will be overwritten")
    notice(f"dry run of '{trial_command}' in {trial_dir.resolve()} to generate the search space...")
    try:
        space = generate_search_space(trial_command, trial_dir, output=output)
    except SearchSpaceError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    size = space.size()
    click.echo(
        f"wrote the search space ({len(space)} choices, "
        f"{size if size is not None else 'infinitely many'} architectures) to {output}"
    )


# -- view-nas --------------------------------------------------------------------------------------


@cli.command(name="view-nas")
@click.option(
    "--logdir",
    type=click.Path(path_type=Path),
    help="The search log folder a one-shot trainer writes (search_space.json, graph.json, weights.jsonl, ...).",
)
@click.option(
    "--experiment", "experiment_id", metavar="ID", help="Instead: the NAS view of a classic experiment."
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 picks a free port."
)
@pass_app
def view_nas(app: App, logdir: Path | None, experiment_id: str | None, port: int) -> None:
    """Show the super-net and its candidates' weights over the search, in the browser.

    With --logdir, serve that folder on 127.0.0.1 until Ctrl-C (no daemon needed) and print the
    link, which carries a token. With --experiment, print the daemon dashboard's link to the same
    view of a classic experiment (weights = how often each candidate was chosen).
    """
    if (logdir is None) == (experiment_id is None):
        raise CliError("give --logdir DIR (a one-shot search log) or --experiment ID (a classic experiment)")
    if experiment_id is not None:
        experiment = resolve_experiment(app.client(), experiment_id)
        click.echo(f"{app.dashboard_url}#/experiments/{experiment['id']}/supernet")
        return
    assert logdir is not None
    # the server runs in this process, like `create --foreground` runs the daemon
    from manager.searchlog import SearchLogError
    from manager.viewnas import ViewNasServer

    try:
        server = ViewNasServer.for_folder(logdir, port)
    except SearchLogError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None

    def started(running: Any) -> None:
        summary = running.log.summary()
        state = "finished" if summary.finished else "in progress"
        click.echo(f"NAS view of {running.log.folder} ({summary.steps} steps logged, {state}):")
        click.echo(running.link)
        notice("Ctrl-C stops it")

    with contextlib.suppress(KeyboardInterrupt), _sigterm_as_interrupt():
        server.serve_until_interrupted(started)


# -- manager -------------------------------------------------------------------------------------


@cli.group()
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


# -- entry point ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script: run, then exit with the code of :func:`run`."""
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and turn every failure into one ``error:`` line and an exit code."""
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None, prog_name="nasctl", standalone_mode=False
        )
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_INTERRUPTED
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        return _error(f"{exc.format_message()}{hint}", exc.exit_code)
    except click.ClickException as exc:
        return _error(exc.format_message(), exc.exit_code)
    except CliError as exc:
        return _error(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_FAILURE
    except Exception as exc:
        return _report_unexpected(exc)
    return result if isinstance(result, int) else 0


def _error(message: str, code: int) -> int:
    first, _, rest = message.strip().partition("\n")
    click.echo(f"error: {first}", err=True)
    if rest:
        click.echo(rest, err=True)
    return code


def _report_unexpected(exc: Exception) -> int:
    """Client and launcher errors carry a one-line message; anything else is a bug, shown briefly."""
    from nasctl.client import ApiError, ClientError
    from nasctl.launcher import LauncherError

    if isinstance(exc, ApiError):
        return _error(
            exc.detail, EXIT_BAD_INPUT if 400 <= exc.status < 500 and exc.status != 401 else EXIT_FAILURE
        )
    if isinstance(exc, (ClientError, LauncherError)):
        return _error(str(exc), EXIT_FAILURE)
    if isinstance(exc, ValueError):
        return _error(str(exc), EXIT_BAD_INPUT)
    if os.environ.get("NASCTL_DEBUG"):
        import traceback

        traceback.print_exc()
    return _error(
        f"internal error: {type(exc).__name__}: {exc} (set NASCTL_DEBUG=1 for the traceback)", EXIT_FAILURE
    )


def _silence_stdout() -> None:
    """After a closed pipe (``nasctl trial ls | head``), make the interpreter's final flush quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


if __name__ == "__main__":
    main()
