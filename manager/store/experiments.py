"""Experiments: created, read, their status, search space and limits changed, deleted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from manager.store.database import Database
from manager.store.events import EventKind, log_event
from manager.store.ids import new_experiment_id
from manager.store.records import ExperimentRecord, experiment_record, maybe, now_ms
from manager.store.schema import EventRow, ExperimentRow, MetricRow, TrialRow, TunerCheckpointRow
from trials.status import ExperimentStatus


class _Keep:
    """Marker for "leave this field as it is" where None is a meaningful new value."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


def experiment_row(session: Session, experiment_id: str) -> ExperimentRow:
    """The experiment's row in this transaction; KeyError when there is none."""
    row = session.get(ExperimentRow, experiment_id)
    if row is None:
        raise KeyError(f"experiment {experiment_id} not found")
    return row


class ExperimentQueries(Database):
    """The experiments' part of ``Store``."""

    def create_experiment(
        self,
        *,
        name: str,
        config: Mapping[str, Any],
        search_space: Mapping[str, Any] | None,
        trial_concurrency: int,
        max_trial_number: int | None,
        max_experiment_duration: float | None,
        optimize_mode: str,
        tuner_name: str,
        experiments_root: Path,
        experiment_id: str | None = None,
    ) -> ExperimentRecord:
        """A new INITIALIZED experiment whose folder is ``experiments_root/<id>``."""

        def work(session: Session) -> ExperimentRecord:
            exp_id = experiment_id or new_experiment_id()
            while experiment_id is None and session.get(ExperimentRow, exp_id) is not None:
                exp_id = new_experiment_id()
            row = ExperimentRow(
                id=exp_id,
                name=name,
                status=ExperimentStatus.INITIALIZED.value,
                config=dict(config),
                search_space=dict(search_space) if search_space is not None else None,
                created_at=now_ms(),
                trial_concurrency=trial_concurrency,
                max_trial_number=max_trial_number,
                max_experiment_duration=max_experiment_duration,
                optimize_mode=optimize_mode,
                tuner_name=tuner_name,
                elapsed=0.0,
                experiment_dir=str(Path(experiments_root) / exp_id),
                next_sequence_id=0,
                returned_slots=0,
            )
            session.add(row)
            log_event(session, exp_id, None, EventKind.EXPERIMENT_STATUS, "experiment created", None)
            session.flush()
            return experiment_record(row)

        return self._write(work)

    def get_experiment(self, experiment_id: str) -> ExperimentRecord | None:
        return self._read(lambda s: maybe(s.get(ExperimentRow, experiment_id), experiment_record))

    def list_experiments(self, status: ExperimentStatus | None = None) -> list[ExperimentRecord]:
        """All experiments, newest first."""
        query = select(ExperimentRow).order_by(ExperimentRow.created_at.desc(), ExperimentRow.id)
        if status is not None:
            query = query.where(ExperimentRow.status == status.value)
        return self._read(lambda s: [experiment_record(row) for row in s.scalars(query)])

    def experiments_with_status(self, statuses: Iterable[ExperimentStatus]) -> list[ExperimentRecord]:
        values = [s.value for s in statuses]
        query = (
            select(ExperimentRow).where(ExperimentRow.status.in_(values)).order_by(ExperimentRow.created_at)
        )
        return self._read(lambda s: [experiment_record(row) for row in s.scalars(query)])

    def set_experiment_status(
        self,
        experiment_id: str,
        status: ExperimentStatus,
        message: str = "",
        *,
        start_time: int | _Keep | None = KEEP,
        end_time: int | _Keep | None = KEEP,
        elapsed: float | _Keep = KEEP,
        error: str | _Keep | None = KEEP,
    ) -> ExperimentRecord:
        """Change the status and log the transition (with ``message``) in one transaction."""

        def work(session: Session) -> ExperimentRecord:
            row = experiment_row(session, experiment_id)
            old = row.status
            row.status = status.value
            for field, value in (
                ("start_time", start_time),
                ("end_time", end_time),
                ("elapsed", elapsed),
                ("error", error),
            ):
                if value is not KEEP:
                    setattr(row, field, value)
            text = f"{old} -> {status.value}" + (f": {message}" if message else "")
            log_event(
                session,
                experiment_id,
                None,
                EventKind.EXPERIMENT_STATUS,
                text,
                {"from": old, "to": status.value},
            )
            session.flush()
            return experiment_record(row)

        return self._write(work)

    def set_search_space(self, experiment_id: str, search_space: Mapping[str, Any]) -> None:
        def work(session: Session) -> None:
            experiment_row(session, experiment_id).search_space = dict(search_space)

        self._write(work)

    def set_limits(
        self,
        experiment_id: str,
        *,
        trial_concurrency: int | _Keep = KEEP,
        max_trial_number: int | _Keep | None = KEEP,
        max_experiment_duration: float | _Keep | None = KEEP,
    ) -> ExperimentRecord:
        def work(session: Session) -> ExperimentRecord:
            row = experiment_row(session, experiment_id)
            changes: dict[str, Any] = {}
            for field, value in (
                ("trial_concurrency", trial_concurrency),
                ("max_trial_number", max_trial_number),
                ("max_experiment_duration", max_experiment_duration),
            ):
                if value is not KEEP and getattr(row, field) != value:
                    changes[field] = {"from": getattr(row, field), "to": value}
                    setattr(row, field, value)
            if changes:
                text = ", ".join(f"{k} {v['from']} -> {v['to']}" for k, v in changes.items())
                log_event(session, experiment_id, None, EventKind.LIMITS_CHANGED, text, changes)
            session.flush()
            return experiment_record(row)

        return self._write(work)

    def delete_experiment(self, experiment_id: str) -> bool:
        """Remove the experiment and everything recorded under it; False if it did not exist."""

        def work(session: Session) -> bool:
            if session.get(ExperimentRow, experiment_id) is None:
                return False
            for model in (MetricRow, TunerCheckpointRow, TrialRow, EventRow):
                session.execute(delete(model).where(model.experiment_id == experiment_id))
            session.execute(delete(ExperimentRow).where(ExperimentRow.id == experiment_id))
            return True

        return self._write(work)
