"""The experiment loop, end to end: a real daemon runs fast_trial.py processes.

Each test states one behaviour of the loop: limits, statuses, failure reasons, the tuner's
errors, ss_gen, GPUs (with a fake inventory, the one thing this machine lacks), and how fast a
free slot is filled again.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import SMALL_SPACE, RunningDaemon, wait_until

from manager.gpu import GpuInfo
from manager.store import EventKind

Config = Callable[..., dict[str, Any]]


def custom_tuner(tmp_path: Path, source: str, class_name: str, **class_args: Any) -> dict[str, Any]:
    """Write a tuner class to a file and return the config's ``tuner`` section for it."""
    folder = tmp_path / "tuner"
    folder.mkdir(exist_ok=True)
    header = "from manager.tuners.base import Tuner, TunerBusy, NoMoreTrials\n"
    (folder / "test_tuner.py").write_text(header + textwrap.dedent(source))
    return {
        "codeDirectory": str(folder),
        "classFileName": "test_tuner.py",
        "className": class_name,
        "classArgs": class_args,
    }


#: Tuner bodies share this: architectures by parameter id, cycling through SMALL_SPACE.
CYCLING = """
    def update_search_space(self, space):
        self.space = space

    def generate_parameters(self, parameter_id):
        return {"conv": ["conv3x3", "conv5x5", "maxpool"][parameter_id % 3], "skip": [["in0"], ["in1"]][parameter_id % 2]}
"""


def test_an_experiment_runs_max_trial_number_trials_then_is_done(
    daemon: RunningDaemon, fast_config: Config
) -> None:
    exp = daemon.create(fast_config(maxTrialNumber=4, trialConcurrency=2))
    done = daemon.wait_for_status(exp["id"], "DONE")
    trials = daemon.trials(exp["id"])
    assert [t["sequenceId"] for t in trials] == [0, 1, 2, 3]
    assert all(t["status"] == "SUCCEEDED" and t["finalMetric"] is not None for t in trials)
    assert done["trialCounts"]["SUCCEEDED"] == 4 and done["trialsStarted"] == 4
    assert done["endTime"] >= done["startTime"]


def test_an_exhausted_tuner_ends_the_experiment_with_every_architecture_tried(
    daemon: RunningDaemon, fast_config: Config
) -> None:
    exp = daemon.create(fast_config(maxTrialNumber=50, trialConcurrency=3))
    daemon.wait_for_status(exp["id"], "DONE")
    trials = daemon.trials(exp["id"])
    assert len(trials) == 6  # SMALL_SPACE holds 3 x 2 architectures
    assert len({json.dumps(t["parameters"], sort_keys=True) for t in trials}) == 6
    messages = [e.message for e in daemon.daemon.store.events(exp["id"], EventKind.EXPERIMENT_STATUS)]
    assert "RUNNING -> NO_MORE_TRIAL: the tuner has no more architectures" in messages


def test_the_metric_is_computed_by_the_trial_and_stored_once_per_record(
    daemon: RunningDaemon, fast_config: Config
) -> None:
    exp = daemon.create(fast_config(maxTrialNumber=3))
    daemon.wait_for_status(exp["id"], "DONE")
    metrics = daemon.client.get(f"/experiments/{exp['id']}/metrics").json()["items"]
    trials = daemon.trials(exp["id"])
    assert len(metrics) == 3 * len(trials)  # two intermediate results and a final one each
    for trial in trials:
        mine = [m for m in metrics if m["trialId"] == trial["id"]]
        assert [m["type"] for m in mine] == ["PERIODICAL", "PERIODICAL", "FINAL"]
        assert mine[-1]["value"] == trial["finalMetric"]


def test_a_failing_trial_is_failed_with_its_exit_code(daemon: RunningDaemon, fast_config: Config) -> None:
    exp = daemon.create(fast_config("--exit 3", maxTrialNumber=1))
    daemon.wait_for_status(exp["id"], "DONE")
    (trial,) = daemon.trials(exp["id"])
    assert (trial["status"], trial["exitCode"], trial["signal"], trial["reason"]) == (
        "FAILED",
        3,
        None,
        "exit code 3",
    )


