"""Tuner and assessor checkpoints: their saved state, and which trials they have already learned from.

A checkpoint is saved in the same transaction as the trial it was taken after (``create_trial``),
so after a crash the tuner's memory and the trial list agree; :meth:`CheckpointQueries.tuner_backlog`
names the results and ends the tuner must be told again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from manager.store.database import Database
from manager.store.records import TrialRecord, TunerCheckpoint, maybe, now_ms, trial_record
from manager.store.schema import AssessorCheckpointRow, TrialRow, TunerCheckpointRow
from manager.store.statements import INSERT_CHECKPOINT, MARK_IN_CHECKPOINT, UPDATE_CHECKPOINT
from trials.status import TrialStatus


def save_checkpoint(session: Session, experiment_id: str, checkpoint: TunerCheckpoint) -> None:
    """Store ``checkpoint`` in the caller's transaction and mark the trials it knows."""
    connection = session.connection()
    values = {"time": now_ms(), "state": checkpoint.state}
    saved = connection.execute(UPDATE_CHECKPOINT, {"b_experiment": experiment_id, **values})
    if saved.rowcount == 0:
        connection.execute(INSERT_CHECKPOINT, {"experiment_id": experiment_id, **values})
    for ids, column in ((checkpoint.results, "result_in_checkpoint"), (checkpoint.ends, "end_in_checkpoint")):
        if ids:
            connection.execute(MARK_IN_CHECKPOINT, {"b_ids": list(ids), column: True})


class CheckpointQueries(Database):
    """The tuner checkpoints' part of ``Store``."""

    def save_tuner_checkpoint(self, experiment_id: str, state: Any | TunerCheckpoint) -> None:
        """Keep the tuner's state; with a :class:`TunerCheckpoint`, mark what it has learned."""
        checkpoint = state if isinstance(state, TunerCheckpoint) else TunerCheckpoint(state)
        self._write(lambda session: save_checkpoint(session, experiment_id, checkpoint))

    def tuner_backlog(self, experiment_id: str) -> list[TrialRecord]:
        """Trials with a final result or an end that the stored tuner checkpoint does not know yet."""
        query = (
            select(TrialRow)
            .where(
                TrialRow.experiment_id == experiment_id,
                (
                    (TrialRow.final_metric_data.is_not(None) & ~TrialRow.result_in_checkpoint)
                    | (
                        TrialRow.status.not_in([TrialStatus.WAITING.value, TrialStatus.RUNNING.value])
                        & ~TrialRow.end_in_checkpoint
                    )
                ),
            )
            .order_by(TrialRow.sequence_id)
        )
        return self._read(lambda s: [trial_record(row) for row in s.scalars(query)])

    def load_tuner_checkpoint(self, experiment_id: str) -> Any | None:
        return self._read(lambda s: maybe(s.get(TunerCheckpointRow, experiment_id), lambda row: row.state))

    def save_assessor_checkpoint(self, experiment_id: str, state: Any) -> None:
        """Keep the assessor's state (JSON: its own, and which trials' results and ends it heard)."""

        def work(session: Session) -> None:
            row = session.get(AssessorCheckpointRow, experiment_id)
            if row is None:
                session.add(AssessorCheckpointRow(experiment_id=experiment_id, time=now_ms(), state=state))
            else:
                row.time, row.state = now_ms(), state

        self._write(work)

    def load_assessor_checkpoint(self, experiment_id: str) -> Any | None:
        return self._read(lambda s: maybe(s.get(AssessorCheckpointRow, experiment_id), lambda row: row.state))
