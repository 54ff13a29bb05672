"""The local training service: every trial is a ``sh -c`` process on this machine.

A trial's folder ``<experimentDir>/trials/<trialId>/`` holds ``parameter.json`` (the packed
parameter), ``stdout`` and ``stderr`` (the raw streams: the OS writes them to the files, so any
language's output lands there, nothing passes through the daemon) and ``metrics.jsonl`` (the
SDK's records). The process starts in a new session (its own process group) with
cwd = trialCodeDirectory, so a kill reaches everything it started: SIGTERM to the group and to
every descendant (also ones that made their own session), a grace period, then SIGKILL for
whatever is left. Exits are awaited through asyncio's child watcher, never polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from manager.training.base import (
    MetricReport,
    MetricsChunk,
    TrainingService,
    TrialExit,
    TrialProcess,
    TrialSpec,
    parse_metric_line,
)
from trials import env

log = logging.getLogger(__name__)

DEFAULT_KILL_GRACE = 5.0
#: A read of metrics.jsonl takes at most this many bytes; the caller reads again for the rest.
READ_CHUNK_BYTES = 1 << 20
SHELL = "/bin/sh"


def trial_environment(spec: TrialSpec, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a trial: the daemon's own (minus nasctl's variables), the spec's
    extra variables, then the NASCTL_* set and CUDA_VISIBLE_DEVICES ("" for a CPU trial)."""
    source = os.environ if base is None else base
    out = {k: v for k, v in source.items() if not k.startswith("NASCTL_") or k == "NASCTL_HOME"}
    out.setdefault("PYTHONUNBUFFERED", "1")  # so `nasctl trial log` shows prints as they happen
    out.update(spec.env)
    out.update(
        {
            env.EXPERIMENT_ID: spec.experiment_id,
            env.TRIAL_ID: spec.trial_id,
            env.SEQUENCE_ID: str(spec.sequence_id),
            env.TRIAL_DIR: str(spec.trial_dir),
            env.PARAMETER_FILE: str(spec.trial_dir / env.PARAMETER_FILE_NAME),
            env.CUDA_VISIBLE_DEVICES: ",".join(str(g) for g in spec.gpus),
        }
    )
    return out


@dataclass
class _Running:
    spec: TrialSpec
    process: asyncio.subprocess.Process
    pgid: int
    create_time: float
    killing: bool = False
    leftovers: list[psutil.Process] = field(default_factory=list)