def test_a_trial_that_exits_cleanly_without_a_final_result_is_failed(
    daemon: RunningDaemon, fast_config: Config
) -> None:
    exp = daemon.create(fast_config("--no-final", maxTrialNumber=1))
    daemon.wait_for_status(exp["id"], "DONE")
    (trial,) = daemon.trials(exp["id"])
    assert (trial["status"], trial["exitCode"], trial["reason"]) == ("FAILED", 0, "no final result")
    assert trial["finalMetric"] is None
    assert len(daemon.trial(exp["id"], trial["id"])["intermediate"]) == 2


def test_a_nan_final_result_is_recorded_and_shown_as_a_string(
    daemon: RunningDaemon, fast_config: Config
) -> None:
    exp = daemon.create(fast_config("--nan", maxTrialNumber=1))
    daemon.wait_for_status(exp["id"], "DONE")
    (trial,) = daemon.trials(exp["id"])
    assert trial["status"] == "SUCCEEDED"
    assert trial["finalMetric"] == "NaN" and trial["finalMetricData"] == "NaN"
    stored = daemon.daemon.store.get_trial(exp["id"], trial["id"])
    assert math.isnan(stored.final_metric_data)


def test_a_dict_metric_is_kept_whole_and_sorted_by_its_default(
    daemon: RunningDaemon, fast_config: Config
) -> None:
    exp = daemon.create(fast_config("--dict", maxTrialNumber=2))
    daemon.wait_for_status(exp["id"], "DONE")
    for trial in daemon.trials(exp["id"]):
        data = trial["finalMetricData"]
        assert set(data) == {"default", "loss"} and trial["finalMetric"] == data["default"]


def test_an_invalid_metric_line_is_an_event_not_a_crash(daemon: RunningDaemon, fast_config: Config) -> None:
    exp = daemon.create(fast_config("--garbage", maxTrialNumber=1))
    daemon.wait_for_status(exp["id"], "DONE")
    (trial,) = daemon.trials(exp["id"])
    assert trial["status"] == "SUCCEEDED"
    (event,) = daemon.daemon.store.events(exp["id"], EventKind.INVALID_METRIC)
    assert event.trial_id == trial["id"] and "not a JSON record" in event.message


def test_max_trial_duration_kills_the_trial_and_says_why(daemon: RunningDaemon, fast_config: Config) -> None:
    exp = daemon.create(fast_config("--sleep 60", maxTrialNumber=1, maxTrialDuration=1))
    daemon.wait_for_status(exp["id"], "DONE", timeout=20)
    (trial,) = daemon.trials(exp["id"])
    assert (trial["status"], trial["reason"]) == ("FAILED", "exceeded maxTrialDuration 1 s")
    assert trial["duration"] < 5


def test_max_experiment_duration_cancels_running_trials_and_ends_done(
    daemon: RunningDaemon, fast_config: Config
) -> None:
    exp = daemon.create(
        fast_config("--sleep 60", maxTrialNumber=10, trialConcurrency=2, maxExperimentDuration=1.5)
    )
    done = daemon.wait_for_status(exp["id"], ("DONE", "ERROR", "STOPPED"), timeout=20)
    assert done["status"] == "DONE"
    trials = daemon.trials(exp["id"])
    assert len(trials) == 2
    assert {(t["status"], t["reason"]) for t in trials} == {
        ("SYS_CANCELED", "experiment reached maxExperimentDuration 1.5 s")
    }
    assert 1.5 <= (done["endTime"] - done["startTime"]) / 1000 < 6


