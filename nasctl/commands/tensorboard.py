"""``nasctl tensorboard``: TensorBoard over a classic experiment.

The runs (one per trial: its reported results as scalars and a link to its own output folder)
are written by :mod:`nasctl.tensorboard_runs` into ``<experiment folder>/tensorboard`` (or
``--logdir``), then ``python -m tensorboard.main`` of this interpreter serves them on 127.0.0.1
until Ctrl-C, while this process refreshes the runs every few seconds (new trials, new results).
TensorBoard is optional: without it the command says how to install it in one line.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nasctl.app import EXIT_FAILURE, App, CliError, notice, pass_app, resolve_experiment
from nasctl.interrupts import sigterm_as_interrupt

if TYPE_CHECKING:
    from nasctl.client import Client
    from nasctl.tensorboard_runs import TensorBoardRuns

DEFAULT_PORT = 6006
#: How long TensorBoard may take to answer on its port before the command gives up.
START_TIMEOUT = 60.0
#: The child's output goes here (in the log folder), shown when it fails.
CHILD_LOG_NAME = ".tensorboard.log"


@click.command(name="tensorboard")
@click.argument("experiment_id", metavar="[ID]", required=False)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help=f"Default {DEFAULT_PORT}, or a free port when it is taken; 0 picks a free port.",
)
@click.option(
    "--logdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the runs. Default: the experiment folder's tensorboard/.",
)
@click.option("--no-serve", is_flag=True, help="Only write the runs and print their folder.")
@click.option(
    "--refresh",
    type=click.FloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Seconds between refreshes of the runs while TensorBoard runs.",
)
@pass_app
def tensorboard(
    app: App, experiment_id: str | None, port: int | None, logdir: Path | None, no_serve: bool, refresh: float
) -> None:
    """Start TensorBoard over an experiment (the running one, else the most recent).

    One run per trial, named by its id and chosen ops: its intermediate and final results as
    scalars (intermediate/<key>, final/<key>), and under <run>/trial what the trial wrote itself
    into trials.get_output_dir(). Serves on 127.0.0.1 until Ctrl-C, refreshing the runs.
    """
    from nasctl.tensorboard_runs import TensorBoardRuns, tensorboard_missing

    missing = tensorboard_missing()
    if missing is not None:
        raise CliError(missing, EXIT_FAILURE)
    client = app.client()
    experiment = resolve_experiment(client, experiment_id, latest=True)
    exp_id = experiment["id"]
    folder = (logdir or Path(experiment["experimentDir"]) / "tensorboard").expanduser().resolve()
    chosen = _choose_port(port) if not no_serve else 0
    runs = TensorBoardRuns(folder, exp_id)
    runs.reset()
    started = time.perf_counter()
    done = runs.refresh(client)
    notice(
        f"wrote {done.runs} runs ({done.points} points) of experiment {exp_id} "
        f"in {time.perf_counter() - started:.2f} s"
    )
    if no_serve:
        runs.close()
        click.echo(str(folder))
        return
    try:
        with contextlib.suppress(KeyboardInterrupt), sigterm_as_interrupt():
            _serve(runs, client, folder, chosen, refresh, exp_id)
    finally:
        runs.close()


def _choose_port(port: int | None) -> int:
    """``port`` as given (0: a free one); when not given, 6006 if free, else a free one."""
    if port:
        if not _free(port):
            raise CliError(
                f"--port {port}: the port is taken on 127.0.0.1; give another, or 0 for a free one"
            )
        return port
    if port is None and _free(DEFAULT_PORT):
        return DEFAULT_PORT
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _serve(
    runs: TensorBoardRuns, client: Client, folder: Path, port: int, refresh: float, exp_id: str
) -> None:
    """Run TensorBoard until it exits or Ctrl-C; refresh the runs meanwhile; always end the child."""
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(folder)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--reload_interval", str(max(1, int(refresh)))]
    log_path = folder / CHILD_LOG_NAME
    with open(log_path, "wb") as log:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_listening(child, port, log_path)
        click.echo(f"TensorBoard of experiment {exp_id} at http://127.0.0.1:{port}/ (logdir {folder})")
        notice("Ctrl-C stops it")
        while child.poll() is None:
            time.sleep(refresh)
            runs.refresh(client)
        raise CliError(f"TensorBoard ended by itself: {_last_line(log_path)}", EXIT_FAILURE)
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _wait_listening(child: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise CliError(f"TensorBoard did not start: {_last_line(log_path)}", EXIT_FAILURE)
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise CliError(f"TensorBoard did not listen on port {port} within {START_TIMEOUT:.0f} s", EXIT_FAILURE)


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else f"no output (see {path})"
