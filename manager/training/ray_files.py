"""The daemon's side of a Ray trial's files: the trial code zipped for the object store, the
copies of a node's output in the trial folder, and the launch file that outlives the actor.

Used by :mod:`manager.training.ray`; plain files and zip, no Ray.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from manager.training.base import TrialProcess
from trials import env

#: In the trial folder: the identity (and exit code) of a launch whose actor is gone.
LAUNCH_FILE_NAME = ".ray_launch.json"
#: The streams a node keeps and the daemon copies, under the local service's names.
STREAMS = (env.STDOUT_FILE_NAME, env.STDERR_FILE_NAME, env.METRICS_FILE_NAME)
#: Trial code travels through the object store; more than this is data, not code.
MAX_CODE_BYTES = 512 << 20
_SKIPPED_CODE = {"__pycache__", ".git", ".hg", ".svn"}
_copy_locks_guard = threading.Lock()
_copy_locks: dict[Path, threading.Lock] = {}


def fresh_trial_dir(trial_dir: Path, parameter_json: str) -> None:
    """A launch (again) starts with empty copies and no launch file."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / env.PARAMETER_FILE_NAME).write_text(parameter_json)
    for name in STREAMS:
        (trial_dir / name).write_bytes(b"")
    (trial_dir / LAUNCH_FILE_NAME).unlink(missing_ok=True)


def code_files(folder: Path) -> list[Path]:
    """The files of a trial code folder, in a stable order (caches and VCS metadata left out)."""
    out = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if any(part in _SKIPPED_CODE for part in parts) or not path.is_file():
            continue
        out.append(path)
    return out


def folder_signature(folder: Path) -> str:
    """Names, sizes and modification times: a cheap key for "the same content as before"."""
    digest = hashlib.sha256()
    for path in code_files(folder):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def zip_folder(folder: Path) -> tuple[bytes, str]:
    """The folder as a zip (modes kept) and the hash of its content."""
    buffer = io.BytesIO()
    digest = hashlib.sha256()
    total = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in code_files(folder):
            name = str(path.relative_to(folder))
            data = path.read_bytes()
            total += len(data)
            if total > MAX_CODE_BYTES:
                raise ValueError(
                    f"trialCodeDirectory {folder} holds more than {MAX_CODE_BYTES >> 20} MiB; "
                    "a Ray trial gets it through the object store: keep data elsewhere"
                )
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (path.stat().st_mode & 0o777) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
            digest.update(f"{name}\0{info.external_attr}\0{len(data)}\0".encode())
            digest.update(data)
    return buffer.getvalue(), digest.hexdigest()[:32]


def copy_lock(trial_dir: Path) -> threading.Lock:
    with _copy_locks_guard:
        return _copy_locks.setdefault(Path(trial_dir), threading.Lock())


def sizes(trial_dir: Path) -> dict[str, int]:
    out = {}
    for name in STREAMS:
        try:
            out[name] = (trial_dir / name).stat().st_size
        except FileNotFoundError:
            out[name] = 0
    return out


def append(trial_dir: Path, chunks: Mapping[str, bytes]) -> None:
    trial_dir.mkdir(parents=True, exist_ok=True)
    for name, data in chunks.items():
        if data:
            with open(trial_dir / name, "ab") as file:
                file.write(data)


def write_launch_file(trial_dir: Path, process: TrialProcess, code: int | None) -> None:
    trial_dir.mkdir(parents=True, exist_ok=True)
    partial = trial_dir / (LAUNCH_FILE_NAME + ".tmp")
    partial.write_text(
        json.dumps({"pid": process.pid, "create_time": process.create_time, "exit_code": code})
    )
    partial.replace(trial_dir / LAUNCH_FILE_NAME)


def read_launch_file(trial_dir: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((trial_dir / LAUNCH_FILE_NAME).read_text()))
    except (OSError, ValueError):
        return None
