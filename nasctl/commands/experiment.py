"""The experiment commands: ``create``, ``resume``, ``stop``, ``status``, ``list``, ``update``, and
``experiment export``/``experiment delete``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from nasctl.app import (
    EXIT_FAILURE,
    App,
    CliError,
    echo_json,
    json_option,
    notice,
    pass_app,
    resolve_experiment,
)
from nasctl.experiment_config import load_experiment_config
from nasctl.foreground import run_foreground
from trials.durations import parse_duration
from trials.status import ACTIVE_EXPERIMENT_STATUSES, ExperimentStatus, TrialStatus


@click.command()
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


@click.command()
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


@click.command()
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


@click.command()
@click.argument("experiment_id", metavar="[ID]", required=False)
@json_option
@pass_app
def status(app: App, experiment_id: str | None, as_json: bool) -> None:
    """Show an experiment's progress and best.

    Status, trials done out of maxTrialNumber, running and failed counts, the best metric, why
    trials failed (the commonest reasons with their counts, and a trial whose stderr to read),
    the last error if any, and the dashboard link. Without ID: the running experiment, else the most
    recent one (named on stderr).
    """
    from nasctl.output import status_text

    client = app.client()
    experiment = resolve_experiment(client, experiment_id, latest=True)
    waiting_reason = None
    if (experiment.get("trialCounts") or {}).get(TrialStatus.WAITING.value):
        waiting = client.trials(experiment["id"], status=TrialStatus.WAITING.value, limit=1)["items"]
        waiting_reason = waiting[0].get("waitingReason") if waiting else None
    if as_json:
        echo_json({**experiment, "dashboardUrl": app.dashboard_url, "waitingReason": waiting_reason})
        return
    click.echo(status_text(experiment, app.dashboard_url, waiting_reason))


@click.command(name="list")
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


@click.group()
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
    exp_id = resolve_experiment(client, experiment_id, latest=True)["id"]
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


@click.command()
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
