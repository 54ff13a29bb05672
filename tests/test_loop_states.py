"""The experiment loop's state machine, run against the simulated training service.

The same ExperimentManager, runner, tuner session, store (a real SQLite file) and recovery as in
the daemon; only the trials are scripts on a clock that runs 200 times faster than real time
(manager/training/simulated.py). So every limit, failure, stop/resume, tuner hand-off and crash
here takes milliseconds. The same behaviours with real processes are in test_experiment_loop.py
and tests/reliability.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL_SPACE

from manager.clock import Clock
from manager.config import parse_config
from manager.loop.experiments import ExperimentManager
from manager.loop.recovery import NO_FINAL_UNWATCHED
from manager.store import EventKind, Store, TrialRecord
from manager.training.base import TrialProcess, TrialSpec
from manager.training.simulated import Report, SimulatedCluster, SimulatedTrainingService, TrialScript
from trials.status import ExperimentStatus, TrialStatus

SPEED = 200.0  # clock seconds per real second
#: The final result of a trial is a function of its architecture, as in a real search.
ACCURACY = {"conv3x3": 0.5, "conv5x5": 0.7, "maxpool": 0.6}


def script(spec: TrialSpec, parameter: Mapping[str, Any]) -> TrialScript:
    """The trial's behaviour is the first word of trialCommand; its result comes from its architecture."""
    conv = parameter["parameters"]["conv"]
    accuracy = ACCURACY[conv["_value"] if isinstance(conv, dict) else conv]
    what, *args = spec.command.split()
    duration = float(args[0]) if args else 10.0
    if what == "succeed":
        return TrialScript.succeeding(accuracy, intermediate=(0.1, 0.2), duration=duration)
    if what == "fail":
        return TrialScript((Report(1.0, 0.1),), duration=duration, exit_code=3, stderr="Traceback\nboom\n")
    if what == "no-final":
        return TrialScript((Report(1.0, 0.1),), duration=duration)
    if what == "hang":
        return TrialScript((Report(1.0, 0.1),), duration=None)
    if what == "lost":  # the first trial's machine dies; the others succeed
        if spec.sequence_id == 0:
            return TrialScript((Report(1.0, 0.1),), duration=duration, lost="node 10.0.0.7 died")
        return TrialScript.succeeding(accuracy, intermediate=(0.1, 0.2), duration=duration)
    if what == "cannot-start":
        return TrialScript(start_error="No such file or directory: 'trian.py'")
    raise AssertionError(f"unknown behaviour {what!r}")


class StallingService(SimulatedTrainingService):
    """``submit`` stops for good (the daemon dies there) before or after the cluster starts the trial."""

    def __init__(self, cluster: SimulatedCluster, stall: str | None, assigns_gpus: bool = False) -> None:
        super().__init__(cluster)
        self.stall = stall
        self.assigns_gpus = assigns_gpus

    #: With stall "no_room", submits wait until this is set, and why_waiting says so.
    room = asyncio.Event()

    async def why_waiting(self, spec: TrialSpec) -> str | None:
        return "no node has room" if self.stall == "no_room" else None

    async def submit(self, spec: TrialSpec, parameter: Mapping[str, Any]) -> TrialProcess:
        if self.stall == "before_spawn":
            await asyncio.Event().wait()
        if self.stall == "no_room":
            await self.room.wait()
        process = await super().submit(spec, parameter)
        if self.stall == "after_spawn":
            await asyncio.Event().wait()
        return process


