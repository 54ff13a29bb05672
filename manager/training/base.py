"""What a training service is: it runs one trial as a process somewhere and reports its end.

The experiment loop needs four things from any platform (local subprocesses, Ray, ...): start a
trial, await its end, kill it with everything it started, and read the metrics it reported.
The values that cross this door are frozen dataclasses; the metric record format is the one
:mod:`trials.reporting` writes (one JSON object a line).
"""

from __future__ import annotations

import abc
import enum
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from trials import env
from trials.metrics import MetricReport

#: Bytes a log is sent in when it is streamed whole.
LOG_CHUNK_BYTES = 64 * 1024
LOG_STREAMS = (env.STDOUT_FILE_NAME, env.STDERR_FILE_NAME)


@dataclass(frozen=True)
class TrialSpec:
    """Everything needed to start one trial.

    ``env`` holds extra variables; the service adds the NASCTL_* ones and CUDA_VISIBLE_DEVICES
    from the other fields. ``gpus`` empty means a CPU trial (CUDA_VISIBLE_DEVICES="").
    """

    trial_id: str
    experiment_id: str
    sequence_id: int
    command: str
    working_dir: Path
    trial_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    gpus: tuple[int, ...] = ()


@dataclass(frozen=True)
class TrialProcess:
    """A started trial: enough to find the process again after a daemon restart."""

    trial_id: str
    pid: int
    create_time: float  # psutil's create_time, so a reused pid is not mistaken for the trial
    #: "warm" (forked from a server with its imports done) or "cold"; None where it does not apply.
    launch: str | None = None


class LaunchState(enum.Enum):
    """Where a trial stands whose launch was committed but whose process the store never got."""

    NOT_STARTED = "not started"  # none of its code ran, and none will: launch it again
    RUNNING = "running"  # its process runs: adopt it
    ENDED = "ended"  # it ran and ended: settle it from what it left


@dataclass(frozen=True)
class FoundLaunch:
    """The answer of :meth:`TrainingService.find_launch`; ``process`` is set unless NOT_STARTED."""

    state: LaunchState
    process: TrialProcess | None = None


@dataclass(frozen=True)
class TrialExit:
    """How a trial's process ended: an exit code, or the signal that killed it, and in words.

    ``observed`` is False for a trial adopted after a daemon restart: it was not our child, so
    its exit status is unknown (exit code and signal None) and the caller decides by its result.

    ``lost`` is True when the trial's machine or the service's agent on it died (a Ray node):
    the trial did not fail by itself, its exit status is unknown, and ``reason`` names the
    machine; the loop gives its place in ``maxTrialNumber`` back, as for a stop.
    """

    exit_code: int | None
    signal: int | None
    reason: str | None  # None for a clean exit, else "exit code N" or "killed by signal N"
    observed: bool = True
    lost: bool = False

    @classmethod
    def unobserved(cls) -> TrialExit:
        return cls(None, None, None, observed=False)

    @classmethod
    def from_returncode(cls, returncode: int, via_shell: bool = False) -> TrialExit:
        """From a Popen-style return code (negative: killed by that signal).

        ``via_shell``: the process was ``sh -c``, which reports a child killed by signal N as
        exit code 128+N; that is recorded as the exit code and as the signal.
        """
        if returncode < 0:
            return cls(None, -returncode, f"killed by signal {-returncode}")
        if via_shell and 128 < returncode < 128 + 65:
            return cls(returncode, returncode - 128, f"killed by signal {returncode - 128}")
        return cls(returncode, None, f"exit code {returncode}" if returncode else None)

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and self.signal is None


@dataclass(frozen=True)
class MetricsChunk:
    """Records read from a trial's metric channel, lines that were not records, and where to go on."""

    reports: tuple[MetricReport, ...]
    invalid: tuple[str, ...]
    offset: int
    more: bool = False  # the read stopped at its size cap; read again at once


