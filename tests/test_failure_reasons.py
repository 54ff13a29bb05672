"""Failed trials explain themselves where they are counted (issue 17: "8 failed" and nothing else).

The experiment's JSON carries ``failureReasons`` (the commonest first, at most 3, each with one
trial) and ``otherFailures``; ``nasctl status`` shows them, ``nasctl trial ls`` has a REASON column.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemons import shut_down
from test_cli import create, nasctl, nasctl_json, wait_finished, write_config
from test_store import new_experiment

from manager.store import FailureSummary, Store
from nasctl.output import PIPED_REASON_WIDTH, status_text, terminal_width, trial_table
from trials.status import TrialStatus

# -- the store's summary ----------------------------------------------------------------------


@pytest.fixture
def store(db_url: str | None, tmp_path: Path) -> Iterator[Store]:
    """On both databases, as the store's own suite (the summary is one GROUP BY in SQL)."""
    opened = Store.open(tmp_path, db_url)
    yield opened
    opened.close()


def ended(store: Store, exp_id: str, status: TrialStatus, reason: str | None) -> str:
    trial = store.create_trial(exp_id, {"conv": {"_value": "a", "_idx": 0}})
    store.mark_trial_running(trial.id, pid=1, pid_create_time=0.0, gpus=())
    store.finish_trial(trial.id, status, exit_code=1, reason=reason)
    return trial.id


def test_failures_are_grouped_by_reason_commonest_first_each_with_one_of_its_trials(
    store: Store, tmp_path: Path
) -> None:
    exp = new_experiment(store, tmp_path)
    first = ended(store, exp.id, TrialStatus.FAILED, "no final result")
    sklearn = [ended(store, exp.id, TrialStatus.FAILED, "exit code 1: needs scikit-learn") for _ in range(3)]
    ended(store, exp.id, TrialStatus.USER_CANCELED, "canceled by user")
    ended(store, exp.id, TrialStatus.SUCCEEDED, "the final result is NaN")
    summary = store.failure_summaries([exp.id])[exp.id]
    assert [(r.reason, r.count) for r in summary.reasons] == [
        ("exit code 1: needs scikit-learn", 3),
        ("no final result", 1),
    ]
    assert summary.reasons[0].trial_id in sklearn and summary.reasons[1].trial_id == first
    assert (summary.others, summary.total) == (0, 4)


def test_beyond_three_reasons_the_rest_are_counted(store: Store, tmp_path: Path) -> None:
    exp = new_experiment(store, tmp_path)
    for i, reason in enumerate(["a", "b", "c", "d", "e", None]):
        for _ in range(6 - i):
            ended(store, exp.id, TrialStatus.FAILED, reason)
    summary = store.failure_summaries([exp.id])[exp.id]
    assert [(r.reason, r.count) for r in summary.reasons] == [("a", 6), ("b", 5), ("c", 4)]
    assert summary.others == 3 + 2 + 1


def test_one_call_summarizes_several_experiments(store: Store, tmp_path: Path) -> None:
    failing, fine = new_experiment(store, tmp_path), new_experiment(store, tmp_path)
    ended(store, failing.id, TrialStatus.FAILED, "no final result")
    ended(store, fine.id, TrialStatus.SUCCEEDED, None)
    summaries = store.failure_summaries([failing.id, fine.id])
    assert summaries[fine.id] == FailureSummary()
    assert [r.count for r in summaries[failing.id].reasons] == [1]
    assert store.failure_summaries([]) == {}


# -- nasctl status ----------------------------------------------------------------------------

SKLEARN = "exit code 1: this example needs scikit-learn installed"


def experiment(reasons: list[dict[str, Any]], others: int = 0, **extra: Any) -> dict[str, Any]:
    failed = sum(r["count"] for r in reasons) + others
    return {
        "id": "k3f9a2c1",
        "name": "digits",
        "status": "DONE",
        "maxTrialNumber": 8,
        "trialCounts": {"FAILED": failed, "SUCCEEDED": 8 - failed},
        "bestTrialId": None,
        "startTime": 1,
        "endTime": 2,
        "failureReasons": reasons,
        "otherFailures": others,
        **extra,
    }


def lines_of(exp: dict[str, Any]) -> list[str]:
    return status_text(exp, None).splitlines()


def test_status_says_why_trials_failed_and_where_to_read_more() -> None:
    lines = lines_of(experiment([{"reason": SKLEARN, "count": 8, "trialId": "Xa81c"}]))
    assert f"failed      {SKLEARN} (8)" in lines
    assert "            see: nasctl log stderr Xa81c" in lines


