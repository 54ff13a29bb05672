"""The tables: what the database holds, its indexes, and how a connection is set up.

SQLAlchemy 2 ORM classes; the hot paths run Core statements over the same tables
(:mod:`manager.store.statements`). Rows never leave the store package: queries return the
frozen records of :mod:`manager.store.records`.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    inspect,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeEngine


class StoredJSON(TypeDecorator[Any]):
    """JSON that keeps NaN and infinities on every database.

    SQLite's JSON column is text written by ``json.dumps`` (``NaN`` included); PostgreSQL's
    ``json`` rejects NaN, so there the same text goes in a TEXT column. A metric reported as NaN
    reads back as NaN on both. Python's None is JSON ``null``, as with SQLAlchemy's JSON (SQL
    NULL only where the column was left out).
    """

    impl = JSON
    cache_ok = True
    should_evaluate_none = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(Text() if dialect.name == "postgresql" else JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return json.dumps(value) if dialect.name == "postgresql" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return json.loads(value) if dialect.name == "postgresql" and value is not None else value


#: Milliseconds since the epoch (and byte offsets) pass 2**31: BIGINT, which is INTEGER on SQLite.
Millis = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class ExperimentRow(Base):
    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(StoredJSON)
    search_space: Mapped[dict[str, Any] | None] = mapped_column(StoredJSON, nullable=True)
    created_at: Mapped[int] = mapped_column(Millis)
    start_time: Mapped[int | None] = mapped_column(Millis, nullable=True)
    end_time: Mapped[int | None] = mapped_column(Millis, nullable=True)
    trial_concurrency: Mapped[int] = mapped_column(Integer)
    max_trial_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_experiment_duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    optimize_mode: Mapped[str] = mapped_column(String(16))
    tuner_name: Mapped[str] = mapped_column(Text)
    #: Seconds the experiment has been active (RUNNING or NO_MORE_TRIAL) in earlier runs.
    elapsed: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    experiment_dir: Mapped[str] = mapped_column(Text)
    next_sequence_id: Mapped[int] = mapped_column(Integer, default=0)
    #: Trials whose place in maxTrialNumber was given back (ended by a stop or a daemon crash).
    returned_slots: Mapped[int] = mapped_column(Integer, default=0)


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("experiment_id", "sequence_id"),
        # The orders of trial_page (ties by sequence id), so that a page never sorts the experiment;
        # the status one also counts trials per status and the end_time one the ended trials.
        # (New names: create_all leaves an index of the same name but other columns as it was.)
        Index("ix_trials_status_order", "experiment_id", "status", "sequence_id"),
        Index("ix_trials_final_metric_order", "experiment_id", "final_metric", "sequence_id"),
        # best_trials, and a page of one status by final metric (`nasctl trial ls --top N --status S`)
        Index(
            "ix_trials_status_final_metric_order", "experiment_id", "status", "final_metric", "sequence_id"
        ),
        Index("ix_trials_start_time_order", "experiment_id", "start_time", "sequence_id"),
        # start_time: the running trials (end_time IS NULL) with their start, for the duration order
        Index("ix_trials_end_time_order", "experiment_id", "end_time", "sequence_id", "start_time"),
        # and ix_trials_duration_order on (end_time - start_time), below the class: it needs the columns
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    sequence_id: Mapped[int] = mapped_column(Integer)
    parameter_id: Mapped[int] = mapped_column(Integer)
    parameters: Mapped[dict[str, Any]] = mapped_column(StoredJSON)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(Millis)
    start_time: Mapped[int | None] = mapped_column(Millis, nullable=True)
    end_time: Mapped[int | None] = mapped_column(Millis, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    signal: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    waiting_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    final_metric: Mapped[float | None] = mapped_column(Float, nullable=True)
    final_metric_data: Mapped[Any] = mapped_column(StoredJSON, nullable=True)
    gpus: Mapped[list[int]] = mapped_column(StoredJSON, default=list)
    trial_dir: Mapped[str] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pid_create_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Bytes of metrics.jsonl already stored; moves in the same transaction as the metrics.
    metrics_offset: Mapped[int] = mapped_column(Millis, default=0)
    #: The stored tuner checkpoint already knows this trial's final result / its end.
    result_in_checkpoint: Mapped[bool] = mapped_column(default=False)
    end_in_checkpoint: Mapped[bool] = mapped_column(default=False)
    #: When the loop committed its intent to start this trial's process (ms): set before anything
    #: starts, so that after a crash a WAITING trial with it may have a process to find.
    launch_requested: Mapped[int | None] = mapped_column(Millis, nullable=True)
    #: EARLY_STOPPED trials: how many intermediate results it had reported when the assessor stopped it.
    stop_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: How the local service started its process: "warm" (forked, imports done) or "cold".
    launch: Mapped[str | None] = mapped_column(String(8), nullable=True)


#: The ended trials by duration (trial_page, sort=duration); an index on an expression (SQLite >= 3.9).
Index(
    "ix_trials_duration_order",
    TrialRow.experiment_id,
    TrialRow.end_time - TrialRow.start_time,
    TrialRow.sequence_id,
)


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = (
        Index("ix_metrics_experiment_id", "experiment_id", "id"),
        Index("ix_metrics_trial_id", "trial_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    trial_id: Mapped[str] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    sequence: Mapped[int] = mapped_column(Integer)
    value: Mapped[Any] = mapped_column(StoredJSON)
    default_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    time: Mapped[int] = mapped_column(Millis)


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_experiment_id", "experiment_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    trial_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    time: Mapped[int] = mapped_column(Millis)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[Any] = mapped_column(StoredJSON, nullable=True)


class AssessorCheckpointRow(Base):
    """The assessor's saved state, with which trials' results and ends it had heard (JSON)."""

    __tablename__ = "assessor_checkpoints"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    time: Mapped[int] = mapped_column(Millis)
    state: Mapped[Any] = mapped_column(StoredJSON)


class TunerCheckpointRow(Base):
    __tablename__ = "tuner_checkpoints"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    time: Mapped[int] = mapped_column(Millis)
    state: Mapped[Any] = mapped_column(StoredJSON)


#: Indexes of earlier versions that newer ones replace (left in an old home, they only slow writes).
RETIRED_INDEXES = ("ix_trials_experiment_status", "ix_trials_experiment_final_metric")
#: Columns later versions added to a table: a home made before gets them (typed as in the table).
ADDED_COLUMNS = {"trials": ("launch_requested", "stop_step", "launch")}


def create_schema(session: Session) -> None:
    """Create what is missing (tables, indexes, added columns) and drop the retired indexes."""
    connection = session.connection()
    Base.metadata.create_all(connection)
    for table, columns in ADDED_COLUMNS.items():
        present = {column["name"] for column in inspect(connection).get_columns(table)}
        for name in columns:
            if name not in present:
                sql_type = Base.metadata.tables[table].c[name].type.compile(connection.dialect)
                connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")
    for name in RETIRED_INDEXES:
        connection.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Every SQLite connection: WAL (readers never wait for the writer), a busy wait, foreign keys."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
