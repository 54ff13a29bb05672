"""The trial commands: ``trial ls``, ``trial kill`` and ``log``."""

from __future__ import annotations

from typing import Any

import click

from nasctl.app import (
    App,
    CliError,
    echo_json,
    find_trial_experiment,
    json_option,
    pass_app,
    resolve_experiment,
)
from trials.status import TrialStatus


@click.group()
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
@click.option(
    "--pareto",
    is_flag=True,
    help="Only the Pareto front of a multi-objective experiment, one column per objective.",
)
@json_option
@pass_app
def trial_ls(
    app: App,
    experiment_id: str | None,
    top: int | None,
    status_filter: str | None,
    pareto: bool,
    as_json: bool,
) -> None:
    """List the trials of an experiment.

    One row per trial: TRIAL STATUS METRIC, one column per choice, DURATION, and REASON (why
    it failed or stopped; cut to the terminal's width, whole in --json). --top N shows the
    N best succeeded trials by final metric. --pareto shows the trials no other trial beats on
    every objective (the constraints met first), with one column per objective.
    """
    from nasctl.output import terminal_width, trial_table

    if pareto and (top or status_filter):
        raise CliError("trial ls: --pareto lists the front whole; it does not combine with --top or --status")
    client = app.client()
    experiment = resolve_experiment(client, experiment_id, latest=True)
    exp_id = experiment["id"]
    if pareto:
        _pareto_ls(client.pareto(exp_id), exp_id, as_json)
        return
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
        click.echo(trial_table(trials, reasons=True, width=terminal_width()))
    else:
        click.echo(
            f"experiment {exp_id} has no {'succeeded ' if top and not status_filter else ''}trials"
            + (f" with status {status_filter}" if status_filter else "")
            + " yet"
        )


def _pareto_ls(front: dict[str, Any], exp_id: str, as_json: bool) -> None:
    from nasctl.output import pareto_table

    if as_json:
        echo_json(front["front"])
    elif front["front"]:
        click.echo(pareto_table(front))
        click.echo(
            f"{len(front['front'])} on the front, {front['dominated']} dominated, {front['infeasible']} infeasible"
        )
    else:
        click.echo(f"experiment {exp_id} has no succeeded trial with every objective's metric yet")


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


@click.command()
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
