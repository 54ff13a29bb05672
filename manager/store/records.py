"""What the store's queries return: frozen records, and the conversions from rows to them.

Rows never leave the store package; a record is a plain value any thread may keep.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from manager.store.schema import EventRow, ExperimentRow, TrialRow
from trials.metrics import MetricReport
from trials.status import ExperimentStatus, TrialStatus

T = TypeVar("T")


def now_ms() -> int:
    """A timestamp as records hold them: milliseconds since the epoch, wall clock."""
    return int(time.time() * 1000)


def finite_or_none(value: float | None) -> float | None:
    """A float column's value: SQLite turns NaN into NULL anyway, and infinities sort nowhere useful."""
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class ExperimentRecord:
    id: str
    name: str
    status: ExperimentStatus
    config: Mapping[str, Any]
    search_space: Mapping[str, Any] | None
    created_at: int
    start_time: int | None
    end_time: int | None
    trial_concurrency: int
    max_trial_number: int | None
    max_experiment_duration: float | None
    optimize_mode: str
    tuner_name: str
    elapsed: float
    error: str | None
    experiment_dir: Path
    next_sequence_id: int
    returned_slots: int = 0

    @property
    def trials_started(self) -> int:
        return self.next_sequence_id

    @property
    def budget_used(self) -> int:
        """Trials that count against maxTrialNumber: those started, less the places given back."""
        return self.next_sequence_id - self.returned_slots


@dataclass(frozen=True)
class TrialRecord:
    id: str
    experiment_id: str
    sequence_id: int
    parameter_id: int
    parameters: Mapping[str, Any]
    status: TrialStatus
    created_at: int
    start_time: int | None
    end_time: int | None
    exit_code: int | None
    signal: int | None
    reason: str | None
    waiting_reason: str | None
    final_metric: float | None
    final_metric_data: Any
    gpus: tuple[int, ...]
    trial_dir: Path
    pid: int | None
    pid_create_time: float | None
    metrics_offset: int
    result_in_checkpoint: bool = False
    end_in_checkpoint: bool = False
    #: When the loop committed its intent to start the trial's process (ms); None before.
    launch_requested: int | None = None
    #: EARLY_STOPPED: the number of intermediate results at which the assessor stopped it.
    stop_step: int | None = None
    #: How its process was started: "warm" or "cold" (local service); None elsewhere or before.
    launch: str | None = None

    def duration(self, now: int | None = None) -> float | None:
        """Seconds from start to end (to now while it runs); None before it starts."""
        if self.start_time is None:
            return None
        end = self.end_time if self.end_time is not None else (now if now is not None else now_ms())
        return max(0, end - self.start_time) / 1000.0


@dataclass(frozen=True)
class MetricRecord:
    id: int
    experiment_id: str
    trial_id: str
    type: str
    sequence: int
    value: Any
    default_value: float | None
    time: int


@dataclass(frozen=True)
class EventRecord:
    id: int
    experiment_id: str | None
    trial_id: str | None
    time: int
    kind: str
    message: str
    data: Any


@dataclass(frozen=True)
class FailureReason:
    """One reason FAILED trials of an experiment share: how many, and one of them to look at."""

    reason: str | None  # None: the trial ended FAILED with no reason recorded
    count: int
    trial_id: str  # one trial with this reason (for ``nasctl log stderr TRIAL``)


@dataclass(frozen=True)
class FailureSummary:
    """Why an experiment's trials failed: the commonest reasons first, and how many failed otherwise."""

    reasons: tuple[FailureReason, ...] = ()
    others: int = 0  # FAILED trials whose reason is not among ``reasons``

    @property
    def total(self) -> int:
        return sum(r.count for r in self.reasons) + self.others


@dataclass(frozen=True)
class TrialPage:
    total: int
    offset: int
    items: tuple[TrialRecord, ...]


@dataclass(frozen=True)
class IngestResult:
    """What one :meth:`Store.ingest_metrics` call stored."""

    applied: bool  # False when the offset had moved (another reader got there first): nothing stored
    stored: int
    final: MetricReport | None  # the trial's first FINAL record, when this call stored it
    offset: int


@dataclass(frozen=True)
class FinalMetrics:
    """The last chunk of an ended trial's metric channel, stored with its end in one transaction
    (``Store.finish_trial(metrics=...)``) as ``Store.ingest_metrics`` would store it alone."""

    expected_offset: int
    new_offset: int
    reports: tuple[MetricReport, ...]
    invalid: tuple[str, ...] = ()

    @property
    def intermediate(self) -> int:
        """How many intermediate results it holds."""
        return sum(not report.is_final for report in self.reports)


@dataclass(frozen=True)
class TunerCheckpoint:
    """A tuner's saved state, and the trials whose result / end it has already learned."""

    state: Any
    results: tuple[str, ...] = ()
    ends: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrialChoices:
    """The little of a trial the dashboard's choice views read (``Store.trial_choices``)."""

    sequence_id: int
    trial_id: str
    status: str
    metric: float | None  # finite final metric, else None
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class FinalResults:
    """Final results as ``(sequence id, trial id, value)`` rows, and the cursor to ask after them."""

    rows: tuple[tuple[int, str, float | None], ...]
    cursor: int


# -- rows to records ------------------------------------------------------------------------------


def maybe(row: Any, convert: Callable[[Any], T]) -> T | None:
    """``convert(row)``, or None for no row."""
    return convert(row) if row is not None else None


def experiment_record(row: ExperimentRow) -> ExperimentRecord:
    return ExperimentRecord(
        id=row.id,
        name=row.name,
        status=ExperimentStatus(row.status),
        config=row.config,
        search_space=row.search_space,
        created_at=row.created_at,
        start_time=row.start_time,
        end_time=row.end_time,
        trial_concurrency=row.trial_concurrency,
        max_trial_number=row.max_trial_number,
        max_experiment_duration=row.max_experiment_duration,
        optimize_mode=row.optimize_mode,
        tuner_name=row.tuner_name,
        elapsed=row.elapsed or 0.0,
        error=row.error,
        experiment_dir=Path(row.experiment_dir),
        next_sequence_id=row.next_sequence_id,
        returned_slots=row.returned_slots or 0,
    )


def trial_record(row: TrialRow) -> TrialRecord:
    return TrialRecord(
        id=row.id,
        experiment_id=row.experiment_id,
        sequence_id=row.sequence_id,
        parameter_id=row.parameter_id,
        parameters=row.parameters,
        status=TrialStatus(row.status),
        created_at=row.created_at,
        start_time=row.start_time,
        end_time=row.end_time,
        exit_code=row.exit_code,
        signal=row.signal,
        reason=row.reason,
        waiting_reason=row.waiting_reason,
        final_metric=row.final_metric,
        final_metric_data=row.final_metric_data,
        gpus=tuple(row.gpus or ()),
        trial_dir=Path(row.trial_dir),
        pid=row.pid,
        pid_create_time=row.pid_create_time,
        metrics_offset=row.metrics_offset,
        result_in_checkpoint=bool(row.result_in_checkpoint),
        end_in_checkpoint=bool(row.end_in_checkpoint),
        launch_requested=row.launch_requested,
        stop_step=row.stop_step,
        launch=row.launch,
    )


def event_record(row: EventRow) -> EventRecord:
    return EventRecord(
        id=row.id,
        experiment_id=row.experiment_id,
        trial_id=row.trial_id,
        time=row.time,
        kind=row.kind,
        message=row.message,
        data=row.data,
    )
