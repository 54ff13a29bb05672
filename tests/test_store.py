"""The store: one writer, WAL, exactly-once metric ingestion, and the queries the REST routes use."""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from manager.store import (
    DatabaseInUse,
    EventKind,
    ExperimentRecord,
    FinalMetrics,
    Store,
    TrialSort,
    masked_url,
    now_ms,
    storage_problem,
)
from manager.training.metric_channel import read_metrics_file
from trials.metrics import FINAL, PERIODICAL, MetricReport
from trials.status import ExperimentStatus, TrialStatus


@pytest.fixture
def store(db_url: str | None, tmp_path: Path) -> Iterator[Store]:
    """Every store test runs on both databases (those that need SQLite itself use ``sqlite_store``)."""
    store = Store.open(tmp_path, db_url)
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """SQLite only: the test looks at the file itself (WAL, indexes, query plans)."""
    store = Store.open(tmp_path)
    yield store
    store.close()


def new_experiment(store: Store, tmp_path: Path, optimize_mode: str = "maximize") -> ExperimentRecord:
    return store.create_experiment(
        name="exp",
        config={"trialCommand": "true"},
        search_space=None,
        trial_concurrency=1,
        max_trial_number=None,
        max_experiment_duration=None,
        optimize_mode=optimize_mode,
        tuner_name="Random",
        experiments_root=tmp_path / "experiments",
    )


def report(kind: str, value: float | dict, sequence: int = 0) -> MetricReport:
    default = value["default"] if isinstance(value, dict) else value
    return MetricReport(kind, sequence, value, float(default), 1_700_000_000_000)


def finished_trial(
    store: Store, exp_id: str, value: float | None, status: TrialStatus = TrialStatus.SUCCEEDED
) -> str:
    trial = store.create_trial(exp_id, {"conv": {"_value": "a", "_idx": 0}})
    store.mark_trial_running(trial.id, pid=1, pid_create_time=0.0, gpus=())
    if value is not None:
        store.ingest_metrics(trial.id, expected_offset=0, new_offset=10, reports=[report(FINAL, value)])
    store.finish_trial(trial.id, status, exit_code=0)
    return trial.id


def test_the_database_file_is_in_wal_mode(sqlite_store: Store, tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "nasctl.db")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


