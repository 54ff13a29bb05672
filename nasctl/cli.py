"""``nasctl``: drive the local nasctl daemon from a shell.

The daemon of ``--home`` (default ``$NASCTL_HOME``, else ``~/.nasctl``) is started on demand.
Errors are one line ``error: ...`` on stderr, exit code 2 for bad input and 1 for a failure of
the system; never a traceback. Read commands take ``--json`` for scripts.

This module is the root group and the entry point; the commands live in ``nasctl.commands``
(experiment, trials, manager, tools), what they share in ``nasctl.app``. Nothing heavy is
imported at module top (no client, manager, fastapi or torch): ``nasctl --help`` must answer at
once, so each command imports what it needs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import click

from nasctl.app import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED, App, CliError
from nasctl.commands import experiment, manager, tensorboard, tools, trials

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


for _command in (
    experiment.create,
    experiment.resume,
    experiment.stop,
    experiment.status,
    experiment.list_,
    experiment.update,
    experiment.experiment,
    trials.trial,
    trials.log,
    manager.manager,
    tools.ss_gen,
    tools.view_nas,
    tensorboard.tensorboard,
):
    cli.add_command(_command)


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
