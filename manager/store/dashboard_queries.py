"""What the dashboard's views read: every trial's choices in brief, a fingerprint that says
when they changed, and the final results as rows with a cursor for live polling.

Each is one query over the trials table (or the metrics table's (experiment, id) index), never
over the metrics of every trial; what the dashboard computes from them is ``manager.views``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Text, func, select, type_coerce
from sqlalchemy.orm import Session

from manager.store.database import Database
from manager.store.records import FinalResults, TrialChoices, finite_or_none
from manager.store.schema import MetricRow, TrialRow
from manager.store.trial_pages import trial_total
from trials.metrics import FINAL

#: Metric ids one incremental :meth:`DashboardQueries.final_results` call may scan.
MAX_SCAN = 1_000_000


class DashboardQueries(Database):
    """The dashboard's part of ``Store``."""

    def trial_choices(self, experiment_id: str) -> list[TrialChoices]:
        """Every trial's sequence id, id, status, finite final metric and parameters, in order."""
        query = (
            select(
                TrialRow.sequence_id, TrialRow.id, TrialRow.status, TrialRow.final_metric, TrialRow.parameters
            )
            .where(TrialRow.experiment_id == experiment_id)
            .order_by(TrialRow.sequence_id)
        )

        def work(session: Session) -> list[TrialChoices]:
            return [
                TrialChoices(seq, tid, status, finite_or_none(metric), params)
                for seq, tid, status, metric, params in session.execute(query)
            ]

        return self._read(work)

    def trial_fingerprint(self, experiment_id: str) -> tuple[int, int, int | None]:
        """(trials, ended trials, newest metric id): moves with every new trial, stored result
        and trial that ends; three index lookups, no COUNT over every trial."""

        def work(session: Session) -> tuple[int, int, int | None]:
            connection = session.connection()
            count = trial_total(connection, experiment_id)  # the ended ones: those less the (few) unended
            unended = connection.scalar(
                select(func.count())
                .select_from(TrialRow)
                .where(TrialRow.experiment_id == experiment_id, TrialRow.end_time.is_(None))
            )
            latest = connection.scalar(
                select(func.max(MetricRow.id)).where(MetricRow.experiment_id == experiment_id)
            )
            return (count, count - (unended or 0), latest)

        return self._read(work)

    def final_results(self, experiment_id: str, since: int = 0) -> FinalResults:
        """Final results (a value None when NaN or infinite) and the cursor to ask after them.

        ``since=0`` gives every trial that has a final result (from the trials table); a later
        call with the returned cursor gives only the final results stored after it (from the
        metrics table, through its (experiment, id) index), so live polling stays cheap at any size.
        """
        latest = select(func.max(MetricRow.id)).where(MetricRow.experiment_id == experiment_id)

        def snapshot(session: Session) -> FinalResults:
            cursor = session.scalar(latest) or 0
            reported = type_coerce(TrialRow.final_metric_data, Text)  # JSON null and SQL NULL: no result
            query = (
                select(TrialRow.sequence_id, TrialRow.id, TrialRow.final_metric)
                .where(TrialRow.experiment_id == experiment_id, reported.is_not(None), reported != "null")
                .order_by(TrialRow.sequence_id)
            )
            return _results(session.execute(query), cursor)

        def newer(session: Session) -> FinalResults:
            top = min(session.scalar(latest) or since, since + MAX_SCAN)
            query = (
                select(TrialRow.sequence_id, MetricRow.trial_id, MetricRow.default_value)
                .join(TrialRow, TrialRow.id == MetricRow.trial_id)
                .where(
                    MetricRow.experiment_id == experiment_id,
                    MetricRow.id > since,
                    MetricRow.id <= top,
                    MetricRow.type == FINAL,
                )
                .order_by(MetricRow.id)
            )
            return _results(session.execute(query), max(top, since))

        return self._read(snapshot if since <= 0 else newer)


def _results(rows: Iterable[Sequence[Any]], cursor: int) -> FinalResults:
    return FinalResults(tuple((row[0], row[1], finite_or_none(row[2])) for row in rows), cursor)
