"""Trials that misbehave: each is recorded with a visible reason, the daemon's memory stays
bounded, and the other trials do not notice."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from reliability.helpers import (
    FINISHED,
    SPACE12,
    ServedDaemon,
    by_sequence,
    faulty_config,
    gone,
    metrics_in_file,
    wait_for,
)

pytestmark = pytest.mark.slow

MB = 1024 * 1024
#: Launch modes: cold, or forked warm from a server that preloaded ``trials`` (trialPreload).
LAUNCHES = pytest.mark.parametrize("preload", [[], ["trials"]], ids=["cold", "warm"])


@LAUNCHES
def test_max_trial_duration_kills_a_tree_that_ignores_sigterm_and_escapes_its_session(
    daemon_factory: Callable[..., Any], preload: list[str]
) -> None:
    daemon = daemon_factory(kill_grace=1.0)
    exp = daemon.create(faulty_config("hang", maxTrialDuration=2, trialPreload=preload))
    trial_dir = Path(wait_for("the trial", lambda: daemon.trials(exp["id"]))[0]["trialDir"])
    tree = [int(pid) for pid in wait_for("its tree", lambda: _read(trial_dir / "tree.pids")).split()]
    main = daemon.daemon.store.all_trials(exp["id"])[0]
    assert os.getsid(tree[1]) != os.getsid(main.pid)  # the grandchild left the trial's session
    daemon.wait_for_status(exp["id"], "DONE", timeout=60)
    (trial,) = daemon.trials(exp["id"])
    assert (trial["status"], trial["reason"], trial["launch"]) == (
        "FAILED",
        "exceeded maxTrialDuration 2 s",
        "warm" if preload else "cold",
    )
    assert gone(main.pid, main.pid_create_time)
    assert all(gone(pid) for pid in tree)  # the child in its group and the grandchild in its own session


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


class PeakMemory:
    """Samples a process's resident memory in a thread; ``peak`` is the most seen."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.start = self.process.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def stored_metric_count(home: Path, trial_id: str) -> tuple[int, int]:
    with sqlite3.connect(f"file:{home / 'nasctl.db'}?mode=ro", uri=True) as db:
        rows = dict(
            db.execute("SELECT type, count(*) FROM metrics WHERE trial_id = ? GROUP BY type", (trial_id,))
        )
    return rows.get("PERIODICAL", 0), rows.get("FINAL", 0)


@LAUNCHES
def test_every_fault_is_recorded_with_a_reason_and_neither_the_daemon_nor_other_trials_suffer(
    serve: Callable[..., ServedDaemon], preload: list[str]
) -> None:
    modes = ["ok", "nofinal", "crash", "oom", "flood:300", "nan", "many:100000"]
    daemon = serve(None, "--max-log-size", str(32 * MB))
    memory = PeakMemory(daemon.pid)
    try:
        exp = daemon.create(
            faulty_config(
                ",".join(modes),
                trialConcurrency=len(modes),
                maxTrialNumber=len(modes),
                searchSpace=SPACE12,
                trialPreload=preload,
            )
        )
        wait_for("the experiment finished", lambda: daemon.experiment(exp["id"])["status"] in FINISHED, 120)
    finally:
        memory.stop()
    assert daemon.experiment(exp["id"])["status"] == "DONE"
    trials = by_sequence(daemon.trials(exp["id"]))
    outcome = {modes[seq]: (t["status"], t["reason"]) for seq, t in trials.items()}
    assert outcome["ok"] == ("SUCCEEDED", None)
    assert outcome["nofinal"] == ("FAILED", "no final result")
    assert outcome["crash"] == ("FAILED", "exit code 1: ZeroDivisionError: division by zero")
    assert outcome["oom"] == (
        "FAILED",
        "killed by signal 9 (SIGKILL, not sent by nasctl: often the out-of-memory killer)",
    )
    status, reason = outcome["flood:300"]
    assert status == "SUCCEEDED" and reason.startswith(f"stdout passed {32 * MB} bytes: ")
    assert outcome["nan"] == ("SUCCEEDED", "the final result is NaN")
    assert outcome["many:100000"] == ("SUCCEEDED", None)
    assert {t["launch"] for t in trials.values()} == {"warm" if preload else "cold"}

    many = trials[modes.index("many:100000")]
    assert stored_metric_count(daemon.home, many["id"]) == (100_000, 1)  # every one, once
    ok = trials[0]
    assert stored_metric_count(daemon.home, ok["id"]) == (2, 1)
    assert ok["finalMetricData"] == metrics_in_file(Path(ok["trialDir"]))[-1]["value"]
    flood_log = Path(trials[modes.index("flood:300")]["trialDir"]) / "stdout"
    assert flood_log.stat().st_size < 300 * MB  # cut back while it ran; the daemon never read it
    # 300 MB of stdout and 100,000 results went by; the daemon's memory did not follow them
    assert memory.peak - memory.start < 150 * MB, (memory.start, memory.peak)