class LocalTrainingService(TrainingService):
    """Runs trials as local subprocesses; see the module docstring for the layout."""

    def __init__(self, kill_grace: float = DEFAULT_KILL_GRACE, base_env: Mapping[str, str] | None = None):
        self.kill_grace = kill_grace
        self._base_env = base_env
        self._running: dict[str, _Running] = {}

    async def submit(self, spec: TrialSpec, parameter: Mapping[str, Any]) -> TrialProcess:
        if spec.trial_id in self._running:
            raise RuntimeError(f"trial {spec.trial_id} is already running")
        trial_dir = spec.trial_dir
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / env.PARAMETER_FILE_NAME).write_text(json.dumps(dict(parameter), allow_nan=True))
        (trial_dir / env.METRICS_FILE_NAME).touch()
        if not spec.working_dir.is_dir():
            raise FileNotFoundError(f"trialCodeDirectory {spec.working_dir} does not exist")
        with (
            open(trial_dir / env.STDOUT_FILE_NAME, "wb") as out,
            open(trial_dir / env.STDERR_FILE_NAME, "wb") as err,
        ):
            process = await asyncio.create_subprocess_exec(
                SHELL,
                "-c",
                spec.command,
                cwd=spec.working_dir,
                env=trial_environment(spec, self._base_env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        try:
            create_time = psutil.Process(process.pid).create_time()
        except psutil.Error:  # already gone (and reaped): the clock is close enough
            create_time = time.time()
        self._running[spec.trial_id] = _Running(spec, process, process.pid, create_time)
        return TrialProcess(spec.trial_id, process.pid, create_time)

    async def wait(self, trial_id: str) -> TrialExit:
        running = self._running[trial_id]
        returncode = await running.process.wait()
        if not running.killing:
            # The main process is gone; whatever it left in its group goes too (no orphans).
            _signal_group(running.pgid, signal.SIGTERM)
            asyncio.get_running_loop().call_later(
                self.kill_grace, _signal_group, running.pgid, signal.SIGKILL
            )
        self._running.pop(trial_id, None)
        return TrialExit.from_returncode(returncode, via_shell=True)

    async def kill(self, trial_id: str, grace: float | None = None) -> None:
        running = self._running.get(trial_id)
        if running is None or running.killing:
            if running is not None:
                await running.process.wait()
            return
        running.killing = True
        grace = self.kill_grace if grace is None else grace
        await asyncio.to_thread(
            kill_tree, running.process.pid, running.pgid, grace, running.process.returncode is None
        )
        await running.process.wait()

    def read_metrics(self, spec: TrialSpec, offset: int, final: bool = False) -> MetricsChunk:
        return read_metrics_file(spec.trial_dir / env.METRICS_FILE_NAME, offset, final)

    def running_trials(self) -> list[str]:
        return list(self._running)

    async def close(self) -> None:
        await asyncio.gather(*(self.kill(trial_id) for trial_id in list(self._running)))


# -- process trees ----------------------------------------------------------------------------


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            pass
    return out


def kill_tree(pid: int, pgid: int, grace: float, main_alive: bool = True) -> None:
    """SIGTERM a trial's process group and all descendants of ``pid``, wait up to ``grace``
    seconds, then SIGKILL every one still there. Blocking: run it in a thread.

    The descendants are listed before the first signal, because a child whose parent dies is
    re-parented to init and can no longer be found from ``pid``; those that started their own
    session are not in the group, so they are signalled one by one.
    """
    tree = _descendants(pid) if main_alive else []
    _signal_group(pgid, signal.SIGTERM)
    if main_alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    delay = 0.01
    while time.monotonic() < deadline:
        main_running = main_alive and _pid_alive(pid)
        if not main_running and not _alive(tree):
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    # Anything started during the grace period is a descendant of a survivor.
    survivors = _alive(tree)
    for proc in list(survivors):
        survivors.extend(p for p in _descendants(proc.pid) if p not in survivors)
    if main_alive and _pid_alive(pid):
        survivors.extend(p for p in _descendants(pid) if p not in survivors)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    _signal_group(pgid, signal.SIGKILL)
    for proc in survivors:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(_alive(survivors), timeout=2)


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as ended)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def kill_stale_trial(pid: int, create_time: float, grace: float = DEFAULT_KILL_GRACE) -> bool:
    """Kill a trial left by an earlier daemon if ``pid`` still is that process (same start time).

    Returns True if there was such a process. Blocking: run it in a thread.
    """
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > 0.5:
            return False
        pgid = os.getpgid(pid)
    except (psutil.Error, ProcessLookupError):
        return False
    kill_tree(pid, pgid, grace)
    return True


# -- the metric channel --------------------------------------------------------------------------


def read_metrics_file(path: Path, offset: int, final: bool = False) -> MetricsChunk:
    """Complete records of ``path`` after byte ``offset`` (see :meth:`TrainingService.read_metrics`)."""
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            data = file.read(READ_CHUNK_BYTES + 1)
    except FileNotFoundError:
        return MetricsChunk((), (), offset)
    more = len(data) > READ_CHUNK_BYTES
    data = data[:READ_CHUNK_BYTES]
    end = data.rfind(b"\n") + 1
    if final and not more:
        end = len(data)
    if end == 0:
        if more:  # one line longer than the cap: skip it rather than stall forever
            cut = len(data)
            return MetricsChunk(
                (), (f"metrics.jsonl byte {offset}: record longer than {cut} bytes",), offset + cut, True
            )
        return MetricsChunk((), (), offset)
    reports: list[MetricReport] = []
    invalid: list[str] = []
    position = offset
    for line in data[:end].splitlines(keepends=True):
        text = line.strip()
        if text:
            try:
                reports.append(parse_metric_line(text))
            except ValueError as exc:
                invalid.append(f"metrics.jsonl byte {position}: {exc}")
        position += len(line)
    return MetricsChunk(tuple(reports), tuple(invalid), offset + end, more)