class TrainingService(abc.ABC):
    """Runs trials somewhere (this machine, a Ray cluster, a simulated clock) and tells when they end.

    Contract (one suite, tests/contracts/test_training_service.py, checks it for every platform):
    - Methods are called from the daemon's event loop; ``submit`` returns once the trial runs,
      ``wait`` resolves when it has ended (awaited, never polled on a tick).
    - ``kill`` ends the trial's whole process tree: SIGTERM, a grace period, then SIGKILL for
      whatever is left. It returns once the trial's main process has ended.
    - ``read_metrics`` returns only complete records after ``offset``; with ``final`` (the
      process has ended) a last unterminated line counts too. Bad lines come back as reasons.
      Reading consumes nothing: the offset is the caller's, stored with the metrics.
    - A trial's stdout and stderr end up in its ``trial_dir`` (the REST API serves them there).
    - Recovery: a trial outlives the daemon that started it. A later service answers from the
      :class:`TrialProcess` the store kept whether it still runs (``is_alive``; a reused pid is
      not the trial), takes it over (``adopt``: then ``wait``, ``kill`` and ``read_metrics``
      work as for its own; the exit status may be unknown: ``TrialExit.observed``), or ends it
      (``kill_stale``).
    - Exactly-once launch: a started trial is findable without the memory of the daemon that
      started it. ``find_launch`` answers for a trial whether ``submit`` started it (it runs, or
      ran and ended: with its :class:`TrialProcess`) or provably never ran any of its code, not
      even now (then ``submit`` may start it again, and its metric channel starts empty).
    - Optional: ``why_waiting`` says why a submitted trial waits for room; ``trim_logs`` keeps a
      trial's logs within the service's size limit; ``close`` releases what the service holds.
    """

    #: The platform hands out GPUs itself (Ray): the loop's allocator of this machine's GPUs stays out.
    assigns_gpus: bool = False

    @abc.abstractmethod
    async def submit(self, spec: TrialSpec, parameter: Mapping[str, Any]) -> TrialProcess:
        """Write the packed ``parameter`` where the trial finds it, and start the trial."""

    @abc.abstractmethod
    async def wait(self, trial_id: str) -> TrialExit:
        """Resolve when the trial's process has ended."""

    @abc.abstractmethod
    async def kill(self, trial_id: str, grace: float | None = None) -> None:
        """End the trial and everything it started; ``grace`` overrides the service's default."""

    @abc.abstractmethod
    def read_metrics(self, spec: TrialSpec, offset: int, final: bool = False) -> MetricsChunk:
        """Records reported after byte ``offset`` of the trial's metric channel."""

    @abc.abstractmethod
    async def is_alive(self, spec: TrialSpec, process: TrialProcess) -> bool:
        """True while ``process`` (as an earlier daemon stored it) still runs this trial."""

    @abc.abstractmethod
    async def adopt(self, spec: TrialSpec, process: TrialProcess) -> bool:
        """Take over a trial an earlier daemon started; False when it no longer runs."""

    @abc.abstractmethod
    async def find_launch(self, spec: TrialSpec) -> FoundLaunch:
        """After a crash: did an earlier ``submit`` of this trial start it? (see the contract)"""

    @abc.abstractmethod
    async def kill_stale(self, spec: TrialSpec, process: TrialProcess) -> bool:
        """End a trial an earlier daemon started, if it still runs; True when there was one."""

    async def why_waiting(self, spec: TrialSpec) -> str | None:
        """Optional: why a trial whose ``submit`` has not returned yet does not run (a platform
        with no room for it now); asked every few seconds while it waits. None: no reason known."""
        return None

    def trim_logs(self, spec: TrialSpec) -> tuple[str, ...]:
        """Keep the trial's logs within bounds; returns one note per log that was cut."""
        return ()

    @property
    def trims_logs(self) -> bool:
        """Whether :meth:`trim_logs` may cut anything: when not, the loop skips the call (a
        thread hop per trial per metric poll, most of the loop's work at 1,000 trials)."""
        return False

    def log_path(self, trial_dir: Path, stream: str) -> Path:
        """Where a trial's ``stdout`` or ``stderr`` is kept."""
        if stream not in LOG_STREAMS:
            raise ValueError(f"log stream must be one of {', '.join(LOG_STREAMS)}, got {stream!r}")
        return Path(trial_dir) / stream

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the service holds (trials still running are the caller's to kill first)."""


class LogAccessError(PermissionError):
    """A log whose path (symlinks followed) leads outside its experiment's folder."""


def open_trial_log(experiment_dir: Path, trial_dir: Path, stream: str) -> BinaryIO | None:
    """A trial's ``stdout`` or ``stderr`` opened for reading; None when it does not exist.

    A trial runs arbitrary code and may replace its log by a symlink (or its folder by one), so
    the file actually opened is checked to lie inside ``experiment_dir``: the check is made on the
    open file itself (``/proc/self/fd``), so swapping a link between check and open gains nothing.
    Raises :class:`LogAccessError` otherwise, and ValueError for an unknown stream.
    """
    if stream not in LOG_STREAMS:
        raise ValueError(f"log stream must be one of {', '.join(LOG_STREAMS)}, got {stream!r}")
    root = os.path.realpath(experiment_dir)
    path = Path(trial_dir) / stream
    if not _inside(os.path.realpath(path), root):
        if not os.path.lexists(path) and _inside(os.path.realpath(trial_dir), root):
            return None
        raise LogAccessError(f"{stream} of this trial leads outside the experiment's folder")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}") if os.path.isdir("/proc/self/fd") else None
        if opened is not None and not _inside(opened, root):
            raise LogAccessError(f"{stream} of this trial leads outside the experiment's folder")
        if not os.path.isfile(f"/proc/self/fd/{fd}") and opened is not None:
            raise LogAccessError(f"{stream} of this trial is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def stream_file(file: BinaryIO) -> Iterator[bytes]:
    """The file's bytes as they were when streaming began (a log may grow meanwhile), then close it."""
    with file:
        left = os.fstat(file.fileno()).st_size
        while left > 0:
            chunk = file.read(min(LOG_CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def last_line(path: Path, limit: int = 200) -> str | None:
    """The last non-empty line of a text file (at most ``limit`` characters), or None."""
    try:
        with open(path, "rb") as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - 4096))
            data = file.read(4096)
    except OSError:
        return None
    lines = [line.strip() for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if not lines:
        return None
    return lines[-1] if len(lines[-1]) <= limit else lines[-1][: limit - 3] + "..."


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
