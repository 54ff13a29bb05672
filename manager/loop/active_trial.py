"""A trial as the loop sees it while it is WAITING or RUNNING, how its end is judged, and how
the loop names a stored trial to its training service."""

from __future__ import annotations

import asyncio
import enum
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from manager.store import TrialRecord
from manager.training.base import TrialExit, TrialProcess, TrialSpec, last_line
from trials import env
from trials.status import TrialStatus

if TYPE_CHECKING:
    from manager.config import ExperimentConfig

NO_FINAL_ADOPTED = "ended without a final result (re-adopted after a daemon restart: exit status unknown)"


class TrialPhase(enum.Enum):
    """Where a trial stands in the loop (its stored status says WAITING or RUNNING)."""

    QUEUED = "queued"  # no process yet: waits for its GPUs, first come first served
    LAUNCHED = "launched"  # its task starts, follows and records the process (also an adopted one)


@dataclass(frozen=True)
class TrialEnd:
    """How a trial ends: its status and the reason shown with it."""

    status: TrialStatus
    reason: str | None


@dataclass
class ActiveTrial:
    """A WAITING or RUNNING trial: its record, its phase and what its watcher has learned."""

    record: TrialRecord
    phase: TrialPhase = TrialPhase.QUEUED
    task: asyncio.Task[None] | None = None
    #: Set once, when the loop ends the trial itself (a cancel, a stop, a limit): that is its end.
    ending: TrialEnd | None = None
    waiting_reason: str | None = None
    gpus: tuple[int, ...] = ()
    offset: int = 0  # of its metric channel, stored with the metrics
    has_final: bool = False
    final_is_nan: bool = False
    return_slot: bool = False  # its end gives its place in maxTrialNumber back
    notes: list[str] = field(default_factory=list)  # shown as the reason of a trial that succeeded
    ingest_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tail_stop: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def id(self) -> str:
        return self.record.id

    @classmethod
    def adopted(cls, record: TrialRecord) -> ActiveTrial:
        """A RUNNING trial an earlier daemon started, picked up where that daemon stopped reading."""
        return cls(
            record,
            gpus=record.gpus,
            offset=record.metrics_offset,
            has_final=record.final_metric_data is not None,
        )

    def launch(self, task: asyncio.Task[None]) -> None:
        self.phase = TrialPhase.LAUNCHED
        self.task = task

    def request_end(self, end: TrialEnd, return_slot: bool = False) -> None:
        """The loop ends this trial (the first reason given counts)."""
        if self.ending is None:
            self.ending = end
            self.return_slot = return_slot

    def judge(self, exit_: TrialExit) -> TrialEnd:
        """The trial's status from how its process ended and what it reported."""
        if self.ending is not None:
            return self.ending
        if exit_.lost:  # its machine died, not the trial: the place in maxTrialNumber goes back
            self.return_slot = True
            return TrialEnd(TrialStatus.FAILED, exit_.reason)
        if not exit_.observed:  # adopted: its exit status is unknown, its result decides
            if not self.has_final:
                return TrialEnd(TrialStatus.FAILED, NO_FINAL_ADOPTED)
            return TrialEnd(TrialStatus.SUCCEEDED, self._notes("re-adopted after a daemon restart"))
        if not exit_.succeeded:
            return TrialEnd(TrialStatus.FAILED, self._failure_reason(exit_))
        if not self.has_final:
            return TrialEnd(TrialStatus.FAILED, "no final result")
        return TrialEnd(TrialStatus.SUCCEEDED, self._notes())

    def _failure_reason(self, exit_: TrialExit) -> str | None:
        """The exit, with a hint: the last line of stderr, or who sends a SIGKILL we did not send."""
        reason = exit_.reason
        if exit_.signal == signal.SIGKILL:
            return f"{reason} (SIGKILL, not sent by nasctl: often the out-of-memory killer)"
        last = last_line(self.record.trial_dir / env.STDERR_FILE_NAME)
        return f"{reason}: {last}" if last and reason else reason

    def _notes(self, *extra: str) -> str | None:
        notes = [*extra, *self.notes]
        if self.final_is_nan:
            notes.insert(0, "the final result is NaN")
        return "; ".join(notes) or None


def trial_spec(
    config: ExperimentConfig, record: TrialRecord, gpus: tuple[int, ...] | None = None
) -> TrialSpec:
    """What the training service needs to start (or find again) the trial ``record``."""
    return TrialSpec(
        trial_id=record.id,
        experiment_id=record.experiment_id,
        sequence_id=record.sequence_id,
        command=config.trial_command,
        working_dir=config.trial_code_directory,
        trial_dir=record.trial_dir,
        gpus=record.gpus if gpus is None else gpus,
    )


def stored_process(record: TrialRecord) -> TrialProcess | None:
    """The process the store says runs ``record`` (None when it never started)."""
    if record.pid is None or record.pid_create_time is None:
        return None
    return TrialProcess(record.id, record.pid, record.pid_create_time)
