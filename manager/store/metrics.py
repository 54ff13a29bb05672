"""Metrics: stored exactly once as they are read from a trial, and read back in id order.

A value is stored once: ``value`` as JSON (a number or the trial's dict, NaN allowed) and
``default_value`` as a float for sorting. SQLite turns a NaN float into NULL, so a NaN metric
sorts with the missing ones; its JSON keeps the NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from manager.store.database import Database
from manager.store.events import EventKind, log_event
from manager.store.records import IngestResult, MetricRecord, finite_or_none
from manager.store.schema import MetricRow
from manager.store.statements import INGEST_STATE, INSERT_METRIC, METRIC_COLUMNS, UPDATE_TRIAL
from trials.metrics import MetricReport


def store_metrics(
    session: Session,
    trial_id: str,
    expected_offset: int,
    new_offset: int,
    reports: Sequence[MetricReport],
    invalid: Sequence[str] = (),
) -> IngestResult:
    """Store one chunk of a trial's metric channel in the caller's transaction (see
    :meth:`MetricQueries.ingest_metrics`)."""
    connection = session.connection()
    trial = connection.execute(INGEST_STATE, {"b_trial": trial_id}).first()
    if trial is None:
        raise KeyError(f"trial {trial_id} not found")
    if trial.metrics_offset != expected_offset:
        return IngestResult(False, 0, None, trial.metrics_offset)
    final: MetricReport | None = None
    changes: dict[str, Any] = {"metrics_offset": new_offset}
    if reports:  # one executemany, not one ORM object per record: 100,000 records take a second
        connection.execute(
            INSERT_METRIC,
            [
                {
                    "experiment_id": trial.experiment_id,
                    "trial_id": trial_id,
                    "type": report.kind,
                    "sequence": report.sequence,
                    "value": report.value,
                    "default_value": finite_or_none(report.default_value),
                    "time": report.time_ms,
                }
                for report in reports
            ],
        )
    for report in reports:
        if report.is_final:
            if trial.no_final and final is None:
                final = report
                changes["final_metric_data"] = report.value
                changes["final_metric"] = finite_or_none(report.default_value)
            else:
                log_event(
                    session,
                    trial.experiment_id,
                    trial_id,
                    EventKind.INVALID_METRIC,
                    "a second final result was recorded but ignored: the first one counts",
                    {"value": report.value},
                )
    for reason in invalid:
        log_event(session, trial.experiment_id, trial_id, EventKind.INVALID_METRIC, reason, None)
    connection.execute(UPDATE_TRIAL, {"b_trial": trial_id, **changes})
    return IngestResult(True, len(reports), final, new_offset)


class MetricQueries(Database):
    """The metrics' part of ``Store``."""

    def ingest_metrics(
        self,
        trial_id: str,
        *,
        expected_offset: int,
        new_offset: int,
        reports: Sequence[MetricReport],
        invalid: Sequence[str] = (),
    ) -> IngestResult:
        """Store the records read from ``expected_offset`` up to ``new_offset`` atomically.

        The offset moves only if it still is ``expected_offset``, so a chunk is never stored
        twice, and only together with its records, so none is lost. The first FINAL record sets
        the trial's final metric; a later FINAL is kept as a metric and logged as an event.
        Other trials' chunks queued with it share its transaction (each in its own savepoint).
        """
        return self._write_grouped(
            lambda session: store_metrics(session, trial_id, expected_offset, new_offset, reports, invalid)
        )

    def submit_ingest(
        self,
        trial_id: str,
        *,
        expected_offset: int,
        new_offset: int,
        reports: Sequence[MetricReport],
        invalid: Sequence[str] = (),
    ) -> Future[IngestResult]:
        """:meth:`ingest_metrics` without waiting: queued behind launches and ends, grouped with
        the other ingests queued with it (see ``Database.submit_grouped``)."""
        return self.submit_grouped(
            lambda session: store_metrics(session, trial_id, expected_offset, new_offset, reports, invalid)
        )

    def metrics_since(self, experiment_id: str, since: int = 0, limit: int = 1000) -> list[MetricRecord]:
        """Metrics with ``id > since`` in id order: incremental polling."""
        query = (
            select(*METRIC_COLUMNS)
            .where(MetricRow.experiment_id == experiment_id, MetricRow.id > since)
            .order_by(MetricRow.id)
            .limit(limit)
        )
        return self._read(lambda s: [MetricRecord(*row) for row in s.execute(query)])

    def trial_metrics(self, trial_id: str, kind: str | None = None) -> list[MetricRecord]:
        query = select(*METRIC_COLUMNS).where(MetricRow.trial_id == trial_id).order_by(MetricRow.id)
        if kind is not None:
            query = query.where(MetricRow.type == kind)
        return self._read(lambda s: [MetricRecord(*row) for row in s.execute(query)])
