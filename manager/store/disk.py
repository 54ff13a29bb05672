"""Storage that refuses writes: disk full, read-only, failing; in words a person can act on.

A full disk must not silence the daemon: a reserve file of :data:`RESERVE_BYTES` lies next to
the database, and ``Store.make_room`` frees it after a :class:`StorageError` so that the daemon
can still record why it stopped.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

#: Bytes kept free next to the database so that a full disk still lets the daemon record why.
RESERVE_BYTES = 1 << 20
RESERVE_SUFFIX = "-reserve"


class StorageError(RuntimeError):
    """The database cannot be written (disk full, read-only, I/O error); one line for a person."""


#: SQLite's primary result codes that mean "the storage refuses writes", in words.
_SQLITE_STORAGE_CODES = {
    8: "the database is read-only",  # SQLITE_READONLY
    10: "disk I/O error (is the disk full or gone?)",  # SQLITE_IOERR
    13: "the disk is full",  # SQLITE_FULL
    14: "cannot open the database file",  # SQLITE_CANTOPEN
}
_OS_STORAGE_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "a file grew past its size limit",
    errno.EROFS: "the file system is read-only",
    errno.EIO: "disk I/O error",
}

#: PostgreSQL's SQLSTATEs for the same failures (psycopg's ``sqlstate``), on the server's disk.
_POSTGRES_STORAGE_STATES = {
    "53100": "the database server's disk is full",
    "25006": "the database is read-only",
    "58030": "the database server's disk I/O failed",
}


def storage_problem(exc: BaseException) -> str | None:
    """What a storage failure is in words (disk full, read-only, I/O), or None for other errors."""
    if isinstance(exc, OSError):
        return _OS_STORAGE_ERRNOS.get(exc.errno or 0)
    original = getattr(exc, "orig", None)
    code = getattr(original, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _SQLITE_STORAGE_CODES:
        return _SQLITE_STORAGE_CODES[code & 0xFF]
    state = getattr(original, "sqlstate", None)
    if state in _POSTGRES_STORAGE_STATES:
        return _POSTGRES_STORAGE_STATES[state]
    text = str(original if original is not None else exc).lower()
    for needle, words in (
        ("disk is full", "the disk is full"),
        ("readonly", "the database is read-only"),
        ("read-only", "the database is read-only"),
        ("disk i/o error", "disk I/O error (is the disk full or gone?)"),
        ("no space left", "the disk is full"),
    ):
        if needle in text:
            return words
    return None


def make_reserve(path: Path) -> None:
    """Fill ``path`` with :data:`RESERVE_BYTES`, best effort: real blocks (not a sparse file),
    so deleting it frees space."""
    try:
        if path.exists() and path.stat().st_size >= RESERVE_BYTES:
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"\0" * RESERVE_BYTES)
        finally:
            os.close(fd)
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
