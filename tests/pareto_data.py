"""A multi-objective experiment written straight into a daemon home's store (the config keys
``objectives`` and ``constraints`` as the experiment config stores them), for the Pareto tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, update

from manager.store import Store, now_ms
from manager.store.schema import ExperimentRow, TrialRow

SPACE = {"width": {"_type": "choice", "_value": [8, 16, 32, 64]}}
ACCURACY_AND_LATENCY = [
    {"metric": "accuracy", "mode": "maximize"},
    {"metric": "latency_ms", "mode": "minimize"},
]


def make_experiment(
    home: Path,
    results: Sequence[tuple[str, Any]],
    objectives: Sequence[Mapping[str, str]] | None = ACCURACY_AND_LATENCY,
    constraints: Sequence[str] = (),
    prefix: str = "t",
) -> tuple[str, list[str]]:
    """A DONE experiment with one trial per ``(status, final result)``; returns its id and the
    trial ids (``<prefix>0000``, ...) in sequence order. ``objectives=None`` makes a single-objective experiment."""
    home.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "experimentName": "pareto",
        "trialCommand": "python model.py",
        "searchSpace": SPACE,
    }
    if objectives is not None:
        config.update(objectives=list(objectives), constraints=list(constraints))
    store = Store.open(home)
    try:
        record = store.create_experiment(
            name="pareto",
            config=config,
            search_space=SPACE,
            trial_concurrency=1,
            max_trial_number=len(results),
            max_experiment_duration=None,
            optimize_mode="maximize",
            tuner_name="Random",
            experiments_root=home / "experiments",
        )
        db_url = store.db_url
    finally:
        store.close()
    start = now_ms() - 1000 * len(results)
    rows, ids = [], []
    for seq, (status, data) in enumerate(results):
        tid = f"{prefix}{seq:04d}"
        ids.append(tid)
        default = data.get("accuracy") if isinstance(data, dict) else data
        rows.append(
            {
                "id": tid,
                "experiment_id": record.id,
                "sequence_id": seq,
                "parameter_id": seq,
                "parameters": {"width": SPACE["width"]["_value"][seq % 4]},
                "status": status,
                "created_at": start + seq * 1000,
                "start_time": start + seq * 1000,
                "end_time": start + seq * 1000 + 500,
                "exit_code": 0 if status == "SUCCEEDED" else 1,
                "final_metric": default if status == "SUCCEEDED" else None,
                "final_metric_data": data if status == "SUCCEEDED" else None,
                "gpus": [],
                "trial_dir": str(record.experiment_dir / "trials" / tid),
                "metrics_offset": 0,
            }
        )
    engine = create_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(TrialRow.__table__.insert(), rows)
            connection.execute(
                update(ExperimentRow)
                .where(ExperimentRow.id == record.id)
                .values(status="DONE", start_time=start, end_time=now_ms(), next_sequence_id=len(results))
            )
    finally:
        engine.dispose()
    return record.id, ids
