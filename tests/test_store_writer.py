"""The store's writer: launches and ends before metric ingests, ingests queued together stored in
one transaction, each still exactly once and on its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from manager.store import ExperimentRecord, Store
from manager.store.writer import Outcome, WriterThread
from trials.metrics import PERIODICAL, MetricReport


@pytest.fixture
def store(db_url: str | None, tmp_path: Path) -> Iterator[Store]:
    store = Store.open(tmp_path, db_url)
    yield store
    store.close()


def new_experiment(store: Store, tmp_path: Path) -> ExperimentRecord:
    return store.create_experiment(
        name="exp",
        config={"trialCommand": "true"},
        search_space=None,
        trial_concurrency=1,
        max_trial_number=None,
        max_experiment_duration=None,
        optimize_mode="maximize",
        tuner_name="Random",
        experiments_root=tmp_path / "experiments",
    )


def reports(value: float) -> list[MetricReport]:
    return [MetricReport(PERIODICAL, 0, value, value, 1_700_000_000_000)]


def hold_writer(store: Store) -> threading.Event:
    """Keep the writer busy until the returned event is set (so that writes queue up)."""
    release, busy = threading.Event(), threading.Event()

    def wait() -> None:
        busy.set()
        release.wait(10)

    store.submit(wait)
    busy.wait(10)
    return release


def count_commits(store: Store) -> list[int]:
    commits: list[int] = []
    event.listen(store._write_engine, "commit", lambda _connection: commits.append(1))
    return commits


def test_ingests_queued_while_the_writer_is_busy_share_one_transaction(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trials = [store.create_trial(exp.id, {"i": i}) for i in range(5)]
    commits = count_commits(store)
    release = hold_writer(store)
    futures = [
        store.submit_ingest(t.id, expected_offset=0, new_offset=10, reports=reports(i))
        for i, t in enumerate(trials)
    ]
    release.set()
    assert all(future.result(10).applied for future in futures)
    assert len(commits) == 1
    assert [store.get_trial(exp.id, t.id).metrics_offset for t in trials] == [10] * 5
    assert [len(store.trial_metrics(t.id)) for t in trials] == [1] * 5


def test_a_failed_ingest_in_a_group_leaves_the_others_stored(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    first, second = store.create_trial(exp.id, {"i": 1}), store.create_trial(exp.id, {"i": 2})
    release = hold_writer(store)
    stored = store.submit_ingest(first.id, expected_offset=0, new_offset=10, reports=reports(0.1))
    unknown = store.submit_ingest("no-such-trial", expected_offset=0, new_offset=10, reports=reports(0.2))
    also_stored = store.submit_ingest(second.id, expected_offset=0, new_offset=20, reports=reports(0.3))
    release.set()
    with pytest.raises(KeyError, match="no-such-trial"):
        unknown.result(10)
    assert stored.result(10).applied and also_stored.result(10).applied
    assert [m.value for m in store.trial_metrics(first.id)] == [0.1]
    assert [m.value for m in store.trial_metrics(second.id)] == [0.3]


def test_a_stale_offset_in_a_group_is_refused_while_the_rest_is_stored(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trial, other = store.create_trial(exp.id, {"i": 1}), store.create_trial(exp.id, {"i": 2})
    release = hold_writer(store)
    once = store.submit_ingest(trial.id, expected_offset=0, new_offset=10, reports=reports(0.1))
    twice = store.submit_ingest(trial.id, expected_offset=0, new_offset=10, reports=reports(0.1))
    stored = store.submit_ingest(other.id, expected_offset=0, new_offset=10, reports=reports(0.2))
    release.set()
    assert once.result(10).applied and not twice.result(10).applied and stored.result(10).applied
    assert len(store.trial_metrics(trial.id)) == 1 and len(store.trial_metrics(other.id)) == 1


def test_a_write_queued_after_ingests_runs_before_them(store: Store) -> None:
    order: list[str] = []
    release = hold_writer(store)
    grouped = [store.submit_grouped(lambda _session: order.append("ingest")) for _ in range(3)]
    urgent = store.submit(lambda: order.append("launch"))
    release.set()
    for future in [*grouped, urgent]:
        future.result(10)
    assert order == ["launch", "ingest", "ingest", "ingest"]


def test_a_group_that_cannot_be_stored_fails_every_write_in_it() -> None:
    started, release = threading.Event(), threading.Event()

    def run_group(items: Any) -> list[Outcome]:
        raise OSError("disk full")

    writer: WriterThread[int] = WriterThread("test-writer", run_group)
    try:
        writer.submit(lambda: (started.set(), release.wait(10)))
        started.wait(10)
        futures: list[Future[Any]] = [writer.submit_grouped(i) for i in range(3)]
        release.set()
        for future in futures:
            with pytest.raises(OSError, match="disk full"):
                future.result(10)
    finally:
        writer.shutdown()


def test_a_closed_writer_refuses_new_writes_after_running_the_queued_ones() -> None:
    writer: WriterThread[int] = WriterThread(
        "test-writer", lambda items: [Outcome(item * 2) for item in items]
    )
    queued = writer.submit_grouped(21)
    writer.shutdown()
    assert queued.result(10) == 42
    with pytest.raises(RuntimeError, match="closed store"):
        writer.submit(print)


def test_on_sqlite_a_group_of_ingests_is_one_commit(tmp_path: Path) -> None:
    """pysqlite opens no transaction before a SAVEPOINT, whose RELEASE would then commit alone."""
    store = Store.open(tmp_path)
    try:
        exp = new_experiment(store, tmp_path)
        trials = [store.create_trial(exp.id, {"i": i}) for i in range(3)]
        statements: list[str] = []
        with store._write_engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            assert raw is not None
            raw.set_trace_callback(lambda sql: statements.append(sql.split()[0].upper()))
        release = hold_writer(store)
        futures = [
            store.submit_ingest(t.id, expected_offset=0, new_offset=10, reports=reports(1.0)) for t in trials
        ]
        release.set()
        assert all(future.result(10).applied for future in futures)
        assert statements.count("COMMIT") == 1 and statements.count("RELEASE") == 3
    finally:
        store.close()
