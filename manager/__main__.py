"""``python -m manager serve --home DIR``: run the daemon in the foreground of this process.

The CLI starts it detached (``nasctl`` finds it again through ``$NASCTL_HOME/manager.json``). A
start that fails prints one line ``error: ...`` to stderr, appends it to manager.log, and exits
with status 1. Importing this module stays cheap: no torch, and the daemon's own imports wait
until ``serve`` runs, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

#: The database URL from the environment (how ``nasctl manager start`` passes it): not on the
#: command line, which every user of the machine can read; removed once read, so trials lack it.
DB_URL_ENV = "NASCTL_DB_URL"


def _default_home() -> Path:
    return Path(os.environ.get("NASCTL_HOME") or Path.home() / ".nasctl").expanduser()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m manager", description="The nasctl manager daemon.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the daemon until SIGTERM or Ctrl-C")
    serve.add_argument(
        "--home", type=Path, default=None, help="its home folder (default $NASCTL_HOME or ~/.nasctl)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port to listen on (default 0: a free one)")
    serve.add_argument(
        "--db-url",
        default=None,
        help=f"SQLAlchemy database URL (default ${DB_URL_ENV}, else SQLite in the home); a password is"
        f" better passed in ${DB_URL_ENV}, which other users cannot read (they can read the command line)",
    )
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (anyone with the token controls it)",
    )
    serve.add_argument(
        "--max-log-size",
        type=_byte_count,
        default=None,
        metavar="BYTES",
        help="cut a trial's stdout or stderr back when it passes this size (default 1 GiB; 0: never)",
    )
    serve.add_argument(
        "--kill-grace",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="how long a trial may take to exit after SIGTERM before SIGKILL (default 5)",
    )
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be from 0 to 3600 seconds, got {text}")
    return value


def _byte_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of bytes, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    db_url = args.db_url or os.environ.pop(DB_URL_ENV, None) or None
    home = (args.home or _default_home()).expanduser()
    from manager.daemon import REMOTE_WARNING, Daemon, DaemonError, is_loopback

    options: dict[str, Any] = {}
    if args.max_log_size is not None:
        options["max_log_bytes"] = args.max_log_size or None
    if args.kill_grace is not None:
        options["kill_grace"] = args.kill_grace
    daemon = Daemon(
        home, host=args.host, port=args.port, db_url=db_url, allow_remote=args.allow_remote, **options
    )

    def started(port: int, _token: str) -> None:
        print(f"nasctl manager listening on {daemon.url} (pid {os.getpid()}, home {daemon.home})", flush=True)
        if not is_loopback(args.host):
            print(f"warning: {REMOTE_WARNING % args.host}", file=sys.stderr, flush=True)

    try:
        daemon.serve_forever(on_started=started)
    except DaemonError as exc:
        message = f"error: {exc}"
        print(message, file=sys.stderr, flush=True)
        _append_log(home, message)
        return 1
    return 0


def _append_log(home: Path, message: str) -> None:
    """Best effort: the home may be the very thing that is not writable."""
    try:
        with open(home / "manager.log", "a") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} ERROR manager: {message}\n")
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