@dataclass
class Lab:
    """A manager on a simulated cluster, a real store, and what a test needs to drive them."""

    home: Path
    store: Store
    cluster: SimulatedCluster
    manager: ExperimentManager
    #: Where the next manager's service stalls a launch (see StallingService); None: nowhere.
    stall: str | None = None
    #: The next manager's service hands out GPUs itself, as Ray does.
    assigns_gpus: bool = False

    def new_manager(self) -> ExperimentManager:
        """A manager as a (re)started daemon opens it: same store, same cluster."""
        return ExperimentManager(
            self.store,
            self.home,
            clock=self.cluster.clock,
            metric_poll_seconds=1.0,
            services=lambda _config: StallingService(self.cluster, self.stall, self.assigns_gpus),
        )

    async def create(self, command: str = "succeed", **overrides: Any) -> str:
        body: dict[str, Any] = {
            "trialCommand": command,
            "trialCodeDirectory": str(self.home),
            "searchSpace": SMALL_SPACE,
            "trialConcurrency": 1,
            "maxTrialNumber": 3,
            "tuner": {"name": "Random", "classArgs": {"seed": 0}},
        }
        body.update(overrides)
        record = await self.manager.create(parse_config(body, self.home))
        return record.id

    async def finished(self, experiment_id: str, timeout: float = 20.0) -> ExperimentStatus:
        """Wait until the experiment's loop has ended; its final status."""
        return await self.status(
            experiment_id,
            ExperimentStatus.DONE,
            ExperimentStatus.STOPPED,
            ExperimentStatus.ERROR,
            timeout=timeout,
        )

    async def status(
        self, experiment_id: str, *wanted: ExperimentStatus, timeout: float = 20.0
    ) -> ExperimentStatus:
        deadline = time.monotonic() + timeout
        while True:
            status = self.manager.get(experiment_id).status
            runner = self.manager.runners.get(experiment_id)
            settled = status not in (
                ExperimentStatus.DONE,
                ExperimentStatus.STOPPED,
                ExperimentStatus.ERROR,
            ) or (runner is None or not runner.is_running)
            if status in wanted and settled:
                return status
            assert time.monotonic() < deadline, f"experiment is {status.value}, waited for {wanted}"
            await asyncio.sleep(0.005)

    async def until(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "condition never held"
            await asyncio.sleep(0.005)

    async def until_running(self, experiment_id: str, count: int) -> None:
        """Until ``count`` trials are RUNNING in the store (launched and recorded)."""
        await self.until(
            lambda: sum(t.status is TrialStatus.RUNNING for t in self.trials(experiment_id)) == count
        )

    def trials(self, experiment_id: str) -> list[TrialRecord]:
        return sorted(self.store.all_trials(experiment_id), key=lambda t: t.sequence_id)

    def messages(self, experiment_id: str, kind: EventKind) -> list[str]:
        return [event.message for event in self.store.events(experiment_id, kind)]

    async def crash(self) -> None:
        """The daemon dies: its tasks stop where they are, nothing more is recorded; trials run on."""
        tasks = []
        for runner in self.manager.runners.values():
            for trial in runner.trials.values():
                trial.tail_stop.set()
                if trial.task is not None:
                    tasks.append(trial.task)
            if runner.task is not None:
                tasks.append(runner.task)
            runner.tuner.release_thread(cancel=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.stall = None
        self.manager = self.new_manager()


def scenario_with(
    trial_script: Callable[[TrialSpec, Mapping[str, Any]], TrialScript], speed: float = SPEED
) -> Callable[[Callable[[Lab], Coroutine[Any, Any, None]]], Callable[[Path], None]]:
    """A decorator: the test runs ``body`` with a fresh lab whose simulated trials follow
    ``trial_script``, on its own event loop (no pytest-asyncio here)."""

    def scenario(body: Callable[[Lab], Coroutine[Any, Any, None]]) -> Callable[[Path], None]:
        def test(tmp_path: Path, db_url: str | None) -> None:  # on SQLite and PostgreSQL
            async def main() -> None:
                store = Store.open(tmp_path, db_url)
                cluster = SimulatedCluster(Clock(speed=speed), trial_script)
                lab = Lab(tmp_path, store, cluster, None)  # type: ignore[arg-type]
                lab.manager = lab.new_manager()
                try:
                    await asyncio.wait_for(body(lab), 60)
                finally:
                    await lab.manager.shutdown()
                    store.close()

            asyncio.run(main())

        test.__name__ = body.__name__
        test.__doc__ = body.__doc__
        return test

    return scenario


scenario = scenario_with(script)


def custom_tuner(folder: Path, body: str) -> dict[str, Any]:
    """The config's ``tuner`` section for a tuner class written to a file."""
    header = "from manager.tuners.base import Tuner, TunerBusy, NoMoreTrials\n\n\nclass T(Tuner):\n"
    (folder / "sim_tuner.py").write_text(header + textwrap.indent(textwrap.dedent(body), "    "))
    return {"codeDirectory": str(folder), "classFileName": "sim_tuner.py", "className": "T"}


CYCLING = """
def update_search_space(self, space):
    pass

def generate_parameters(self, parameter_id):
    return {"conv": ["conv3x3", "conv5x5", "maxpool"][parameter_id % 3], "skip": ["in0"]}

def receive_trial_result(self, parameter_id, parameters, value):
    pass
"""


# -- limits and statuses ----------------------------------------------------------------------


@scenario
async def test_an_experiment_runs_max_trial_number_trials_then_is_done(lab: Lab) -> None:
    exp = await lab.create(maxTrialNumber=4, trialConcurrency=2)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    trials = lab.trials(exp)
    assert [t.sequence_id for t in trials] == [0, 1, 2, 3]
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert [t.final_metric for t in trials] == [ACCURACY[t.parameters["conv"]["_value"]] for t in trials]


@scenario
async def test_no_more_trials_run_at_once_than_trial_concurrency(lab: Lab) -> None:
    exp = await lab.create(maxTrialNumber=9, trialConcurrency=3)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert lab.cluster.peak_running == 3
    assert len(lab.cluster.launches) == 6  # SMALL_SPACE holds 6 architectures


@scenario
async def test_raising_trial_concurrency_while_running_starts_more_trials_at_once(lab: Lab) -> None:
    exp = await lab.create("succeed 100", maxTrialNumber=6, trialConcurrency=1)
    await lab.until(lambda: len(lab.cluster.launches) == 1)
    await lab.manager.update(exp, trial_concurrency=3)
    await lab.until(lambda: len(lab.cluster.running) == 3)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert lab.cluster.peak_running == 3


@scenario
async def test_an_exhausted_tuner_ends_the_experiment_after_every_architecture(lab: Lab) -> None:
    exp = await lab.create(maxTrialNumber=50, trialConcurrency=2)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    trials = lab.trials(exp)
    assert len({json.dumps(t.parameters, sort_keys=True) for t in trials}) == len(trials) == 6
    assert "RUNNING -> NO_MORE_TRIAL: the tuner has no more architectures" in lab.messages(
        exp, EventKind.EXPERIMENT_STATUS
    )


@scenario
async def test_reaching_max_trial_number_says_so_while_the_last_trials_finish(lab: Lab) -> None:
    exp = await lab.create(maxTrialNumber=2, trialConcurrency=2)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert "RUNNING -> NO_MORE_TRIAL: maxTrialNumber 2 reached" in lab.messages(
        exp, EventKind.EXPERIMENT_STATUS
    )


@scenario
async def test_max_experiment_duration_cancels_running_trials_and_ends_done(lab: Lab) -> None:
    exp = await lab.create("hang", maxTrialNumber=5, trialConcurrency=2, maxExperimentDuration="60s")
    assert await lab.finished(exp) is ExperimentStatus.DONE
    trials = lab.trials(exp)
    assert [t.status for t in trials] == [TrialStatus.SYS_CANCELED] * 2
    assert {t.reason for t in trials} == {"experiment reached maxExperimentDuration 60 s"}
    assert lab.manager.get(exp).returned_slots == 0  # a deadline does not give places back
    # at the deadline, not long after (200 clock seconds are 1 real second: room for a busy machine)
    assert 60 <= lab.manager.get(exp).elapsed <= 120


@scenario
async def test_raising_max_trial_number_of_a_done_experiment_continues_it(lab: Lab) -> None:
    exp = await lab.create(maxTrialNumber=2)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    await lab.manager.update(exp, max_trial_number=4)
    await lab.until(lambda: len(lab.cluster.launches) == 4)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert [t.status for t in lab.trials(exp)] == [TrialStatus.SUCCEEDED] * 4


# -- how a trial ends -------------------------------------------------------------------------


@scenario
async def test_a_failing_trial_is_failed_with_its_exit_code_and_last_stderr_line(lab: Lab) -> None:
    exp = await lab.create("fail", maxTrialNumber=1)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    (trial,) = lab.trials(exp)
    assert (trial.status, trial.exit_code, trial.reason) == (TrialStatus.FAILED, 3, "exit code 3: boom")


@scenario
async def test_a_trial_that_exits_without_a_final_result_is_failed(lab: Lab) -> None:
    exp = await lab.create("no-final", maxTrialNumber=1)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    (trial,) = lab.trials(exp)
    assert (trial.status, trial.exit_code, trial.reason) == (TrialStatus.FAILED, 0, "no final result")
    assert len(lab.store.trial_metrics(trial.id)) == 1


@scenario
async def test_max_trial_duration_fails_a_trial_that_runs_too_long(lab: Lab) -> None:
    exp = await lab.create("hang", maxTrialNumber=2, maxTrialDuration="30s")
    assert await lab.finished(exp) is ExperimentStatus.DONE
    trials = lab.trials(exp)
    assert [(t.status, t.reason) for t in trials] == [
        (TrialStatus.FAILED, "exceeded maxTrialDuration 30 s")
    ] * 2


@scenario
async def test_a_trial_that_cannot_start_ends_the_experiment_in_error(lab: Lab) -> None:
    exp = await lab.create("cannot-start", maxTrialNumber=5, trialConcurrency=2)
    assert await lab.finished(exp) is ExperimentStatus.ERROR
    failed = [t for t in lab.trials(exp) if t.status is TrialStatus.FAILED]
    assert failed and failed[0].reason == "cannot start the trial: No such file or directory: 'trian.py'"
    assert lab.cluster.launches == []


@scenario
async def test_cancelling_one_trial_frees_its_slot_for_the_next(lab: Lab) -> None:
    exp = await lab.create("succeed 50", maxTrialNumber=3)
    await lab.until(lambda: len(lab.cluster.launches) == 1)
    first = lab.cluster.launches[0]
    cancelled = await lab.manager.cancel_trial(exp, first)
    assert (cancelled.status, cancelled.reason) == (TrialStatus.USER_CANCELED, "canceled by user")
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert [t.status for t in lab.trials(exp)] == [
        TrialStatus.USER_CANCELED,
        TrialStatus.SUCCEEDED,
        TrialStatus.SUCCEEDED,
    ]


# -- stop and resume --------------------------------------------------------------------------


@scenario
async def test_a_stop_cancels_trials_and_resume_runs_the_full_budget(lab: Lab) -> None:
    exp = await lab.create("succeed 50", maxTrialNumber=4, trialConcurrency=2)
    await lab.until(lambda: len(lab.cluster.running) == 2)
    stopped = await lab.manager.stop(exp)
    assert stopped.status is ExperimentStatus.STOPPED
    assert [t.status for t in lab.trials(exp)] == [TrialStatus.USER_CANCELED] * 2
    assert lab.cluster.running == []
    await lab.manager.resume(exp)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    statuses = [t.status for t in lab.trials(exp)]
    assert statuses.count(TrialStatus.SUCCEEDED) == 4  # the cancelled ones gave their places back


@scenario
async def test_only_an_active_experiment_can_be_stopped(lab: Lab) -> None:
    from manager.loop.errors import InvalidState

    exp = await lab.create(maxTrialNumber=1)
    await lab.finished(exp)
    with pytest.raises(InvalidState, match="only an active one can be stopped"):
        await lab.manager.stop(exp)


# -- the tuner --------------------------------------------------------------------------------


@scenario
async def test_the_tuner_hears_each_result_before_it_proposes_again(lab: Lab) -> None:
    log = lab.home / "calls.jsonl"
    body = CYCLING.replace(
        "def receive_trial_result(self, parameter_id, parameters, value):\n    pass",
        "def receive_trial_result(self, parameter_id, parameters, value):\n"
        f"    open({str(log)!r}, 'a').write(f'result {{parameter_id}}\\n')",
    ).replace(
        "def generate_parameters(self, parameter_id):\n",
        f"def generate_parameters(self, parameter_id):\n    open({str(log)!r}, 'a').write(f'generate {{parameter_id}}\\n')\n",
    )
    exp = await lab.create(maxTrialNumber=3, tuner=custom_tuner(lab.home, body))
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert log.read_text().split("\n")[:-1] == [
        "generate 0",
        "result 0",
        "generate 1",
        "result 1",
        "generate 2",
        "result 2",
    ]


@scenario
async def test_a_busy_tuner_is_asked_again_after_the_next_result(lab: Lab) -> None:
    body = CYCLING.replace(
        "def generate_parameters(self, parameter_id):\n",
        "def generate_parameters(self, parameter_id):\n"
        "    self.waiting = getattr(self, 'waiting', 0)\n"
        "    if self.waiting:\n        raise TunerBusy()\n"
        "    self.waiting += 1\n",
    ).replace(
        "def receive_trial_result(self, parameter_id, parameters, value):\n    pass",
        "def receive_trial_result(self, parameter_id, parameters, value):\n    self.waiting -= 1",
    )
    exp = await lab.create(maxTrialNumber=3, trialConcurrency=3, tuner=custom_tuner(lab.home, body))
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert lab.cluster.peak_running == 1  # one at a time: it waits for each result
    assert [t.status for t in lab.trials(exp)] == [TrialStatus.SUCCEEDED] * 3


@scenario
async def test_a_busy_tuner_with_no_trial_running_ends_in_error(lab: Lab) -> None:
    body = CYCLING.replace(
        "def generate_parameters(self, parameter_id):\n",
        "def generate_parameters(self, parameter_id):\n    raise TunerBusy()\n",
    )
    exp = await lab.create(tuner=custom_tuner(lab.home, body))
    assert await lab.finished(exp) is ExperimentStatus.ERROR
    assert "tuner is busy (waiting for results) but no trial is running" in lab.messages(exp, EventKind.ERROR)


@scenario
async def test_a_tuner_that_fails_with_nothing_running_ends_in_error(lab: Lab) -> None:
    body = CYCLING.replace(
        "def generate_parameters(self, parameter_id):\n",
        "def generate_parameters(self, parameter_id):\n    raise KeyError('no idea')\n",
    )
    exp = await lab.create(tuner=custom_tuner(lab.home, body))
    assert await lab.finished(exp) is ExperimentStatus.ERROR
    assert "tuner generate_parameters(0) failed: 'no idea'" in lab.messages(exp, EventKind.ERROR)
    assert lab.trials(exp) == []


@scenario
async def test_a_trial_whose_machine_died_fails_with_the_reason_and_gives_its_place_back(lab: Lab) -> None:
    exp = await lab.create("lost", maxTrialNumber=2)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    trials = lab.trials(exp)
    assert [(t.status, t.reason) for t in trials] == [
        (TrialStatus.FAILED, "node 10.0.0.7 died"),
        (TrialStatus.SUCCEEDED, None),
        (TrialStatus.SUCCEEDED, None),
    ]


@scenario
async def test_a_platform_that_assigns_gpus_itself_runs_gpu_trials_without_local_gpus(lab: Lab) -> None:
    lab.assigns_gpus = True
    lab.manager = lab.new_manager()
    exp = await lab.create("succeed", trialGpuNumber=2, maxTrialNumber=1)
    assert await lab.finished(exp) is ExperimentStatus.DONE


@scenario
async def test_a_trial_the_platform_has_no_room_for_says_why_it_waits(lab: Lab) -> None:
    StallingService.room = asyncio.Event()
    lab.stall = "no_room"
    lab.manager = lab.new_manager()
    exp = await lab.create("succeed", maxTrialNumber=1)
    await lab.until(lambda: any(t.waiting_reason == "no node has room" for t in lab.trials(exp)), timeout=10)
    assert lab.trials(exp)[0].status is TrialStatus.WAITING
    StallingService.room.set()
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert lab.trials(exp)[0].waiting_reason is None  # cleared once it runs


# -- crash recovery ---------------------------------------------------------------------------


@scenario
async def test_after_a_crash_live_trials_are_adopted_and_their_results_count(lab: Lab) -> None:
    exp = await lab.create("succeed 100", maxTrialNumber=3, trialConcurrency=2)
    await lab.until_running(exp, 2)
    adopted = list(lab.cluster.running)
    await lab.crash()
    assert await lab.manager.recover() == [exp]
    assert lab.manager.get(exp).status is ExperimentStatus.STOPPED
    assert "2 trial(s) still run" in lab.messages(exp, EventKind.DAEMON_RESTARTED)[0]
    await lab.manager.resume(exp)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    trials = {t.id: t for t in lab.trials(exp)}
    assert all(trials[i].status is TrialStatus.SUCCEEDED for i in adopted)
    assert all(trials[i].reason == "re-adopted after a daemon restart" for i in adopted)
    assert len(lab.cluster.launches) == 3  # nothing ran twice
    for trial in trials.values():  # nothing reported was lost or counted twice
        assert [m.type for m in lab.store.trial_metrics(trial.id)] == ["PERIODICAL", "PERIODICAL", "FINAL"]


@scenario
async def test_a_trial_that_ended_while_no_daemon_ran_is_settled_by_its_final_result(lab: Lab) -> None:
    exp = await lab.create("succeed 20", maxTrialNumber=1)
    await lab.until_running(exp, 1)
    await lab.crash()
    await lab.until(lambda: lab.cluster.running == [])
    await lab.manager.recover()
    (trial,) = lab.trials(exp)
    assert trial.status is TrialStatus.SUCCEEDED
    assert trial.final_metric == ACCURACY[trial.parameters["conv"]["_value"]]
    assert "its final result counts" in (trial.reason or "")


@scenario
async def test_a_trial_that_ended_unwatched_without_a_final_result_gives_its_place_back(lab: Lab) -> None:
    exp = await lab.create("no-final 20", maxTrialNumber=1)
    await lab.until_running(exp, 1)
    await lab.crash()
    await lab.until(lambda: lab.cluster.running == [])
    await lab.manager.recover()
    (trial,) = lab.trials(exp)
    assert (trial.status, trial.reason) == (TrialStatus.FAILED, NO_FINAL_UNWATCHED)
    await lab.manager.resume(exp)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert len(lab.cluster.launches) == 2  # the place it gave back ran another trial


@scenario
async def test_stopping_a_recovered_experiment_ends_the_trials_it_left_running(lab: Lab) -> None:
    exp = await lab.create("hang", maxTrialNumber=2, trialConcurrency=2)
    await lab.until_running(exp, 2)
    await lab.crash()
    await lab.manager.recover()
    await lab.manager.stop(exp)
    assert lab.cluster.running == []
    assert [(t.status, t.reason) for t in lab.trials(exp)] == [
        (TrialStatus.USER_CANCELED, "experiment stopped")
    ] * 2


@scenario
async def test_a_resumed_tuner_continues_from_its_checkpoint(lab: Lab) -> None:
    exp = await lab.create("succeed 30", maxTrialNumber=6, trialConcurrency=1)
    await lab.until(lambda: len(lab.cluster.launches) == 3)
    await lab.until_running(exp, 1)
    await lab.crash()
    await lab.manager.recover()
    await lab.manager.resume(exp)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    architectures = [json.dumps(t.parameters, sort_keys=True) for t in lab.trials(exp)]
    assert len(set(architectures)) == 6  # the restored tuner never proposed a seen architecture again


# -- exactly-once launch: a crash between the launch intent and the stored process ------------


async def crash_in_launch(lab: Lab, command: str, stall: str, **overrides: Any) -> str:
    """Create an experiment whose first launch the daemon dies in (``stall``), then recover."""
    lab.stall = stall
    lab.manager = lab.new_manager()
    exp = await lab.create(command, **overrides)
    await lab.until(lambda: any(t.launch_requested is not None for t in lab.trials(exp)))
    if stall == "after_spawn":
        await lab.until(lambda: len(lab.cluster.launches) == 1)
    await lab.crash()
    assert await lab.manager.recover() == [exp]
    return exp


@scenario
async def test_a_crash_after_the_process_started_adopts_it_rather_than_launching_it_again(lab: Lab) -> None:
    exp = await crash_in_launch(lab, "succeed 100", "after_spawn", maxTrialNumber=2)
    first = lab.trials(exp)[0]
    assert first.status is TrialStatus.RUNNING and first.pid is not None
    await lab.manager.resume(exp)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert sorted(lab.cluster.launches) == sorted(t.id for t in lab.trials(exp))  # each once
    for trial in lab.trials(exp):
        assert trial.status is TrialStatus.SUCCEEDED
        assert [m.type for m in lab.store.trial_metrics(trial.id)] == ["PERIODICAL", "PERIODICAL", "FINAL"]


@scenario
async def test_a_crash_before_the_process_started_launches_it_once_after_resume(lab: Lab) -> None:
    exp = await crash_in_launch(lab, "succeed 20", "before_spawn", maxTrialNumber=2)
    first = lab.trials(exp)[0]
    assert (first.status, first.launch_requested, lab.cluster.launches) == (TrialStatus.WAITING, None, [])
    await lab.manager.resume(exp)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert sorted(lab.cluster.launches) == sorted(t.id for t in lab.trials(exp))
    assert [t.status for t in lab.trials(exp)] == [TrialStatus.SUCCEEDED] * 2


@scenario
async def test_a_launch_that_ended_before_recovery_is_settled_by_its_final_result(lab: Lab) -> None:
    lab.stall = "after_spawn"
    lab.manager = lab.new_manager()
    exp = await lab.create("succeed 20", maxTrialNumber=1)
    await lab.until(lambda: len(lab.cluster.launches) == 1)
    await lab.crash()
    await lab.until(lambda: lab.cluster.running == [])
    await lab.manager.recover()
    (trial,) = lab.trials(exp)
    assert trial.status is TrialStatus.SUCCEEDED
    assert "its final result counts" in (trial.reason or "")


@scenario
async def test_stopping_after_a_crash_in_the_launch_window_leaves_no_process(lab: Lab) -> None:
    exp = await crash_in_launch(lab, "hang", "after_spawn", maxTrialNumber=1)
    await lab.manager.stop(exp)
    assert lab.cluster.running == []
    assert [t.status for t in lab.trials(exp)] == [TrialStatus.USER_CANCELED]
