"""The store's plumbing: engines, the one writer thread, transactions, and room on a full disk.

SQLAlchemy 2 over SQLite in WAL mode (``$NASCTL_HOME/nasctl.db``) or PostgreSQL
(``postgresql+psycopg://...``; the reserve and WAL are SQLite's only); other databases are refused.
SQLite allows one writer at a time, and a second writer waits or fails with "database is
locked"; so every write goes through ONE thread that owns ONE connection
(:class:`~manager.store.writer.WriterThread`): urgent writes in submission order, and metric
ingests, queued behind them, grouped into one transaction with a SAVEPOINT each (see
:meth:`Database.submit_grouped`). Readers use their own pooled connections and, thanks to WAL,
never wait for the writer.

Callers on the asyncio loop use :meth:`Database.call` (the work runs on the writer thread and
the loop awaits it); plain threads (the REST routes run in a thread pool) call the methods
directly. The query modules of this package build ``Store`` on this class.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session

from manager import profiling
from manager.store.disk import RESERVE_SUFFIX, StorageError, make_reserve, storage_problem
from manager.store.schema import create_schema, sqlite_pragmas
from manager.store.writer import Outcome, WriterThread

T = TypeVar("T")
D = TypeVar("D", bound="Database")


def masked_url(db_url: str) -> str:
    """The URL as it may be shown (logs, errors): its password, if any, as ``***``."""
    try:
        return make_url(db_url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return db_url.split("@", 1)[-1] if "@" in db_url else db_url


#: The databases the store's test suite runs on; others are refused rather than half-working.
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def _check_backend(db_url: str) -> None:
    try:
        backend = make_url(db_url).get_backend_name()
    except (ArgumentError, ValueError):
        return  # create_engine names what is wrong with the URL itself
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(
            f"the store runs on SQLite (sqlite:///PATH) or PostgreSQL (postgresql+psycopg://...), "
            f"not {backend}"
        )


class DatabaseInUse(RuntimeError):
    """A server database that another store (another daemon's) has open."""


#: The PostgreSQL advisory lock that says "a nasctl store has this database open" ("nasctl").
POSTGRES_LOCK_KEY = 0x6E617363746C


def _lock_postgres(session: Session) -> bool:
    """One writer per database, as SQLite's home lock gives: a session-level advisory lock on the
    writer's one connection, held until the store closes (or the connection drops: a daemon killed)."""
    return bool(
        session.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": POSTGRES_LOCK_KEY}).scalar()
    )


class Database:
    """One database: a writer thread with one connection, a pool of readers. Thread-safe.

    A write that fails because the disk is full, read-only or failing raises :class:`StorageError`.
    ``reserve`` (a file of :data:`RESERVE_BYTES` next to the database, made when the store opens)
    is freed by :meth:`make_room`, so that after such a failure the daemon can still record why.
    """

    def __init__(self, db_url: str, reserve: Path | None = None) -> None:
        _check_backend(db_url)
        self.db_url = db_url
        self.reserve = reserve
        self._is_sqlite = db_url.startswith("sqlite")
        self._write_engine = self._engine(pool_size=1)
        self._read_engine = self._engine(pool_size=8)
        self._writer: WriterThread[Callable[[Session], Any]] = WriterThread(
            "nasctl-db-writer", self._run_group
        )
        self._writer_ident: int | None = None
        self._profile: object | None = None
        self._writer.submit(self._remember_writer).result()
        if self._write_engine.dialect.name == "postgresql" and not self._write(_lock_postgres):
            self._writer.shutdown()
            self._write_engine.dispose()
            self._read_engine.dispose()
            raise DatabaseInUse(f"another nasctl daemon uses the database {masked_url(db_url)}")
        self._write(create_schema)
        self._closed = False
        if reserve is not None:
            make_reserve(reserve)

    @classmethod
    def open(cls: type[D], home: Path, db_url: str | None = None) -> D:
        """The store of a daemon home: ``db_url`` or ``sqlite:///<home>/nasctl.db`` (with a reserve)."""
        if db_url:
            return cls(db_url)
        path = Path(home).resolve() / "nasctl.db"
        if not path.exists():  # configs hold commands: only this user may read them (-wal/-shm follow)
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return cls(f"sqlite:///{path}", reserve=path.with_name(path.name + RESERVE_SUFFIX))

    def _engine(self, pool_size: int) -> Engine:
        if self._is_sqlite:
            engine = create_engine(
                self.db_url,
                pool_size=pool_size,
                max_overflow=0 if pool_size == 1 else 8,
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            event.listen(engine, "connect", sqlite_pragmas)
            return engine
        # A server database: the writer keeps its one connection, readers may burst past the pool;
        # pre-ping, since a server may close an idle connection (a restart, an idle timeout).
        return create_engine(
            self.db_url,
            pool_size=pool_size,
            max_overflow=0 if pool_size == 1 else 8,
            pool_pre_ping=True,
        )

    def _remember_writer(self) -> None:
        self._writer_ident = threading.get_ident()
        self._profile = profiling.start("writer")

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._writer.submit(profiling.stop, getattr(self, "_profile", None))
        self._writer.shutdown()
        self._write_engine.dispose()
        self._read_engine.dispose()

    # -- plumbing ---------------------------------------------------------------------------
    def _run_write(self, fn: Callable[[Session], T]) -> T:
        try:
            with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
                return fn(session)
        except (OperationalError, DBAPIError, OSError) as exc:
            problem = storage_problem(exc)
            if problem is None:
                raise
            raise StorageError(f"cannot write the database {self._where()}: {problem}") from exc

    def _run_group(self, items: Sequence[Callable[[Session], Any]]) -> list[Outcome]:
        """Grouped writes in ONE transaction, each in its own SAVEPOINT: one item's failure (an
        unknown trial, bad data) rolls back that item only. A lone item runs as an urgent write
        does (no savepoint). A full or failing disk fails the whole group (:class:`StorageError`).
        """
        if len(items) == 1:
            try:
                return [Outcome(self._run_write(items[0]))]
            except StorageError:
                raise
            except Exception as exc:
                return [Outcome(error=exc)]

        def group(session: Session) -> list[Outcome]:
            if self._is_sqlite:  # pysqlite opens no transaction before a SAVEPOINT, whose RELEASE
                session.connection().exec_driver_sql("BEGIN")  # would then commit each item alone
            outcomes = []
            for item in items:
                try:
                    with session.begin_nested():
                        outcomes.append(Outcome(item(session)))
                except (OperationalError, DBAPIError, OSError) as exc:
                    if storage_problem(exc) is not None:
                        raise
                    outcomes.append(Outcome(error=exc))
                except Exception as exc:
                    outcomes.append(Outcome(error=exc))
            return outcomes

        return self._run_write(group)

    def _where(self) -> str:
        return self._write_engine.url.database or self.db_url if self._is_sqlite else masked_url(self.db_url)

    def make_room(self) -> bool:
        """After a :class:`StorageError`: free the reserve and fold the WAL into the database.

        Returns True when something was freed (a write may now succeed). Blocking.
        """
        freed = False
        if self.reserve is not None and self.reserve.exists():
            with contextlib.suppress(OSError):
                self.reserve.unlink()
                freed = True
        if self._is_sqlite:

            def truncate_wal() -> bool:
                try:
                    with self._write_engine.connect() as connection:
                        row = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
                        connection.commit()
                    return row is not None and row[0] == 0
                except Exception:
                    return False

            freed = self._writer.submit(truncate_wal).result() or freed
        return freed

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: "ok" for a sound database."""
        if not self._is_sqlite:
            return "ok"
        with self._read_engine.connect() as connection:
            rows = connection.exec_driver_sql("PRAGMA integrity_check").fetchall()
        return "; ".join(str(row[0]) for row in rows)

    def _write(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in one transaction on the writer thread and return its result."""
        if threading.get_ident() == self._writer_ident:
            return self._run_write(fn)
        return self._writer.submit(self._run_write, fn).result()

    def _read(self, fn: Callable[[Session], T]) -> T:
        with Session(self._read_engine) as session:
            return fn(session)

    def submit(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Run a store method on the writer thread; the future resolves with its result."""
        return self._writer.submit(method, *args, **kwargs)

    def submit_grouped(self, fn: Callable[[Session], T]) -> Future[T]:
        """Run ``fn`` in a transaction shared with the other grouped writes queued with it, after
        every urgent write (:meth:`submit`, :meth:`_write`) queued before it runs. For writes
        that come by the thousand and may wait (metric ingests); the future resolves once stored.
        """
        return self._writer.submit_grouped(fn)

    def _write_grouped(self, fn: Callable[[Session], T]) -> T:
        """:meth:`submit_grouped`, waited for; on the writer thread itself, a plain write."""
        if threading.get_ident() == self._writer_ident:
            return self._run_write(fn)
        return self.submit_grouped(fn).result()

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Await a store method from the event loop without blocking it."""
        return await asyncio.wrap_future(self.submit(method, *args, **kwargs))