def test_the_indexes_for_the_rest_queries_exist(sqlite_store: Store, tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "nasctl.db")
    indexes = {
        name: [row[2] for row in connection.execute(f"PRAGMA index_info('{name}')")]
        for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    connection.close()
    assert ["experiment_id", "status", "sequence_id"] in indexes.values()
    assert ["experiment_id", "final_metric", "sequence_id"] in indexes.values()
    assert ["experiment_id", "status", "final_metric", "sequence_id"] in indexes.values()
    assert ["experiment_id", "start_time", "sequence_id"] in indexes.values()
    assert ["experiment_id", "end_time", "sequence_id", "start_time"] in indexes.values()
    assert ["experiment_id", None, "sequence_id"] in indexes.values()  # end_time - start_time
    assert ["experiment_id", "id"] in indexes.values()


def _page_reference(
    trials: list, status: TrialStatus | None, sort: TrialSort, descending: bool, now: int
) -> list:
    """trial_page's order by definition: missing values last, ties by sequence id."""
    kept = [t for t in trials if status is None or t.status is status]

    def key(t):
        return {
            TrialSort.SEQUENCE_ID: t.sequence_id,
            TrialSort.FINAL_METRIC: t.final_metric,
            TrialSort.START_TIME: t.start_time,
            TrialSort.END_TIME: t.end_time,
            TrialSort.DURATION: None if t.start_time is None else (t.end_time or now) - t.start_time,
            TrialSort.STATUS: t.status.value,
        }[sort]

    present = sorted((t for t in kept if key(t) is not None), key=lambda t: t.sequence_id)
    present.sort(key=key, reverse=descending)  # stable: ties stay in sequence order
    return [t.id for t in present] + [t.id for t in kept if key(t) is None]


def test_trial_page_matches_its_definition_for_every_sort_filter_and_offset(
    store: Store, tmp_path: Path
) -> None:
    exp = new_experiment(store, tmp_path)
    statuses = [TrialStatus.SUCCEEDED, TrialStatus.FAILED, TrialStatus.SUCCEEDED, TrialStatus.USER_CANCELED]
    for i in range(23):  # ties in the metric and in the times, missing values, every state
        trial = store.create_trial(exp.id, {"i": i})
        if i % 7 == 6:
            continue  # WAITING: no start
        store.mark_trial_running(
            trial.id, pid=1, pid_create_time=0.0, gpus=(), start_time=1000 + (i // 2) * 10
        )
        if i % 5 != 4:
            store.ingest_metrics(
                trial.id, expected_offset=0, new_offset=1, reports=[report(FINAL, (i % 4) / 10)]
            )
        if i % 6 != 5:
            store.finish_trial(trial.id, statuses[i % 4], end_time=5000 - (i % 3) * 100)
    trials = store.all_trials(exp.id)
    now = int(time.time() * 1000)
    for sort in TrialSort:
        for descending in (False, True):
            for status in (None, TrialStatus.SUCCEEDED, TrialStatus.RUNNING, TrialStatus.EARLY_STOPPED):
                expected = _page_reference(trials, status, sort, descending, now)
                for offset, limit in (
                    (0, 50),
                    (0, 4),
                    (3, 5),
                    (len(expected) - 2, 5),
                    (len(expected) + 1, 5),
                ):
                    page = store.trial_page(
                        exp.id, status=status, sort=sort, descending=descending, offset=offset, limit=limit
                    )
                    case = (sort, descending, status, offset, limit)
                    assert page.total == len(expected), case
                    assert [t.id for t in page.items] == expected[max(0, offset) : offset + limit], case


def test_the_duration_order_merges_running_trials_among_ended_ones(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    now = int(time.time() * 1000)
    for i in range(14):  # ended trials of 1..7 s (ties in pairs), running ones of about 2.5, 4.5, 6.5 s
        trial = store.create_trial(exp.id, {"i": i})
        running = i % 5 == 2
        start = now - (2500 + 2000 * (i // 5) if running else 1000 * (i // 2 + 1))
        store.mark_trial_running(trial.id, pid=1, pid_create_time=0.0, gpus=(), start_time=start)
        if not running:
            store.finish_trial(trial.id, TrialStatus.SUCCEEDED, end_time=start + 1000 * (i // 2 + 1))
    store.create_trial(exp.id, {"waiting": True})
    trials = store.all_trials(exp.id)
    for descending in (False, True):
        for offset in range(16):
            for limit in (1, 2, 3, 15):  # running trials age as the test goes: the order as of the call
                before = _page_reference(trials, None, TrialSort.DURATION, descending, now_ms())
                page = store.trial_page(
                    exp.id, sort=TrialSort.DURATION, descending=descending, offset=offset, limit=limit
                )
                after = _page_reference(trials, None, TrialSort.DURATION, descending, now_ms())
                assert len(before) == 15
                got = [t.id for t in page.items]
                case = (descending, offset, limit)
                assert got in (before[offset : offset + limit], after[offset : offset + limit]), case


def test_no_trial_page_sorts_the_whole_experiment(sqlite_store: Store, tmp_path: Path) -> None:
    """Every page reads its trials in index order (a sort of ties, if any, is fine). SQLite's plans."""
    store = sqlite_store
    exp = new_experiment(store, tmp_path)
    finished_trial(store, exp.id, 0.5)
    plans: list[str] = []
    engine = store._read_engine

    def explain(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith("SELECT") and "FROM trials" in statement:
            rows = cursor.connection.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
            plans.append(f"{statement} -> {' | '.join(row[3] for row in rows)}")

    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", explain)
    try:
        for sort in TrialSort:
            for descending in (False, True):
                for status in (None, TrialStatus.SUCCEEDED):
                    if status is None or sort in (
                        TrialSort.SEQUENCE_ID,
                        TrialSort.FINAL_METRIC,
                        TrialSort.STATUS,
                    ):
                        store.trial_page(exp.id, status=status, sort=sort, descending=descending)
    finally:
        event.remove(engine, "before_cursor_execute", explain)
    assert plans
    sorted_all = [plan for plan in plans if "USE TEMP B-TREE FOR ORDER BY" in plan or "SCAN trials" in plan]
    assert sorted_all == []
    # the running trials of the duration order: the few without an end, not every started one
    running = [plan for plan in plans if "trials.start_time \nFROM" in plan and "end_time IS NULL" in plan]
    assert running and all("end_time=?" in plan for plan in running), running


def test_trials_get_consecutive_sequence_ids_and_nni_shaped_ids(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trials = [store.create_trial(exp.id, {"k": i}) for i in range(3)]
    assert [t.sequence_id for t in trials] == [0, 1, 2]
    assert [t.parameter_id for t in trials] == [0, 1, 2]
    assert all(len(t.id) == 5 and t.id[0].isalpha() and t.id.isalnum() for t in trials)
    assert trials[1].trial_dir == exp.experiment_dir / "trials" / trials[1].id
    assert store.get_experiment(exp.id).trials_started == 3


def test_concurrent_writers_never_see_database_is_locked(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    errors: list[BaseException] = []

    def write_many() -> None:
        try:
            for _ in range(40):
                trial = store.create_trial(exp.id, {})
                store.add_event(exp.id, EventKind.ERROR, "x", trial_id=trial.id)
                store.trial_page(exp.id, limit=5)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.trial_page(exp.id).total == 8 * 40
    assert sorted(t.sequence_id for t in store.all_trials(exp.id)) == list(range(8 * 40))


def test_a_status_change_is_logged_as_an_event_in_the_same_write(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trial_id = finished_trial(store, exp.id, 0.5, TrialStatus.FAILED)
    messages = [e.message for e in store.events(exp.id, EventKind.TRIAL_STATUS) if e.trial_id == trial_id]
    assert messages == ["-> WAITING", "WAITING -> RUNNING (pid 1)", "RUNNING -> FAILED"]


def test_an_ended_trial_is_not_ended_again(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trial_id = finished_trial(store, exp.id, 0.5)
    again = store.finish_trial(trial_id, TrialStatus.USER_CANCELED, reason="late cancel")
    assert again.status is TrialStatus.SUCCEEDED and again.reason is None


def test_ingest_stores_records_and_offset_together(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trial = store.create_trial(exp.id, {})
    result = store.ingest_metrics(
        trial.id,
        expected_offset=0,
        new_offset=120,
        reports=[
            report(PERIODICAL, 0.1, 0),
            report(PERIODICAL, 0.2, 1),
            report(FINAL, {"default": 0.3, "loss": 2}),
        ],
    )
    assert result.applied and result.stored == 3 and result.final is not None
    stored = store.get_trial(exp.id, trial.id)
    assert stored.metrics_offset == 120
    assert stored.final_metric == pytest.approx(0.3)
    assert stored.final_metric_data == {"default": 0.3, "loss": 2}
    assert [m.value for m in store.trial_metrics(trial.id, PERIODICAL)] == [0.1, 0.2]


def test_ingest_with_a_stale_offset_stores_nothing(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trial = store.create_trial(exp.id, {})
    chunk = [report(PERIODICAL, 0.1)]
    store.ingest_metrics(trial.id, expected_offset=0, new_offset=50, reports=chunk)
    repeat = store.ingest_metrics(trial.id, expected_offset=0, new_offset=50, reports=chunk)
    assert not repeat.applied and repeat.offset == 50
    assert len(store.trial_metrics(trial.id)) == 1


def test_a_trial_ends_with_its_last_metrics_stored_in_the_same_write(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trial = store.create_trial(exp.id, {})
    last = FinalMetrics(0, 80, (report(PERIODICAL, 0.1, 0), report(FINAL, 0.4)), ("not json",))
    ended = store.finish_trial(trial.id, TrialStatus.SUCCEEDED, exit_code=0, metrics=last)
    assert (ended.status, ended.metrics_offset, ended.final_metric) == (TrialStatus.SUCCEEDED, 80, 0.4)
    assert [m.value for m in store.trial_metrics(trial.id)] == [0.1, 0.4]
    assert [e.message for e in store.events(exp.id, EventKind.INVALID_METRIC)] == ["not json"]


def test_a_trial_ending_with_metrics_already_stored_stores_them_once(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trial = store.create_trial(exp.id, {})
    chunk = (report(PERIODICAL, 0.1), report(FINAL, 0.5))
    store.ingest_metrics(trial.id, expected_offset=0, new_offset=50, reports=chunk)
    ended = store.finish_trial(trial.id, TrialStatus.SUCCEEDED, metrics=FinalMetrics(0, 50, chunk))
    assert (ended.status, ended.metrics_offset) == (TrialStatus.SUCCEEDED, 50)
    assert len(store.trial_metrics(trial.id)) == 2


def test_ingestion_resumes_from_the_stored_offset_after_reopening(db_url: str | None, tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    lines = [f'{{"type": "PERIODICAL", "sequence": {i}, "value": {i / 10}, "time": 1.0}}\n' for i in range(4)]
    metrics.write_text(lines[0] + lines[1] + lines[2][:15])  # the third record is half written

    store = Store.open(tmp_path, db_url)
    exp = new_experiment(store, tmp_path)
    trial = store.create_trial(exp.id, {})
    chunk = read_metrics_file(metrics, 0)
    store.ingest_metrics(trial.id, expected_offset=0, new_offset=chunk.offset, reports=chunk.reports)
    store.close()

    with open(metrics, "a") as file:  # the trial goes on while no daemon runs
        file.write(lines[2][15:] + lines[3])
    reopened = Store.open(tmp_path, db_url)
    offset = reopened.get_trial(exp.id, trial.id).metrics_offset
    chunk = read_metrics_file(metrics, offset)
    reopened.ingest_metrics(trial.id, expected_offset=offset, new_offset=chunk.offset, reports=chunk.reports)
    values = [m.value for m in reopened.trial_metrics(trial.id)]
    reopened.close()
    assert values == [0.0, 0.1, 0.2, 0.3]


def test_only_the_first_final_result_counts(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trial = store.create_trial(exp.id, {})
    store.ingest_metrics(trial.id, expected_offset=0, new_offset=1, reports=[report(FINAL, 0.7)])
    later = store.ingest_metrics(trial.id, expected_offset=1, new_offset=2, reports=[report(FINAL, 0.9)])
    assert later.final is None
    assert store.get_trial(exp.id, trial.id).final_metric == pytest.approx(0.7)
    assert [e.message for e in store.events(exp.id, EventKind.INVALID_METRIC)] == [
        "a second final result was recorded but ignored: the first one counts"
    ]


def test_invalid_lines_are_recorded_as_events(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trial = store.create_trial(exp.id, {})
    store.ingest_metrics(trial.id, expected_offset=0, new_offset=9, reports=[], invalid=["byte 0: not JSON"])
    assert [e.message for e in store.events(exp.id, EventKind.INVALID_METRIC)] == ["byte 0: not JSON"]
    assert store.get_trial(exp.id, trial.id).metrics_offset == 9


def test_a_nan_metric_keeps_its_json_and_sorts_as_missing(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    nan_id = finished_trial(store, exp.id, math.nan)
    good_id = finished_trial(store, exp.id, 0.2)
    nan_trial = store.get_trial(exp.id, nan_id)
    assert math.isnan(nan_trial.final_metric_data)
    assert nan_trial.final_metric is None
    page = store.trial_page(exp.id, sort=TrialSort.FINAL_METRIC, descending=True)
    assert [t.id for t in page.items] == [good_id, nan_id]


def test_trial_page_sorts_on_the_server_with_missing_values_last(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    ids = [finished_trial(store, exp.id, v) for v in (0.5, None, 0.9, 0.1)]
    ascending = store.trial_page(exp.id, sort=TrialSort.FINAL_METRIC)
    descending = store.trial_page(exp.id, sort=TrialSort.FINAL_METRIC, descending=True)
    assert [t.id for t in ascending.items] == [ids[3], ids[0], ids[2], ids[1]]
    assert [t.id for t in descending.items] == [ids[2], ids[0], ids[3], ids[1]]


def test_trial_page_filters_by_status_and_pages_with_offset_and_limit(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    for i in range(7):
        finished_trial(store, exp.id, i / 10, TrialStatus.SUCCEEDED if i % 2 == 0 else TrialStatus.FAILED)
    page = store.trial_page(exp.id, status=TrialStatus.SUCCEEDED, offset=1, limit=2)
    assert page.total == 4
    assert [t.sequence_id for t in page.items] == [2, 4]


def test_best_trials_follow_the_optimize_mode_and_skip_failed_ones(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path, optimize_mode="minimize")
    low = finished_trial(store, exp.id, 0.1)
    finished_trial(store, exp.id, 0.0, TrialStatus.FAILED)
    mid = finished_trial(store, exp.id, 0.4)
    finished_trial(store, exp.id, 0.9)
    assert [t.id for t in store.best_trials(exp.id, 2, "minimize")] == [low, mid]


def test_metrics_since_returns_newer_metrics_in_id_order(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trial = store.create_trial(exp.id, {})
    reports = [report(PERIODICAL, i / 10, i) for i in range(5)]
    store.ingest_metrics(trial.id, expected_offset=0, new_offset=1, reports=reports)
    first = store.metrics_since(exp.id, 0, limit=2)
    rest = store.metrics_since(exp.id, first[-1].id)
    assert [m.sequence for m in first] == [0, 1]
    assert [m.sequence for m in rest] == [2, 3, 4]


def test_trial_counts_list_every_status(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    finished_trial(store, exp.id, 0.1)
    store.create_trial(exp.id, {})
    counts = store.trial_counts([exp.id])[exp.id]
    assert counts[TrialStatus.SUCCEEDED] == 1 and counts[TrialStatus.WAITING] == 1
    assert set(counts) == set(TrialStatus)


def test_tuner_checkpoint_round_trips(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    assert store.load_tuner_checkpoint(exp.id) is None
    store.save_tuner_checkpoint(exp.id, {"seen": [1, 2]})
    store.save_tuner_checkpoint(exp.id, {"seen": [1, 2, 3]})
    assert store.load_tuner_checkpoint(exp.id) == {"seen": [1, 2, 3]}


def test_status_change_and_error_are_kept(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    store.set_experiment_status(exp.id, ExperimentStatus.RUNNING, start_time=5)
    store.record_error(exp.id, "tuner failed", "Traceback ...")
    record = store.get_experiment(exp.id)
    assert record.status is ExperimentStatus.RUNNING and record.start_time == 5
    assert record.error == "tuner failed\nTraceback ..."
    assert store.events(exp.id, EventKind.ERROR)[0].data == {"traceback": "Traceback ..."}


def test_delete_experiment_removes_all_its_rows(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    other = new_experiment(store, tmp_path)
    finished_trial(store, exp.id, 0.3)
    finished_trial(store, other.id, 0.3)
    store.save_tuner_checkpoint(exp.id, {})
    assert store.delete_experiment(exp.id)
    assert store.get_experiment(exp.id) is None
    assert store.all_trials(exp.id) == [] and store.metrics_since(exp.id) == [] and store.events(exp.id) == []
    assert len(store.all_trials(other.id)) == 1
    assert not store.delete_experiment(exp.id)


def test_list_experiments_is_newest_first_and_filters_by_status(store: Store, tmp_path: Path) -> None:
    first = new_experiment(store, tmp_path)
    time.sleep(0.005)
    second = new_experiment(store, tmp_path)
    store.set_experiment_status(first.id, ExperimentStatus.DONE)
    assert [e.id for e in store.list_experiments()] == [second.id, first.id]
    assert [e.id for e in store.list_experiments(ExperimentStatus.DONE)] == [first.id]


def test_store_accepts_a_database_url(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    exp = new_experiment(store, tmp_path)
    store.close()
    assert (tmp_path / "elsewhere.db").is_file()
    again = Store(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert again.get_experiment(exp.id) is not None
    again.close()


def test_a_home_made_before_the_launch_intent_column_gets_it_and_keeps_its_trials(
    db_url: str | None, tmp_path: Path
) -> None:
    store = Store.open(tmp_path, db_url)
    exp = new_experiment(store, tmp_path)
    trial_id = finished_trial(store, exp.id, 0.5)
    store.close()
    engine = create_engine(db_url or f"sqlite:///{tmp_path / 'nasctl.db'}")
    with engine.begin() as connection:  # as an earlier nasctl left it
        connection.exec_driver_sql("ALTER TABLE trials DROP COLUMN launch_requested")
    engine.dispose()

    reopened = Store.open(tmp_path, db_url)
    try:
        trial = reopened.get_trial(exp.id, trial_id)
        assert trial is not None and (trial.final_metric, trial.launch_requested) == (0.5, None)
        waiting = reopened.create_trial(exp.id, {})
        assert reopened.mark_trial_launching(waiting.id, gpus=(1,)).launch_requested is not None
    finally:
        reopened.close()


def test_a_launch_intent_is_forgotten_when_its_process_never_started(store: Store, tmp_path: Path) -> None:
    trial = store.create_trial(new_experiment(store, tmp_path).id, {})
    launching = store.mark_trial_launching(trial.id, gpus=(0, 1))
    assert (launching.status, launching.gpus) == (TrialStatus.WAITING, (0, 1))
    again = store.forget_launch(trial.id)
    assert (again.status, again.launch_requested, again.gpus) == (TrialStatus.WAITING, None, ())


def test_a_trial_that_starts_at_once_is_created_with_its_launch_intent(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trial = store.create_trial(exp.id, {}, launching=True)
    stored = store.get_trial(exp.id, trial.id)
    assert (stored.status, stored.gpus) == (TrialStatus.WAITING, ())
    assert stored.launch_requested is not None and stored.launch_requested == trial.launch_requested
    assert store.create_trial(exp.id, {}).launch_requested is None


def test_metric_values_keep_nan_and_infinities_and_sort_as_missing(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trial = store.create_trial(exp.id, {})
    values = [math.nan, math.inf, {"default": -math.inf, "loss": math.nan}]
    reports = [report(PERIODICAL, value, i) for i, value in enumerate(values)]
    store.ingest_metrics(trial.id, expected_offset=0, new_offset=1, reports=reports)
    stored = store.trial_metrics(trial.id)
    assert math.isnan(stored[0].value) and stored[1].value == math.inf
    assert stored[2].value["default"] == -math.inf and math.isnan(stored[2].value["loss"])
    assert [m.default_value for m in stored] == [None, None, None]


def test_millisecond_times_past_2_to_the_31_round_trip(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    trial = store.create_trial(exp.id, {})
    later = 4_102_444_800_000  # 2100-01-01
    store.mark_trial_running(trial.id, pid=1, pid_create_time=0.0, gpus=(), start_time=later)
    store.finish_trial(trial.id, TrialStatus.SUCCEEDED, end_time=later + 1)
    stored = store.get_trial(exp.id, trial.id)
    assert (stored.start_time, stored.end_time) == (later, later + 1)


def test_an_experiment_name_of_any_length_is_kept(store: Store, tmp_path: Path) -> None:
    exp = store.create_experiment(
        name="n" * 1000,
        config={"trialCommand": "true", "note": "\u00e9\u6f22"},
        search_space=None,
        trial_concurrency=1,
        max_trial_number=None,
        max_experiment_duration=None,
        optimize_mode="maximize",
        tuner_name="t" * 300,
        experiments_root=tmp_path / "experiments",
    )
    stored = store.get_experiment(exp.id)
    assert (stored.name, stored.tuner_name) == ("n" * 1000, "t" * 300)
    assert stored.config["note"] == "\u00e9\u6f22"


def test_a_database_urls_password_is_masked_where_it_is_shown() -> None:
    assert (
        masked_url("postgresql+psycopg://me:pw@db.example:5432/nas")
        == "postgresql+psycopg://me:***@db.example:5432/nas"
    )
    assert masked_url("sqlite:////home/me/nasctl.db") == "sqlite:////home/me/nasctl.db"
    assert "pw" not in masked_url("not a url://me:pw@host")


def test_a_full_or_read_only_postgresql_server_is_a_storage_problem() -> None:
    errors = pytest.importorskip("psycopg.errors")
    full = OperationalError("INSERT", {}, errors.DiskFull("could not extend file"))
    read_only = OperationalError("INSERT", {}, errors.ReadOnlySqlTransaction("read-only transaction"))
    assert storage_problem(full) == "the database server's disk is full"
    assert storage_problem(read_only) == "the database is read-only"
    assert storage_problem(OperationalError("SELECT", {}, errors.UndefinedTable("no table"))) is None


def test_a_second_store_on_the_same_postgresql_database_is_refused(postgres_url: str, tmp_path: Path) -> None:
    first = Store.open(tmp_path / "one", postgres_url)
    try:
        with pytest.raises(DatabaseInUse, match=r"^another nasctl daemon uses the database postgresql"):
            Store.open(tmp_path / "two", postgres_url)
    finally:
        first.close()
    Store.open(tmp_path / "two", postgres_url).close()  # free again once the first one closed


def test_a_home_made_before_the_launch_column_gets_it_and_running_records_the_launch(
    db_url: str | None, tmp_path: Path
) -> None:
    store = Store.open(tmp_path, db_url)
    exp = new_experiment(store, tmp_path)
    old = finished_trial(store, exp.id, 0.5)
    store.close()
    engine = create_engine(db_url or f"sqlite:///{tmp_path / 'nasctl.db'}")
    with engine.begin() as connection:  # as nasctl before warm starts left it
        connection.exec_driver_sql("ALTER TABLE trials DROP COLUMN launch")
    engine.dispose()

    reopened = Store.open(tmp_path, db_url)
    try:
        trial = reopened.get_trial(exp.id, old)
        assert trial is not None and trial.launch is None
        warm = reopened.create_trial(exp.id, {})
        running = reopened.mark_trial_running(warm.id, pid=4321, pid_create_time=1.0, gpus=(), launch="warm")
        assert running.launch == "warm"
    finally:
        reopened.close()