def test_status_gives_a_line_to_each_reason_and_counts_the_rest() -> None:
    reasons = [
        {"reason": SKLEARN, "count": 5, "trialId": "a"},
        {"reason": "no final result", "count": 2, "trialId": "b"},
        {"reason": None, "count": 1, "trialId": "c"},
    ]
    lines = lines_of(experiment(reasons, others=4))
    start = lines.index(f"failed      {SKLEARN} (5)")
    assert lines[start + 1 : start + 4] == [
        "            no final result (2)",
        "            no reason recorded (1)",
        "            4 more for other reasons (nasctl trial ls --status FAILED)",
    ]


def test_status_cuts_a_long_reason_to_one_short_line() -> None:
    long = "exit code 1: RuntimeError: " + "CUDA out of memory " * 20
    (line,) = [
        line
        for line in lines_of(experiment([{"reason": long, "count": 1, "trialId": "a"}]))
        if "CUDA" in line
    ]
    assert line.endswith("... (1)") and len(line) < 110


def test_status_without_failures_has_no_failed_line() -> None:
    assert not any(line.startswith("failed") for line in lines_of(experiment([])))


# -- nasctl trial ls --------------------------------------------------------------------------


def trial(trial_id: str, status: str, reason: str | None) -> dict[str, Any]:
    return {
        "id": trial_id,
        "status": status,
        "finalMetric": None,
        "parameters": {},
        "duration": 1.0,
        "reason": reason,
    }


def test_trial_ls_has_a_reason_column_when_a_trial_has_a_reason() -> None:
    lines = trial_table(
        [trial("a", "FAILED", SKLEARN), trial("b", "SUCCEEDED", None)], reasons=True
    ).splitlines()
    assert lines[0].split() == ["TRIAL", "STATUS", "METRIC", "DURATION", "REASON"]
    assert lines[1].endswith(SKLEARN) and lines[2].endswith(" -")


def test_trial_ls_has_no_reason_column_when_no_trial_has_one() -> None:
    assert "REASON" not in trial_table([trial("b", "SUCCEEDED", None)], reasons=True)


def test_a_piped_trial_ls_cuts_reasons_at_a_fixed_width() -> None:
    table = trial_table([trial("a", "FAILED", "x" * 200)], reasons=True, width=None)
    reason = table.splitlines()[1].split()[-1]
    assert len(reason) == PIPED_REASON_WIDTH and reason.endswith("...")


def test_on_a_terminal_every_line_fits_its_width() -> None:
    table = trial_table([trial("a", "FAILED", "y" * 200)], reasons=True, width=72)
    assert max(len(line) for line in table.splitlines()) == 72


def test_a_narrow_terminal_still_shows_the_start_of_the_reason() -> None:
    table = trial_table([trial("a", "FAILED", SKLEARN)], reasons=True, width=10)
    assert table.splitlines()[1].endswith(SKLEARN[:17] + "...")


def test_stdout_that_is_not_a_terminal_has_no_width() -> None:
    assert terminal_width(io.StringIO()) is None


# -- a real daemon ----------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "home"
    yield path
    shut_down(path)


def test_a_trial_command_that_always_fails_stops_the_experiment_and_says_why(
    home: Path, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        trialCommand="python3 cli_trial.py --fail",
        trialConcurrency=1,
        maxTrialNumber=12,
        maxConsecutiveFailures=3,
    )
    exp = wait_finished(home, create(home, config)["id"])
    why = "exit code 1: failing on purpose"
    assert exp["status"] == "ERROR"
    assert exp["trialCounts"]["FAILED"] == 3
    assert [(r["reason"], r["count"]) for r in exp["failureReasons"]] == [(why, 3)]
    status = nasctl(home, "status", exp["id"]).stdout.splitlines()
    assert "progress    3/12 trials done (0 succeeded, 3 failed)" in status
    assert f"failed      {why} (3)" in status
    assert (
        f"error       stopped after 3 consecutive failed trials (maxConsecutiveFailures: 3); the last: {why}"
        in status
    )
    listed = nasctl(home, "trial", "ls", exp["id"]).stdout.splitlines()
    assert listed[0].split()[-1] == "REASON"
    assert all(line.endswith(why) for line in listed[1:]) and len(listed) == 4
    assert all(t["reason"] == why for t in nasctl_json(home, "trial", "ls", exp["id"]))
