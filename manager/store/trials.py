"""Trials: created with the next sequence id, started, ended, and read back.

Sequence ids are 0..n-1 with no gap (no trial is ever deleted on its own): the page and count
queries (:mod:`manager.store.trial_pages`) rely on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from manager.store.checkpoints import save_checkpoint
from manager.store.database import Database
from manager.store.events import EventKind, log_event
from manager.store.ids import new_trial_id
from manager.store.metrics import store_metrics
from manager.store.records import FinalMetrics, TrialRecord, TunerCheckpoint, now_ms, trial_record
from manager.store.schema import TrialRow
from manager.store.statements import (
    INSERT_TRIAL,
    NEXT_SEQUENCE,
    RETURN_SLOT,
    SELECT_TRIAL,
    TRIAL_EXISTS,
    UPDATE_EXPERIMENT,
    UPDATE_TRIAL,
)
from trials.status import TrialStatus


def select_trial(session: Session, trial_id: str) -> TrialRecord:
    """The trial as it is in this transaction (a Core read: no ORM object to track)."""
    row = session.connection().execute(SELECT_TRIAL, {"b_trial": trial_id}).first()
    if row is None:
        raise KeyError(f"trial {trial_id} not found")
    return trial_record(row)


def update_trial(session: Session, trial_id: str, changes: Mapping[str, Any]) -> TrialRecord:
    """Apply ``changes`` (column: value) to one trial and return it as it is now."""
    session.connection().execute(UPDATE_TRIAL, {"b_trial": trial_id, **changes})
    return select_trial(session, trial_id)


class TrialQueries(Database):
    """The trials' part of ``Store``."""

    def create_trial(
        self,
        experiment_id: str,
        parameters: Mapping[str, Any],
        checkpoint: TunerCheckpoint | None = None,
        *,
        launching: bool = False,
    ) -> TrialRecord:
        """A WAITING trial with the next sequence id (also its parameter id) and a fresh id.

        Sequence ids are 0..n-1 with no gap (no trial is ever deleted on its own): trial_page and
        the status counts read an experiment's number of trials as the largest one plus one.

        ``checkpoint`` (the tuner's state right after it proposed ``parameters``) is saved in the
        same transaction, so after a crash the tuner's memory and the trial list agree.
        ``launching``: the trial starts at once with no GPUs, so the intent to start it is
        committed here (as :meth:`mark_trial_launching` would), one transaction less per trial.
        """

        def work(session: Session) -> TrialRecord:
            connection = session.connection()
            exp = connection.execute(NEXT_SEQUENCE, {"b_experiment": experiment_id}).first()
            if exp is None:
                raise KeyError(f"experiment {experiment_id} not found")
            sequence_id = exp.next_sequence_id
            connection.execute(
                UPDATE_EXPERIMENT, {"b_experiment": experiment_id, "next_sequence_id": sequence_id + 1}
            )
            trial_id = new_trial_id()
            while connection.execute(TRIAL_EXISTS, {"b_trial": trial_id}).first():
                trial_id = new_trial_id()
            record = TrialRecord(
                id=trial_id,
                experiment_id=experiment_id,
                sequence_id=sequence_id,
                parameter_id=sequence_id,
                parameters=dict(parameters),
                status=TrialStatus.WAITING,
                created_at=now_ms(),
                start_time=None,
                end_time=None,
                exit_code=None,
                signal=None,
                reason=None,
                waiting_reason=None,
                final_metric=None,
                final_metric_data=None,
                gpus=(),
                trial_dir=Path(exp.experiment_dir) / "trials" / trial_id,
                pid=None,
                pid_create_time=None,
                metrics_offset=0,
                launch_requested=now_ms() if launching else None,
            )
            connection.execute(
                INSERT_TRIAL,
                {
                    "id": trial_id,
                    "experiment_id": experiment_id,
                    "sequence_id": sequence_id,
                    "parameter_id": sequence_id,
                    "parameters": record.parameters,
                    "status": record.status.value,
                    "created_at": record.created_at,
                    "gpus": [],
                    "trial_dir": str(record.trial_dir),
                    "metrics_offset": 0,
                    "result_in_checkpoint": False,
                    "end_in_checkpoint": False,
                    "launch_requested": record.launch_requested,
                },
            )
            log_event(
                session, experiment_id, trial_id, EventKind.TRIAL_STATUS, "-> WAITING", {"to": "WAITING"}
            )
            if checkpoint is not None:
                save_checkpoint(session, experiment_id, checkpoint)
            return record

        return self._write(work)

    def set_waiting_reason(self, trial_id: str, reason: str | None) -> None:
        self._write(
            lambda s: s.execute(update(TrialRow).where(TrialRow.id == trial_id).values(waiting_reason=reason))
        )

    def mark_trial_launching(self, trial_id: str, *, gpus: Sequence[int]) -> TrialRecord:
        """Commit the intent to start a WAITING trial's process (and the GPUs it gets), before it starts.

        After a crash, recovery asks the training service about every WAITING trial with this
        intent: its process may run, may have ended, or may never have started
        (docs/architecture.md, "Crash recovery").
        """
        changes = {"launch_requested": now_ms(), "gpus": list(gpus), "waiting_reason": None}
        return self._write(lambda session: update_trial(session, trial_id, changes))

    def forget_launch(self, trial_id: str) -> TrialRecord:
        """A trial whose process provably never started is plain WAITING again (launched anew later)."""
        changes = {"launch_requested": None, "gpus": []}
        return self._write(lambda session: update_trial(session, trial_id, changes))

    def mark_trial_running(
        self,
        trial_id: str,
        *,
        pid: int,
        pid_create_time: float,
        gpus: Sequence[int],
        start_time: int | None = None,
        launch: str | None = None,
    ) -> TrialRecord:
        def work(session: Session) -> TrialRecord:
            changes = {
                "launch": launch,
                "status": TrialStatus.RUNNING.value,
                "start_time": start_time if start_time is not None else now_ms(),
                "pid": pid,
                "pid_create_time": pid_create_time,
                "gpus": list(gpus),
                "waiting_reason": None,
            }
            row = update_trial(session, trial_id, changes)
            gpu_text = f" on GPU {','.join(map(str, gpus))}" if gpus else ""
            log_event(
                session,
                row.experiment_id,
                trial_id,
                EventKind.TRIAL_STATUS,
                f"WAITING -> RUNNING (pid {pid}){gpu_text}",
                {"from": "WAITING", "to": "RUNNING", "pid": pid, "gpus": list(gpus)},
            )
            return row

        return self._write(work)

    def finish_trial(
        self,
        trial_id: str,
        status: TrialStatus,
        *,
        exit_code: int | None = None,
        signal: int | None = None,
        reason: str | None = None,
        end_time: int | None = None,
        return_slot: bool = False,
        stop_step: int | None = None,
        metrics: FinalMetrics | None = None,
    ) -> TrialRecord:
        """Move a trial to a terminal status and log it; a trial already ended stays as it was.

        ``return_slot`` gives the trial's place in maxTrialNumber back (same transaction);
        ``stop_step``: an early-stopped trial's number of intermediate results. ``metrics``: the
        last chunk of its metric channel, stored first in the same transaction, exactly as
        :meth:`ingest_metrics` stores a chunk (one transaction per ended trial, not two).
        """

        def work(session: Session) -> TrialRecord:
            if metrics is not None:
                store_metrics(
                    session,
                    trial_id,
                    metrics.expected_offset,
                    metrics.new_offset,
                    metrics.reports,
                    metrics.invalid,
                )
            row = select_trial(session, trial_id)
            if row.status.is_terminal:
                return row
            if return_slot:
                session.connection().execute(RETURN_SLOT, {"b_experiment": row.experiment_id})
            old = row.status.value
            changes = {
                "status": status.value,
                "end_time": end_time if end_time is not None else now_ms(),
                "exit_code": exit_code,
                "signal": signal,
                "reason": reason,
                "waiting_reason": None,
                "stop_step": stop_step,
            }
            session.connection().execute(UPDATE_TRIAL, {"b_trial": trial_id, **changes})
            text = f"{old} -> {status.value}" + (f": {reason}" if reason else "")
            data = {
                "from": old,
                "to": status.value,
                "exitCode": exit_code,
                "signal": signal,
                "reason": reason,
                "slotReturned": return_slot,
                **({"stopStep": stop_step} if stop_step is not None else {}),
            }
            log_event(session, row.experiment_id, trial_id, EventKind.TRIAL_STATUS, text, data)
            return dataclasses.replace(
                row,
                status=status,
                end_time=changes["end_time"],
                exit_code=exit_code,
                signal=signal,
                reason=reason,
                waiting_reason=None,
                stop_step=stop_step,
            )

        return self._write(work)

    def get_trial(self, experiment_id: str, trial_id: str) -> TrialRecord | None:
        def work(session: Session) -> TrialRecord | None:
            row = session.get(TrialRow, trial_id)
            return trial_record(row) if row is not None and row.experiment_id == experiment_id else None

        return self._read(work)

    def trials_with_status(self, experiment_id: str, statuses: Iterable[TrialStatus]) -> list[TrialRecord]:
        query = (
            select(TrialRow)
            .where(TrialRow.experiment_id == experiment_id, TrialRow.status.in_([s.value for s in statuses]))
            .order_by(TrialRow.sequence_id)
        )
        return self._read(lambda s: [trial_record(row) for row in s.scalars(query)])

    def all_trials(self, experiment_id: str) -> list[TrialRecord]:
        query = select(TrialRow).where(TrialRow.experiment_id == experiment_id).order_by(TrialRow.sequence_id)
        return self._read(lambda s: [trial_record(row) for row in s.scalars(query)])

    def best_trials(self, experiment_id: str, k: int, optimize_mode: str) -> list[TrialRecord]:
        """The ``k`` best SUCCEEDED trials with a (non-NaN) final metric, by ``optimize_mode``."""
        metric = TrialRow.final_metric
        query = (
            select(TrialRow.__table__)  # plain rows: no ORM objects to build and track
            .where(
                TrialRow.experiment_id == experiment_id,
                TrialRow.status == TrialStatus.SUCCEEDED.value,
                metric.is_not(None),
            )
            .order_by(metric.asc() if optimize_mode == "minimize" else metric.desc(), TrialRow.sequence_id)
            .limit(k)
        )
        return self._read(lambda s: [trial_record(row) for row in s.execute(query)])

    def succeeded_results(self, experiment_id: str) -> list[tuple[TrialRecord, Any]]:
        """Every SUCCEEDED trial with its final metric data, in sequence order (for import_data)."""
        return [
            (trial, trial.final_metric_data)
            for trial in self.trials_with_status(experiment_id, [TrialStatus.SUCCEEDED])
            if trial.final_metric_data is not None
        ]
