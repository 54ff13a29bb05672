"""kill -9 of the daemon mid-experiment, a reboot, and stops: nothing lost, nothing twice, nothing left.

Trials run ``faulty_trial.py --modes control``: each waits for orders in a folder, so the test
decides which trial finishes, dies or reports while the daemon is down.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from manager.loop.recovery import NO_FINAL_UNWATCHED
from reliability.helpers import (
    ServedDaemon,
    by_sequence,
    client_for,
    faulty_config,
    gone,
    metrics_in_file,
    nasctl,
    wait_for,
)

pytestmark = pytest.mark.slow
#: Launch modes: trials started cold, or forked warm from a server (trialPreload; the trial script
#: imports ``trials``, so that is what is preloaded). A crash or a stop must not tell them apart.
LAUNCHES = pytest.mark.parametrize("preload", [[], ["trials"]], ids=["cold", "warm"])


class Orders:
    """The folder a ``control`` trial reads its orders from (one file per sequence id)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def give(self, sequence: int, word: str) -> None:
        temporary = self.folder / f".{sequence}.tmp"
        temporary.write_text(word)
        os.replace(temporary, self.folder / str(sequence))


class Api:
    """A client of whichever daemon runs for ``home`` now (found through manager.json)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.client = client_for(json.loads((home / "manager.json").read_text()))

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def trials(self, experiment_id: str) -> dict[int, dict[str, Any]]:
        return by_sequence(self.get(f"/experiments/{experiment_id}/trials", limit=1000)["items"])

    def trial(self, experiment_id: str, trial_id: str) -> dict[str, Any]:
        return self.get(f"/experiments/{experiment_id}/trials/{trial_id}")

    def status(self, experiment_id: str) -> str:
        return str(self.get(f"/experiments/{experiment_id}")["status"])


def stored_processes(home: Path, experiment_id: str) -> dict[int, tuple[int, float]]:
    """sequence id -> (pid, start time) as the daemon stored them."""
    with sqlite3.connect(f"file:{home / 'nasctl.db'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT sequence_id, pid, pid_create_time FROM trials WHERE experiment_id = ? AND pid IS NOT NULL",
            (experiment_id,),
        ).fetchall()
    return {seq: (pid, created) for seq, pid, created in rows}


def intermediates(api: Api | ServedDaemon, experiment_id: str, trial: dict[str, Any]) -> list[int]:
    client = api.client
    response = client.get(f"/experiments/{experiment_id}/trials/{trial['id']}")
    assert response.status_code == 200, response.text
    return [m["value"]["n"] for m in response.json()["intermediate"]]


def running_with(
    api: Api | ServedDaemon, experiment_id: str, sequences: range | list[int], reported: int = 2
) -> dict[int, dict[str, Any]]:
    """Wait until these trials are RUNNING and ``reported`` intermediate results of each are stored."""

    def ready() -> dict[int, dict[str, Any]] | None:
        trials = by_sequence(api.client.get(f"/experiments/{experiment_id}/trials").json()["items"])
        for seq in sequences:
            trial = trials.get(seq)
            if trial is None or trial["status"] != "RUNNING":
                return None
            if len(intermediates(api, experiment_id, trial)) < reported:
                return None
        return trials

    return wait_for(f"trials {list(sequences)} running", ready)


def stop_cli_daemon(home: Path) -> None:
    done = nasctl(home, "manager", "stop", "--timeout", "60")
    assert done.returncode == 0, done.stderr


def assert_each_metric_stored_once(api: Api, experiment_id: str, trial: dict[str, Any]) -> None:
    """The database holds exactly what the trial wrote to metrics.jsonl: same records, once each."""
    written = metrics_in_file(Path(trial["trialDir"]))
    stored = api.get(f"/experiments/{experiment_id}/trials/{trial['id']}")
    stored_counts = [m["value"]["n"] for m in stored["intermediate"]]
    written_counts = [r["value"]["n"] for r in written if r["type"] == "PERIODICAL"]
    assert stored_counts == written_counts == list(range(len(written_counts)))
    finals_written = [r["value"] for r in written if r["type"] == "FINAL"]
    assert (stored["finalMetricData"] is not None) == bool(finals_written)
    everything = api.get(f"/experiments/{experiment_id}/metrics", limit=10000)["items"]
    mine = [m for m in everything if m["trialId"] == trial["id"]]
    assert len(mine) == len(written)


@LAUNCHES
def test_kill_9_then_resume_readopts_collects_and_continues_the_tuner(
    serve: Callable[..., ServedDaemon], tmp_path: Path, preload: list[str]
) -> None:
    home = tmp_path / "home"
    orders = Orders(tmp_path / "orders")
    first = serve(home)
    config = faulty_config("control", control=orders.folder, trialConcurrency=3, maxTrialNumber=5)
    exp = first.create({**config, "trialPreload": preload})
    exp_id = exp["id"]
    running_with(first, exp_id, range(3))
    orders.give(0, "final")
    wait_for("trial 0 succeeded", lambda: by_sequence(first.trials(exp_id))[0]["status"] == "SUCCEEDED")
    running_with(first, exp_id, [1, 2, 3])
    processes = stored_processes(home, exp_id)

    first.kill9()  # the daemon crashes with trials 1, 2 and 3 running
    orders.give(1, "final")  # finishes (with its final result) while no daemon runs
    orders.give(2, "die")  # dies without a final result while no daemon runs
    orders.give(3, "more")  # lives on, and reports one more result while no daemon runs
    wait_for("trials 1 and 2 ended", lambda: gone(*processes[1]) and gone(*processes[2]))
    trial3_dir = stored_trial_dirs(home, exp_id)[3]
    wait_for("trial 3's third result", lambda: len(metrics_in_file(trial3_dir)) == 3)
    assert not gone(*processes[3])

    resumed = nasctl(home, "resume", exp_id)  # starts a new daemon, which resumes the experiment
    assert resumed.returncode == 0, resumed.stderr
    api = Api(home)
    try:
        trials = api.trials(exp_id)
        assert trials[1]["status"] == "SUCCEEDED"
        assert "while the daemon was down" in trials[1]["reason"]
        assert (trials[2]["status"], trials[2]["reason"]) == ("FAILED", NO_FINAL_UNWATCHED)
        assert trials[3]["status"] == "RUNNING"
        assert stored_processes(home, exp_id)[3] == processes[3]  # re-adopted, not restarted
        assert intermediates(api, exp_id, trials[3]) == [0, 1, 2]  # reported while down: collected
        events = stored_events(home, exp_id, trials[3]["id"])
        assert f"re-adopted: pid {processes[3][0]} still runs this trial" in events

        # trial 2 gave its place back: 5 trials count, so two more start (4 and 5)
        running_with(api, exp_id, [3, 4, 5])
        for seq in (3, 4, 5):
            orders.give(seq, "final")
        wait_for("the experiment done", lambda: api.status(exp_id) == "DONE")
        trials = api.trials(exp_id)
        assert [trials[s]["status"] for s in range(6)] == [
            "SUCCEEDED",
            "SUCCEEDED",
            "FAILED",
            "SUCCEEDED",
            "SUCCEEDED",
            "SUCCEEDED",
        ]
        assert "re-adopted after a daemon restart" in trials[3]["reason"]
        assert {t["launch"] for t in trials.values()} == {"warm" if preload else "cold"}
        assert api.get(f"/experiments/{exp_id}")["trialsStarted"] == 6
        # the tuner went on from its checkpoint: a fresh Random(seed=7) would propose trial 2's
        # architecture again (it replays the same draws and knows only the successes)
        architectures = {json.dumps(t["parameters"], sort_keys=True) for t in trials.values()}
        assert len(architectures) == 6
        for trial in trials.values():
            assert_each_metric_stored_once(api, exp_id, trial)
        assert gone(*processes[3])
    finally:
        api.client.close()
        stop_cli_daemon(home)


def stored_trial_dirs(home: Path, experiment_id: str) -> dict[int, Path]:
    with sqlite3.connect(f"file:{home / 'nasctl.db'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT sequence_id, trial_dir FROM trials WHERE experiment_id = ?", (experiment_id,)
        ).fetchall()
    return {seq: Path(folder) for seq, folder in rows}


def stored_events(home: Path, experiment_id: str, trial_id: str) -> list[str]:
    with sqlite3.connect(f"file:{home / 'nasctl.db'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT message FROM events WHERE experiment_id = ? AND trial_id = ? ORDER BY id",
            (experiment_id, trial_id),
        ).fetchall()
    return [row[0] for row in rows]


def test_after_a_reboot_dead_trials_fail_give_their_place_back_and_a_reused_pid_is_left_alone(
    serve: Callable[..., ServedDaemon], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    orders = Orders(tmp_path / "orders")
    first = serve(home)
    exp_id = first.create(
        faulty_config("control", control=orders.folder, trialConcurrency=2, maxTrialNumber=3)
    )["id"]
    running_with(first, exp_id, range(2))
    processes = stored_processes(home, exp_id)
    first.kill9()
    for pid, _ in processes.values():  # the machine goes down: no process survives
        os.killpg(pid, signal.SIGKILL)
    wait_for("trials gone", lambda: all(gone(*p) for p in processes.values()))
    # after the reboot another program got trial 1's pid
    stranger = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        with sqlite3.connect(home / "nasctl.db") as db:
            db.execute(
                "UPDATE trials SET pid = ? WHERE experiment_id = ? AND sequence_id = 1",
                (stranger.pid, exp_id),
            )
        resumed = nasctl(home, "resume", exp_id)
        assert resumed.returncode == 0, resumed.stderr
        api = Api(home)
        try:
            trials = api.trials(exp_id)
            for seq in (0, 1):
                assert (trials[seq]["status"], trials[seq]["reason"]) == ("FAILED", NO_FINAL_UNWATCHED)
            assert stranger.poll() is None  # not the trial (another start time): neither killed nor adopted
            # both places came back: three more trials run to a DONE experiment
            running_with(api, exp_id, [2, 3])
            orders.give(2, "final")
            orders.give(3, "final")
            running_with(api, exp_id, [4])
            orders.give(4, "final")
            wait_for("the experiment done", lambda: api.status(exp_id) == "DONE")
            statuses = [t["status"] for _, t in sorted(api.trials(exp_id).items())]
            assert statuses == ["FAILED", "FAILED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]
        finally:
            api.client.close()
            stop_cli_daemon(home)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_after_a_crash_ends_the_trials_the_dead_daemon_left_and_resume_runs_the_full_budget(
    serve: Callable[..., ServedDaemon], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    orders = Orders(tmp_path / "orders")
    first = serve(home)
    exp_id = first.create(faulty_config("control", control=orders.folder, maxTrialNumber=2))["id"]
    running_with(first, exp_id, [0])
    orphan = stored_processes(home, exp_id)[0]
    first.kill9()

    stopped = nasctl(home, "stop", exp_id, "--json")  # a new daemon starts; the trial still runs
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["status"] == "STOPPED"
    assert gone(*orphan)
    api = Api(home)
    try:
        trial = api.trials(exp_id)[0]
        assert (trial["status"], trial["reason"]) == ("USER_CANCELED", "experiment stopped")
        assert "RUNNING -> USER_CANCELED: experiment stopped" in stored_events(home, exp_id, trial["id"])
        assert nasctl(home, "resume", exp_id).returncode == 0
        running_with(api, exp_id, [1])
        orders.give(1, "final")
        running_with(api, exp_id, [2])  # the cancelled trial gave its place back
        orders.give(2, "final")
        wait_for("the experiment done", lambda: api.status(exp_id) == "DONE")
    finally:
        api.client.close()
        stop_cli_daemon(home)


def tree_of(trial_dir: Path) -> list[int] | None:
    """The pids of a ``hang`` trial's child and grandchild (None until it wrote them)."""
    try:
        return [int(pid) for pid in (trial_dir / "tree.pids").read_text().split()]
    except (FileNotFoundError, ValueError):
        return None


