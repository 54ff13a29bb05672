"""What a training service is: it runs one trial as a process somewhere and reports its end.

The experiment loop needs four things from any platform (local subprocesses, Ray, ...): start a
trial, await its end, kill it with everything it started, and read the metrics it reported.
The values that cross this door are frozen dataclasses; the metric record format is the one
:mod:`trials.reporting` writes (one JSON object a line).
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trials import env

PERIODICAL = "PERIODICAL"
FINAL = "FINAL"
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


@dataclass(frozen=True)
class TrialExit:
    """How a trial's process ended: an exit code, or the signal that killed it, and in words."""

    exit_code: int | None
    signal: int | None
    reason: str | None  # None for a clean exit, else "exit code N" or "killed by signal N"

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
class MetricReport:
    """One record a trial reported: ``value`` as reported, ``default_value`` the number tuners use."""

    kind: str  # PERIODICAL or FINAL
    sequence: int
    value: float | int | dict[str, Any]
    default_value: float
    time_ms: int

    @property
    def is_final(self) -> bool:
        return self.kind == FINAL


@dataclass(frozen=True)
class MetricsChunk:
    """Records read from a trial's metric channel, lines that were not records, and where to go on."""

    reports: tuple[MetricReport, ...]
    invalid: tuple[str, ...]
    offset: int
    more: bool = False  # the read stopped at its size cap; read again at once


class TrainingService(abc.ABC):
    """Runs trials as processes and tells when they end.

    Contract:
    - Methods are called from the daemon's event loop; ``submit`` returns once the process
      exists, ``wait`` resolves when it has ended (awaited, never polled on a tick).
    - ``kill`` ends the trial's whole process tree: SIGTERM, a grace period, then SIGKILL for
      whatever is left. It returns once the trial's main process has ended.
    - ``read_metrics`` returns only complete records after ``offset``; with ``final`` (the
      process has ended) a last unterminated line counts too. Bad lines come back as reasons.
    """

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

    def log_path(self, trial_dir: Path, stream: str) -> Path:
        """Where a trial's ``stdout`` or ``stderr`` is kept."""
        if stream not in LOG_STREAMS:
            raise ValueError(f"log stream must be one of {', '.join(LOG_STREAMS)}, got {stream!r}")
        return Path(trial_dir) / stream

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the service holds (trials still running are the caller's to kill first)."""


def parse_metric_line(line: bytes) -> MetricReport:
    """One record of metrics.jsonl; ValueError with a reason a person can read."""
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a JSON record ({exc})") from None
    if not isinstance(record, dict):
        raise ValueError("a record must be a JSON object")
    kind = record.get("type")
    if kind not in (PERIODICAL, FINAL):
        raise ValueError(f"type must be {PERIODICAL} or {FINAL}, got {kind!r}")
    sequence = record.get("sequence", 0)
    if not isinstance(sequence, int) or isinstance(sequence, bool):
        raise ValueError(f"sequence must be a whole number, got {sequence!r}")
    value = record.get("value")
    default = metric_default(value)
    when = record.get("time")
    if isinstance(when, (int, float)) and not isinstance(when, bool) and math.isfinite(when):
        time_ms = int(when * 1000)
    else:
        raise ValueError(f"time must be seconds since the epoch, got {when!r}")
    return MetricReport(kind, sequence, value, default, time_ms)


def metric_default(value: Any) -> float:
    """The number of a metric: itself, or the ``default`` of a dict metric (NaN allowed)."""
    if isinstance(value, dict):
        if "default" not in value:
            raise ValueError(f"a dict metric needs a 'default' key, got keys {sorted(value)}")
        value = value["default"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"metric must be a number or a dict with a numeric 'default', got {value!r}")
    return float(value)
