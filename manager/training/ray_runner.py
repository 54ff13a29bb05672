"""The Ray actor that runs one trial on a cluster node (the daemon's side is :mod:`manager.training.ray`).

This module runs ON THE NODE, where nasctl need not be installed: the daemon ships it by value
(``cloudpickle.register_pickle_by_value``), so it imports the standard library only (and Ray,
which every node has, lazily inside the actor). One actor per trial, named
``<experimentId>.<trialId>`` and detached, so it outlives a daemon that crashes; recovery finds it
by name.

The trial's process starts in its own session, cwd = trialCodeDirectory as unpacked on this node
(the daemon zips it into Ray's object store once per content; a node unpacks each content once,
under its temp dir: Ray's own ``runtime_env`` working_dir takes a local folder only per job,
and one daemon serves many experiments), with stdout, stderr and metrics.jsonl in a node-local folder that the
daemon copies back by reading byte ranges (the cluster has no shared filesystem). The trial's
own output folder (``NASCTL_OUTPUT_DIR``) lies in that folder too and is not copied back: it
goes with the folder when the trial ends, so a Ray trial keeps what must outlive it on storage
the cluster shares. A kill reaches
the whole tree: SIGTERM to the group, to every descendant (parent chains in /proc) and to every
process whose environment carries this trial's id (that catches a grandchild that made its own
session and lost its parent), a grace period, then SIGKILL. ``ray.kill`` of the actor does not
reach those, so the daemon uses it only as the backstop.

Exactly-once launch: an actor runs its calls on one event loop, and ``start`` checks the claim
again right before it spawns the process with no ``await`` in between, so ``claim_unstarted``
(recovery's question "did a start run?") answers True only if the command never runs; once
claimed, ``start`` is refused forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

#: The names trials/env.py defines (copied: this module may not import nasctl; a test compares).
TRIAL_ID_VAR = "NASCTL_TRIAL_ID"
EXPERIMENT_ID_VAR = "NASCTL_EXPERIMENT_ID"
TRIAL_DIR_VAR = "NASCTL_TRIAL_DIR"
OUTPUT_DIR_VAR = "NASCTL_OUTPUT_DIR"
OUTPUT_DIR_NAME = "output"
PARAMETER_FILE_VAR = "NASCTL_PARAMETER_FILE"
PARAMETER_FILE_NAME = "parameter.json"
STREAMS = ("stdout", "stderr", "metrics.jsonl")
SHELL = "/bin/sh"
#: Plain words mean the same to sh as to a split on spaces (the local service's rule).
_PLAIN_COMMAND = re.compile(r"[A-Za-z0-9_./:,+@%=-]+(?: +[A-Za-z0-9_./:,+@%=-]+)*")

NOT_STARTED = "not started"
RUNNING = "running"
ENDED = "ended"


def command_argv(command: str, cwd: Path, path: str | None) -> tuple[list[str], bool]:
    """``(argv, via_shell)``: plain words naming a program run directly, anything else via ``sh -c``
    (same rule as :func:`manager.training.local.command_argv`; repeated because this file ships alone)."""
    stripped = command.strip()
    if not _PLAIN_COMMAND.fullmatch(stripped):
        return [SHELL, "-c", command], True
    words = stripped.split()
    program = words[0]
    if "/" in program:
        candidate = Path(program) if os.path.isabs(program) else cwd / program
        found = str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    else:
        found = shutil.which(program, path=path)
    if "=" in program or found is None or not os.path.isabs(found):
        return [SHELL, "-c", command], True
    return words, False


class TrialRunner:
    """One trial's process on this node; see the module docstring. Every method is async so the
    actor is an asyncio actor: ``wait`` may hang while ``read``/``kill`` are answered."""

    def __init__(self, experiment_id: str, trial_id: str, kill_grace: float = 5.0) -> None:
        self.experiment_id = experiment_id
        self.trial_id = trial_id
        self.kill_grace = kill_grace
        self.folder: Path | None = None
        self._claimed = False
        self._identity: dict[str, Any] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._code: int | None = None
        self._ended: asyncio.Event | None = None
        self._start_lock: asyncio.Lock | None = None

    # -- launch --------------------------------------------------------------------------------
    async def start(
        self, command: str, env: dict[str, str], parameter_json: str, code: tuple[str, list[Any]]
    ) -> dict[str, Any]:
        """Start the trial once; a second call returns the same identity.

        ``code`` is (content hash, [ObjectRef of the zipped trialCodeDirectory]): the list keeps
        Ray from fetching the bytes when this node has that content already.
        """
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._identity is None:
                self._refuse_if_claimed()
                cwd = await _unpacked(*code)
                self._refuse_if_claimed()  # no await from here to the spawn
                self._spawn(command, env, parameter_json, cwd)
            assert self._identity is not None
            return self._identity

    def _refuse_if_claimed(self) -> None:
        if self._claimed:
            raise RuntimeError(
                f"trial {self.trial_id}: recovery found this launch unstarted; it never starts"
            )

    def _spawn(self, command: str, env: dict[str, str], parameter_json: str, cwd: Path) -> None:
        folder = Path(tempfile.mkdtemp(prefix=f"nasctl-{self.experiment_id}.{self.trial_id}-"))
        self.folder = folder
        (folder / PARAMETER_FILE_NAME).write_text(parameter_json)
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith("NASCTL_") or k == "NASCTL_HOME"
        }
        environment.setdefault("PYTHONUNBUFFERED", "1")
        environment.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        environment.update(env)
        environment[TRIAL_DIR_VAR] = str(folder)
        # node-local like the rest of the folder: not copied back, gone with it when the trial ends
        (folder / OUTPUT_DIR_NAME).mkdir()
        environment[OUTPUT_DIR_VAR] = str(folder / OUTPUT_DIR_NAME)
        environment[PARAMETER_FILE_VAR] = str(folder / PARAMETER_FILE_NAME)
        gpus = _assigned_gpus()
        environment["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)  # "" for a CPU trial, as local does
        argv, via_shell = command_argv(command, cwd, environment.get("PATH"))
        with (
            open(folder / "stdout", "ab") as out,
            open(folder / "stderr", "ab") as err,
        ):
            (folder / "metrics.jsonl").touch()
            self._process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        pid = self._process.pid
        self._identity = {
            "pid": pid,
            "create_time": _create_time(pid) or time.time(),
            "node_ip": _node_ip(),
            "via_shell": via_shell,
            "gpus": gpus,
            "folder": str(folder),
        }
        loop = asyncio.get_running_loop()
        self._ended = asyncio.Event()
        threading.Thread(target=self._reap, args=(loop,), daemon=True).start()

    async def claim_unstarted(self) -> bool:
        """True (and ``start`` is refused from now on) if ``start`` never ran; False if it did."""
        if self._identity is not None:
            return False
        self._claimed = True
        return True

    # -- state ---------------------------------------------------------------------------------
    async def state(self) -> dict[str, Any]:
        """``{"state": not started | running | ended, "identity": ..., "exit_code": ...}``."""
        if self._identity is None:
            return {"state": NOT_STARTED, "identity": None, "exit_code": None}
        ended = self._ended is not None and self._ended.is_set()
        return {"state": ENDED if ended else RUNNING, "identity": self._identity, "exit_code": self._code}

    async def wait(self) -> int:
        """The exit code once the trial's main process ended (negative: killed by that signal)."""
        if self._ended is None:
            raise RuntimeError(f"trial {self.trial_id} was never started")
        await self._ended.wait()
        assert self._code is not None
        return self._code

    async def read(self, name: str, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes of ``stdout``, ``stderr`` or ``metrics.jsonl`` from ``offset``."""
        if name not in STREAMS:
            raise ValueError(f"stream must be one of {', '.join(STREAMS)}, got {name!r}")
        if self.folder is None:
            return b""
        try:
            with open(self.folder / name, "rb") as file:
                file.seek(offset)
                return file.read(limit)
        except FileNotFoundError:
            return b""

    async def read_many(self, offsets: dict[str, int], limit: int) -> dict[str, bytes]:
        """:meth:`read` for several streams in one call (one round trip per poll of the daemon)."""
        return {name: await self.read(name, offset, limit) for name, offset in offsets.items()}

    # -- ending --------------------------------------------------------------------------------
    async def kill(self, grace: float | None = None) -> int | None:
        """End the trial's whole tree (SIGTERM, ``grace`` s, SIGKILL); returns once its main process ended."""
        if self._process is None or self._ended is None:
            return None
        await self._end_tree(self.kill_grace if grace is None else grace, main=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._ended.wait(), 10)
        return self._code

    async def close(self) -> None:
        """Forget the node folder once the daemon has copied everything (the trial has ended)."""
        if self.folder is not None and (self._ended is None or self._ended.is_set()):
            shutil.rmtree(self.folder, ignore_errors=True)

    def _reap(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._process is not None
        code = self._process.wait()

        def ended() -> None:
            self._code = code
            assert self._ended is not None
            self._ended.set()
            # whatever the main process left behind goes too (no orphans), as the local service does
            loop.create_task(self._end_tree(self.kill_grace, main=False))

        loop.call_soon_threadsafe(ended)

    async def _end_tree(self, grace: float, main: bool) -> None:
        assert self._process is not None
        pid = self._process.pid
        tree = self._tree(pid)
        _signal_group(pid, signal.SIGTERM)
        for other in tree:
            _signal(other, signal.SIGTERM)
        if main and self._process.returncode is None:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        delay = 0.01
        while time.monotonic() < deadline:
            main_running = main and self._ended is not None and not self._ended.is_set()
            if not main_running and not any(_alive(p) for p in tree):
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        survivors = [p for p in {*tree, *self._tree(pid)} if _alive(p)]
        if main and self._ended is not None and not self._ended.is_set():
            _signal(pid, signal.SIGKILL)
        _signal_group(pid, signal.SIGKILL)
        for other in survivors:
            _signal(other, signal.SIGKILL)

    def _tree(self, pid: int) -> set[int]:
        """Descendants of ``pid`` and every process that carries this trial's id in its environment."""
        parents: dict[int, int] = {}
        marked: set[int] = set()
        mark = f"{TRIAL_ID_VAR}={self.trial_id}\0".encode()
        experiment = f"{EXPERIMENT_ID_VAR}={self.experiment_id}\0".encode()
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == me:
                continue
            other = int(entry)
            parent = _parent(other)
            if parent is not None:
                parents[other] = parent
            try:
                with open(f"/proc/{entry}/environ", "rb") as file:
                    environ = b"\0" + file.read()
            except OSError:
                continue
            if b"\0" + mark in environ and b"\0" + experiment in environ:
                marked.add(other)
        found = set(marked)
        for other in parents:
            chain, seen = other, 0
            while chain in parents and seen < 64:
                chain = parents[chain]
                seen += 1
                if chain == pid:
                    found.add(other)
                    break
        found.discard(pid)
        return found


async def _unpacked(digest: str, package: list[Any]) -> Path:
    """This node's copy of the trial code with content ``digest`` (fetched and unpacked once)."""
    root = Path(tempfile.gettempdir()) / "nasctl-code"
    target = root / digest
    if target.is_dir():
        return target
    data: bytes = await package[0]
    root.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=root))
    await asyncio.to_thread(_extract, data, partial)
    try:
        partial.rename(target)
    except OSError:  # another trial on this node unpacked it first
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _extract(data: bytes, folder: Path) -> None:
    """Unpack a zip made by the daemon, keeping executable bits (zipfile itself drops them)."""
    with zipfile.ZipFile(BytesIO(data)) as archive:
        for info in archive.infolist():
            path = Path(archive.extract(info, folder))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                path.chmod(mode)


def _worker_ray() -> Any:
    """Ray, when this runs inside a Ray worker; None elsewhere (a unit test): calling Ray there
    would start a local Ray instance."""
    ray = sys.modules.get("ray")
    return ray if ray is not None and ray.is_initialized() else None


def _assigned_gpus() -> list[str]:
    """The GPUs Ray gave this actor ([] for num_gpus=0: Ray then leaves CUDA_VISIBLE_DEVICES unset)."""
    ray = _worker_ray()
    return [] if ray is None else [str(g) for g in ray.get_gpu_ids()]


def _node_ip() -> str:
    ray = _worker_ray()
    return "127.0.0.1" if ray is None else str(ray.util.get_node_ip_address())


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (which may hold spaces and parentheses)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            data = file.read().decode(errors="replace")
    except OSError:
        return None
    return data[data.rfind(")") + 2 :].split()


def _parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields and len(fields) > 1 else None


def _alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _create_time(pid: int) -> float | None:
    """Start time of ``pid`` in seconds since the epoch, as psutil computes it (boot time + ticks)."""
    fields = _stat_fields(pid)
    try:
        with open("/proc/stat") as file:
            boot = next(float(line.split()[1]) for line in file if line.startswith("btime"))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK") if fields else None
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