@LAUNCHES
def test_stop_and_daemon_shutdown_end_whole_trees_record_every_end_and_resume_continues(
    serve: Callable[..., ServedDaemon], tmp_path: Path, preload: list[str]
) -> None:
    home = tmp_path / "home"
    daemon = serve(home, "--kill-grace", "1")
    config = {**faulty_config("hang", trialConcurrency=2, maxTrialNumber=2), "trialPreload": preload}
    stopped_by_cli = daemon.create(config)["id"]
    stopped_by_daemon = daemon.create(config)["id"]
    processes = {}
    for exp_id in (stopped_by_cli, stopped_by_daemon):
        wait_for("both trials started", lambda exp_id=exp_id: len(stored_processes(home, exp_id)) == 2)
        for seq, folder in stored_trial_dirs(home, exp_id).items():
            tree = wait_for("the trial's tree", lambda folder=folder: tree_of(folder))
            processes[(exp_id, seq)] = [stored_processes(home, exp_id)[seq][0], *tree]

    done = nasctl(home, "stop", stopped_by_cli)  # returns once every process of its trials is gone
    assert done.returncode == 0, done.stderr
    for seq in (0, 1):
        assert all(gone(pid) for pid in processes[(stopped_by_cli, seq)])
    for trial in daemon.trials(stopped_by_cli):
        assert (trial["status"], trial["reason"]) == ("USER_CANCELED", "experiment stopped")
        assert "RUNNING -> USER_CANCELED: experiment stopped" in stored_events(
            home, stopped_by_cli, trial["id"]
        )

    daemon.stop()  # SIGTERM: the daemon stops its experiments the same way before it exits
    assert daemon.proc.returncode == 0
    for seq in (0, 1):
        assert all(gone(pid) for pid in processes[(stopped_by_daemon, seq)])
    again = serve(home, "--kill-grace", "1")
    assert again.experiment(stopped_by_daemon)["status"] == "STOPPED"
    for trial in again.trials(stopped_by_daemon):
        assert (trial["status"], trial["reason"]) == ("USER_CANCELED", "daemon shut down")
    assert again.client.post(f"/experiments/{stopped_by_daemon}/resume").status_code == 200
    # cancelled trials gave their places back: two new trials start
    wait_for("two new trials", lambda: len(stored_processes(home, stopped_by_daemon)) == 4)
    assert again.client.post(f"/experiments/{stopped_by_daemon}/stop").status_code == 200
