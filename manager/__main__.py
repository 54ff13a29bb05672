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
    serve.add_argument("--db-url", default=None, help="SQLAlchemy database URL (default sqlite in the home)")
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (anyone with the token controls it)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    home = (args.home or _default_home()).expanduser()
    from manager.daemon import Daemon, DaemonError

    daemon = Daemon(home, host=args.host, port=args.port, db_url=args.db_url, allow_remote=args.allow_remote)

    def started(port: int, _token: str) -> None:
        print(f"nasctl manager listening on {daemon.url} (pid {os.getpid()}, home {daemon.home})", flush=True)

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