def test_stop_waits_until_the_trials_and_their_children_are_gone(
    daemon: RunningDaemon, fast_config: Config, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    exp = daemon.create(fast_config(f"--sleep 60 --grandchild {pid_file}", maxTrialNumber=5))
    wait_until(lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2, what="trial children")
    (running,) = daemon.trials(exp["id"], status="RUNNING")
    trial_pid = daemon.daemon.store.get_trial(exp["id"], running["id"]).pid
    stopped = daemon.client.post(f"/experiments/{exp['id']}/stop").json()
    assert stopped["status"] == "STOPPED"
    assert stopped["trialCounts"]["RUNNING"] == 0 and stopped["trialCounts"]["USER_CANCELED"] == 1
    (trial,) = daemon.trials(exp["id"])
    assert (trial["status"], trial["reason"]) == ("USER_CANCELED", "experiment stopped")
    for pid in [trial_pid, *map(int, pid_file.read_text().split())]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    terminal = [
        e for e in daemon.daemon.store.events(exp["id"], EventKind.TRIAL_STATUS) if e.trial_id == trial["id"]
    ]
    assert terminal[-1].message == "RUNNING -> USER_CANCELED: experiment stopped"


def test_a_free_slot_is_filled_well_under_a_second(
    daemon: RunningDaemon, fast_config: Config, record_property: Callable[[str, Any], None]
) -> None:
    exp = daemon.create(fast_config(maxTrialNumber=6, trialConcurrency=1))
    daemon.wait_for_status(exp["id"], "DONE")
    trials = daemon.trials(exp["id"])
    gaps = [b["startTime"] - a["endTime"] for a, b in itertools.pairwise(trials)]
    record_property("slot_gap_ms", gaps)
    print(
        f"gap between a trial's end and the next start: median {statistics.median(gaps)} ms, max {max(gaps)} ms"
    )
    assert len(gaps) == 5 and max(gaps) < 1000


def test_raising_max_trial_number_continues_a_done_experiment(
    daemon: RunningDaemon, fast_config: Config
) -> None:
    exp = daemon.create(fast_config(maxTrialNumber=2))
    daemon.wait_for_status(exp["id"], "DONE")
    patched = daemon.client.patch(f"/experiments/{exp['id']}", json={"maxTrialNumber": 4}).json()
    assert patched["status"] in ("INITIALIZED", "RUNNING", "NO_MORE_TRIAL", "DONE")
    assert patched["maxTrialNumber"] == 4
    done = daemon.wait_for_status(exp["id"], "DONE")
    assert done["trialsStarted"] == 4 and done["endTime"] is not None
    messages = [e.message for e in daemon.daemon.store.events(exp["id"], EventKind.EXPERIMENT_STATUS)]
    assert messages.count("INITIALIZED -> RUNNING") == 2


def test_raising_trial_concurrency_starts_more_trials_at_once(
    daemon: RunningDaemon, fast_config: Config
) -> None:
    exp = daemon.create(fast_config("--sleep 30", maxTrialNumber=6, trialConcurrency=1))
    wait_until(lambda: daemon.trials(exp["id"], status="RUNNING"), what="first trial running")
    daemon.client.patch(f"/experiments/{exp['id']}", json={"trialConcurrency": 3})
    wait_until(lambda: len(daemon.trials(exp["id"], status="RUNNING")) == 3, timeout=5, what="three running")
    daemon.client.post(f"/experiments/{exp['id']}/stop")


def test_the_search_space_comes_from_ss_gen_when_the_config_has_none(
    daemon: RunningDaemon, fast_config: Config
) -> None:
    exp = daemon.create(fast_config(space=None, maxTrialNumber=2))
    daemon.wait_for_status(exp["id"], "DONE")
    space = daemon.client.get(f"/experiments/{exp['id']}/search-space").json()
    assert space == SMALL_SPACE
    assert all(set(t["parameters"]) == {"conv", "skip"} for t in daemon.trials(exp["id"]))
    assert json.loads((Path(exp["experimentDir"]) / "search_space.json").read_text()) == SMALL_SPACE


def test_a_failing_ss_gen_puts_the_experiment_in_error_with_the_reason(
    daemon: RunningDaemon, fast_config: Config
) -> None:
    config = fast_config(space=None)
    config["trialCommand"] = "echo cannot import the model >&2; exit 4"
    exp = daemon.create(config)
    failed = daemon.wait_for_status(exp["id"], ("ERROR", "DONE"))
    assert failed["status"] == "ERROR"
    assert "exit code 4" in failed["error"] and "cannot import the model" in failed["error"]
    assert daemon.trials(exp["id"]) == []


def test_an_exception_in_receive_trial_result_is_recorded_and_the_experiment_goes_on(
    daemon: RunningDaemon, fast_config: Config, tmp_path: Path
) -> None:
    source = (
        "class BrokenLearner(Tuner):"
        + CYCLING
        + """
    def receive_trial_result(self, parameter_id, parameters, value):
        raise RuntimeError(f"cannot learn from {parameter_id}")
"""
    )
    tuner = custom_tuner(tmp_path, source, "BrokenLearner")
    exp = daemon.create(fast_config(maxTrialNumber=3, tuner=tuner))
    done = daemon.wait_for_status(exp["id"], ("DONE", "ERROR"))
    assert done["status"] == "DONE" and done["trialCounts"]["SUCCEEDED"] == 3
    assert "tuner receive_trial_result failed: cannot learn from" in done["error"]
    assert "Traceback" in done["error"] and "RuntimeError" in done["error"]
    assert len(daemon.daemon.store.events(exp["id"], EventKind.ERROR)) == 3


def test_a_failed_generate_is_recorded_and_asked_again_after_the_next_event(
    daemon: RunningDaemon, fast_config: Config, tmp_path: Path
) -> None:
    source = (
        "class FlakyGenerator(Tuner):"
        + """
    failed = False

    def update_search_space(self, space):
        self.space = space

    def generate_parameters(self, parameter_id):
        if parameter_id == 2 and not self.failed:
            self.failed = True
            raise ValueError("flaky once")
        return {"conv": ["conv3x3", "conv5x5", "maxpool"][parameter_id % 3], "skip": ["in0"]}

    def receive_trial_result(self, parameter_id, parameters, value):
        pass
"""
    )
    tuner = custom_tuner(tmp_path, source, "FlakyGenerator")
    # three slots: parameter 2 is asked (and fails) while trials 0 and 1 surely still run, so a
    # next event comes; with two it was asked only when one ended, and on a busy machine the
    # other could end first, leaving nothing running (an ERROR, rightly)
    exp = daemon.create(fast_config("--sleep 0.3", maxTrialNumber=4, trialConcurrency=3, tuner=tuner))
    done = daemon.wait_for_status(exp["id"], ("DONE", "ERROR"))
    assert done["status"] == "DONE" and done["trialCounts"]["SUCCEEDED"] == 4
    assert done["error"].startswith("tuner generate_parameters(2) failed: flaky once")


def test_a_busy_tuner_is_asked_again_when_a_result_arrives(
    daemon: RunningDaemon, fast_config: Config, tmp_path: Path
) -> None:
    source = (
        "class OneAtATime(Tuner):"
        + """
    outstanding = 0

    def update_search_space(self, space):
        self.space = space

    def generate_parameters(self, parameter_id):
        if self.outstanding:
            raise TunerBusy()
        self.outstanding += 1
        return {"conv": ["conv3x3", "conv5x5", "maxpool"][parameter_id % 3], "skip": ["in0"]}

    def receive_trial_result(self, parameter_id, parameters, value):
        self.outstanding -= 1
"""
    )
    tuner = custom_tuner(tmp_path, source, "OneAtATime")
    exp = daemon.create(fast_config(maxTrialNumber=3, trialConcurrency=3, tuner=tuner))
    done = daemon.wait_for_status(exp["id"], ("DONE", "ERROR"))
    assert done["status"] == "DONE" and done["trialCounts"]["SUCCEEDED"] == 3
    trials = daemon.trials(exp["id"])
    metrics = daemon.client.get(f"/experiments/{exp['id']}/metrics").json()["items"]
    reported = {m["trialId"]: m["time"] for m in metrics if m["type"] == "FINAL"}
    assert all(b["startTime"] >= reported[a["id"]] for a, b in itertools.pairwise(trials))
    assert done["error"] is None


def test_the_tuner_checkpoint_is_saved_after_results_and_restored_on_resume(
    daemon_factory: Callable[..., RunningDaemon], fast_config: Config, tmp_path: Path
) -> None:
    log_file = tmp_path / "tuner.log"
    source = (
        "class Remembering(Tuner):"
        + CYCLING
        + """
    def __init__(self, log_file):
        self.log_file = log_file
        self.results = 0

    def receive_trial_result(self, parameter_id, parameters, value):
        self.results += 1

    def save_checkpoint(self):
        return {"results": self.results}

    def load_checkpoint(self, state):
        with open(self.log_file, "a") as log:
            log.write(f"loaded {state['results']}\\n")
        self.results = state["results"]
"""
    )
    tuner = custom_tuner(tmp_path, source, "Remembering", log_file=str(log_file))
    first = daemon_factory()
    exp = first.create(fast_config(maxTrialNumber=2, tuner=tuner))
    first.wait_for_status(exp["id"], "DONE")
    assert first.daemon.store.load_tuner_checkpoint(exp["id"]) == {"results": 2}
    first.daemon.shutdown()

    second = daemon_factory()
    patched = second.client.patch(f"/experiments/{exp['id']}", json={"maxTrialNumber": 3})
    assert patched.status_code == 200
    second.wait_for_status(exp["id"], "DONE")
    assert log_file.read_text() == "loaded 2\n"
    assert second.daemon.store.load_tuner_checkpoint(exp["id"]) == {"results": 3}


def test_resume_continues_a_stopped_experiment(daemon: RunningDaemon, fast_config: Config) -> None:
    exp = daemon.create(fast_config("--sleep 30", maxTrialNumber=2))
    wait_until(lambda: daemon.trials(exp["id"], status="RUNNING"), what="a running trial")
    daemon.client.post(f"/experiments/{exp['id']}/stop")
    daemon.client.patch(f"/experiments/{exp['id']}", json={"maxTrialNumber": 3})
    resumed = daemon.client.post(f"/experiments/{exp['id']}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] in ("INITIALIZED", "RUNNING")
    wait_until(lambda: len(daemon.trials(exp["id"], status="RUNNING")) == 1, what="a trial after resume")
    assert [t["status"] for t in daemon.trials(exp["id"])] == ["USER_CANCELED", "RUNNING"]
    daemon.client.post(f"/experiments/{exp['id']}/stop")


def test_a_gpu_trial_waits_with_a_reason_when_its_gpu_is_taken(
    daemon_factory: Callable[..., RunningDaemon], fast_config: Config
) -> None:
    one_gpu = [
        GpuInfo(index=0, name="Fake", memory_total_mib=1000, memory_used_mib=0, utilization=0.0, processes=0)
    ]
    daemon = daemon_factory(gpu_inventory=lambda: one_gpu)
    exp = daemon.create(
        fast_config("--sleep 30 --dump-env", maxTrialNumber=2, trialConcurrency=2, trialGpuNumber=1)
    )
    running, waiting = wait_until(
        lambda: (
            len(trials := daemon.trials(exp["id"])) == 2
            and trials[0]["status"] == "RUNNING"
            and trials[1]["waitingReason"]
            and trials
        ),
        what="a trial waiting for the GPU",
    )
    assert running["status"] == "RUNNING" and running["gpus"] == [0]
    assert waiting["status"] == "WAITING" and waiting["waitingReason"].startswith(
        "needs 1 GPU: GPU 0 is full"
    )
    stdout = wait_until(
        lambda: daemon.client.get(f"/experiments/{exp['id']}/trials/{running['id']}/log/stdout").text,
        what="the trial's output",
    )
    assert json.loads(stdout.splitlines()[0])["CUDA_VISIBLE_DEVICES"] == "0"
    daemon.client.delete(f"/experiments/{exp['id']}/trials/{running['id']}")
    wait_until(
        lambda: daemon.trial(exp["id"], waiting["id"])["status"] == "RUNNING", what="the waiting trial"
    )
    assert daemon.trial(exp["id"], waiting["id"])["waitingReason"] is None
    daemon.client.post(f"/experiments/{exp['id']}/stop")


@pytest.mark.gpu
def test_a_real_gpu_trial_sees_one_device(daemon: RunningDaemon, fast_config: Config) -> None:
    exp = daemon.create(fast_config("--dump-env", maxTrialNumber=1, trialGpuNumber=1))
    daemon.wait_for_status(exp["id"], "DONE")
    (trial,) = daemon.trials(exp["id"])
    stdout = daemon.client.get(f"/experiments/{exp['id']}/trials/{trial['id']}/log/stdout").text
    assert json.loads(stdout.splitlines()[0])["CUDA_VISIBLE_DEVICES"] == str(trial["gpus"][0])


def test_a_trial_sees_its_ids_and_an_empty_cuda_visible_devices(
    daemon: RunningDaemon, fast_config: Config
) -> None:
    exp = daemon.create(fast_config("--dump-env", maxTrialNumber=1))
    daemon.wait_for_status(exp["id"], "DONE")
    (trial,) = daemon.trials(exp["id"])
    stdout = daemon.client.get(f"/experiments/{exp['id']}/trials/{trial['id']}/log/stdout").text
    seen = json.loads(stdout.splitlines()[0])
    assert seen["NASCTL_EXPERIMENT_ID"] == exp["id"] and seen["NASCTL_TRIAL_ID"] == trial["id"]
    assert seen["NASCTL_SEQUENCE_ID"] == "0" and seen["NASCTL_TRIAL_DIR"] == trial["trialDir"]
    assert seen["NASCTL_PARAMETER_FILE"] == str(Path(trial["trialDir"]) / "parameter.json")
    assert seen["CUDA_VISIBLE_DEVICES"] == ""


def test_a_slow_tuner_does_not_stall_the_api(
    daemon: RunningDaemon, fast_config: Config, tmp_path: Path
) -> None:
    source = (
        "import time\n\nclass Slow(Tuner):"
        + """
    def update_search_space(self, space):
        self.space = space

    def generate_parameters(self, parameter_id):
        time.sleep(1.5)
        return {"conv": "conv3x3", "skip": ["in0"]}

    def receive_trial_result(self, parameter_id, parameters, value):
        pass
"""
    )
    exp = daemon.create(fast_config(maxTrialNumber=1, tuner=custom_tuner(tmp_path, source, "Slow")))
    started = time.monotonic()
    assert daemon.client.get(f"/experiments/{exp['id']}").json()["trialsStarted"] == 0
    assert daemon.client.get("/health").status_code == 200
    assert time.monotonic() - started < 1.0  # the tuner sleeps 1.5 s in its own thread
    daemon.wait_for_status(exp["id"], "DONE")


def test_a_trial_that_cannot_be_started_puts_the_experiment_in_error(
    daemon: RunningDaemon, fast_config: Config, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    exp = daemon.create(fast_config(maxTrialNumber=5, trialCommand="sleep 0.5", trialCodeDirectory=str(code)))
    wait_until(lambda: daemon.trials(exp["id"], status="RUNNING"), what="a running trial")
    code.rmdir()
    failed = daemon.wait_for_status(exp["id"], ("ERROR", "DONE"))
    assert failed["status"] == "ERROR"
    assert failed["error"].startswith(f"cannot start the trial: trialCodeDirectory {code} does not exist")
    first, second = daemon.trials(exp["id"])
    assert (first["status"], first["reason"]) == ("FAILED", "no final result")  # `sleep` reports nothing
    assert second["status"] == "FAILED" and second["reason"].startswith("cannot start the trial: ")


def test_a_trial_costs_the_store_three_writes_created_running_and_ended(
    daemon: RunningDaemon, fast_config: Config
) -> None:
    """Created with its launch intent, RUNNING with its process, its last metrics with its end: the
    writer's transactions are the daemon's main cost per trial on a small machine."""
    from sqlalchemy import event

    commits: list[object] = []
    count = commits.append
    engine = daemon.daemon.store._write_engine
    event.listen(engine, "commit", count)
    try:
        exp = daemon.create(fast_config(maxTrialNumber=6, trialConcurrency=2))
        daemon.wait_for_status(exp["id"], "DONE")
    finally:
        event.remove(engine, "commit", count)
    # 3 per trial, the experiment's row and its statuses (RUNNING, NO_MORE_TRIAL, DONE): 22; the
    # slack is for polls that find results while a trial runs (a loaded machine); 4 per trial fails
    assert len(commits) < 4 * 6 + 4, len(commits)
