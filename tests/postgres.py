"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temp dir, a unix socket only.

``make test`` apt-installs ``postgresql`` when no ``/usr/lib/postgresql/*/bin/initdb`` exists.
Where it is missing anyway the PostgreSQL tests skip with the reason, unless
``NASCTL_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) turns the skip into a failure. The server
listens on no TCP port (``listen_addresses = ''``), trusts local connections, and runs without
fsync (a test's data need not survive a power cut); it runs as user ``postgres`` when the tests
run as root, since postgres refuses to run as root.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REQUIRED = os.environ.get("NASCTL_REQUIRE_POSTGRES") == "1"
_names = itertools.count()


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def postgres_problem() -> str | None:
    """Why no PostgreSQL test can run here, or None when they can."""
    if postgres_bin() is None:
        return "no /usr/lib/postgresql/*/bin/initdb ('make test' installs Debian's postgresql with apt-get)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'nasctl[postgres]'; it is in the dev extras)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no user 'postgres' to run the server as"
    return None


def _as_server_user() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


@dataclass
class PostgresServer:
    """A running server: ``url(database)`` for SQLAlchemy, ``new_database()`` per test."""

    root: Path
    bin: Path
    user: str

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@/{database}?host={self.socket_dir}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host=str(self.socket_dir), user=self.user, dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(sql)

    def new_database(self) -> str:
        """A fresh empty database (a copy of template0); returns its SQLAlchemy URL."""
        name = f"nasctl_test_{os.getpid()}_{next(_names)}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "stop", "-D", str(self.root / "data"), "-m", "immediate", "-w")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        ids = _as_server_user()
        preexec: Callable[[], None] | None = None
        if ids is not None:

            def preexec() -> None:
                os.setgid(ids[1])
                os.setuid(ids[0])

        out = subprocess.run(
            [str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=preexec,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
        )
        if out.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({out.returncode}): {out.stdout}{out.stderr}")


def start_postgres() -> PostgresServer:
    """initdb a cluster in a new temp dir and start it (about 1-2 s); ``stop()`` removes it all."""
    problem = postgres_problem()
    if problem is not None:
        raise RuntimeError(problem)
    root = Path(tempfile.mkdtemp(prefix="nasctl-pg-"))
    ids = _as_server_user()
    user = "postgres" if ids is not None else pwd.getpwuid(os.geteuid()).pw_name
    (root / "run").mkdir()
    if ids is not None:
        for path in (root, root / "run"):
            os.chown(path, *ids)
    server = PostgresServer(root, postgres_bin(), user)  # type: ignore[arg-type]
    try:
        data = str(root / "data")
        server._run("initdb", "-D", data, "-U", user, "-A", "trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-c listen_addresses='' -k {server.socket_dir} -c fsync=off -c synchronous_commit=off"
            " -c full_page_writes=off -c max_connections=200"
        )
        server._run("pg_ctl", "start", "-D", data, "-w", "-l", str(root / "server.log"), "-o", options)
    except BaseException:
        server.stop()
        raise
    return server
