"""The append-only event log: status changes, errors, invalid metrics, changed limits.

Every write that changes a status logs its event in the same transaction (:func:`log_event`),
so the log and the state never disagree.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from manager.store.database import Database
from manager.store.records import EventRecord, event_record, now_ms
from manager.store.schema import EventRow, ExperimentRow
from manager.store.statements import INSERT_EVENT


class EventKind(str, enum.Enum):
    """Kinds of rows in the append-only event log."""

    EXPERIMENT_STATUS = "EXPERIMENT_STATUS"
    TRIAL_STATUS = "TRIAL_STATUS"
    ERROR = "ERROR"
    INVALID_METRIC = "INVALID_METRIC"
    LIMITS_CHANGED = "LIMITS_CHANGED"
    DAEMON_RESTARTED = "DAEMON_RESTARTED"
    LOG_TRIMMED = "LOG_TRIMMED"


def log_event(
    session: Session,
    experiment_id: str | None,
    trial_id: str | None,
    kind: EventKind,
    message: str,
    data: Any,
) -> None:
    """Append one event in the caller's transaction."""
    session.connection().execute(
        INSERT_EVENT,
        {
            "experiment_id": experiment_id,
            "trial_id": trial_id,
            "time": now_ms(),
            "kind": kind.value,
            "message": message,
            "data": data,
        },
    )


class EventQueries(Database):
    """The event log's part of ``Store``."""

    def record_error(
        self, experiment_id: str, message: str, details: str | None = None, trial_id: str | None = None
    ) -> None:
        """Log an error event and keep it (with its traceback) as the experiment's last error."""

        def work(session: Session) -> None:
            row = session.get(ExperimentRow, experiment_id)
            if row is not None:
                row.error = message + (f"\n{details}" if details else "")
            log_event(session, experiment_id, trial_id, EventKind.ERROR, message, {"traceback": details})

        self._write(work)

    def add_event(
        self,
        experiment_id: str | None,
        kind: EventKind,
        message: str,
        *,
        trial_id: str | None = None,
        data: Any = None,
    ) -> None:
        self._write(lambda s: log_event(s, experiment_id, trial_id, kind, message, data))

    def events(self, experiment_id: str, kind: EventKind | None = None) -> list[EventRecord]:
        query = select(EventRow).where(EventRow.experiment_id == experiment_id).order_by(EventRow.id)
        if kind is not None:
            query = query.where(EventRow.kind == kind.value)
        return self._read(lambda s: [event_record(row) for row in s.scalars(query)])
