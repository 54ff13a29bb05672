"""Core statements over the store's tables, built once and run with parameters.

The hot write paths (a few statements per trial) use SQLAlchemy Core, which costs a fraction of
the ORM's unit of work per statement (profiled: the ORM took ~2/3 of the daemon's CPU per
trial); and building a statement costs more than running it.
"""

from __future__ import annotations

from sqlalchemy import bindparam, func, insert, select, update

from manager.store.schema import EventRow, ExperimentRow, MetricRow, TrialRow, TunerCheckpointRow

EXPERIMENTS = ExperimentRow.__table__
TRIALS = TrialRow.__table__
METRICS = MetricRow.__table__
EVENTS = EventRow.__table__
CHECKPOINTS = TunerCheckpointRow.__table__

SELECT_TRIAL = select(TRIALS).where(TRIALS.c.id == bindparam("b_trial"))
UPDATE_TRIAL = update(TRIALS).where(TRIALS.c.id == bindparam("b_trial"))
TRIAL_EXISTS = select(TRIALS.c.id).where(TRIALS.c.id == bindparam("b_trial"))
NEXT_SEQUENCE = select(EXPERIMENTS.c.next_sequence_id, EXPERIMENTS.c.experiment_dir).where(
    EXPERIMENTS.c.id == bindparam("b_experiment")
)
UPDATE_EXPERIMENT = update(EXPERIMENTS).where(EXPERIMENTS.c.id == bindparam("b_experiment"))
RETURN_SLOT = UPDATE_EXPERIMENT.values(returned_slots=func.coalesce(EXPERIMENTS.c.returned_slots, 0) + 1)
INGEST_STATE = select(
    TRIALS.c.experiment_id,
    TRIALS.c.metrics_offset,
    TRIALS.c.final_metric_data.is_(None).label("no_final"),
).where(TRIALS.c.id == bindparam("b_trial"))
UPDATE_CHECKPOINT = update(CHECKPOINTS).where(CHECKPOINTS.c.experiment_id == bindparam("b_experiment"))
MARK_IN_CHECKPOINT = update(TRIALS).where(TRIALS.c.id.in_(bindparam("b_ids", expanding=True)))
INSERT_TRIAL = insert(TRIALS)
INSERT_METRIC = insert(METRICS)
INSERT_EVENT = insert(EVENTS)
INSERT_CHECKPOINT = insert(CHECKPOINTS)

#: MetricRecord's fields in order: metrics are read as plain rows (no ORM objects), pages are large.
METRIC_COLUMNS = (
    MetricRow.id,
    MetricRow.experiment_id,
    MetricRow.trial_id,
    MetricRow.type,
    MetricRow.sequence,
    MetricRow.value,
    MetricRow.default_value,
    MetricRow.time,
)
