"""The model-side tools: ``ss_gen`` (a model's search space, by a dry run) and ``view-nas`` (the
super-net view of a one-shot search log or a classic experiment).

Both need parts of ``manager``, imported inside the command so that ``nasctl --help`` stays fast.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from nasctl.app import EXIT_FAILURE, App, CliError, notice, pass_app, resolve_experiment
from nasctl.interrupts import sigterm_as_interrupt

DEFAULT_SS_FILE = "nasctl_auto_gen_search_space.json"


@click.command(name="ss_gen")
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
    from manager.loop.ss_gen import generate_search_space
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


@click.command(name="view-nas")
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
    from manager.http.viewnas import ViewNasServer
    from manager.views.searchlog import SearchLogError

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

    with contextlib.suppress(KeyboardInterrupt), sigterm_as_interrupt():
        server.serve_until_interrupted(started)
