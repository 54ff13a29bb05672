"""Early stopping: an assessor judges running trials, and the loop stops the bad ones.

The same manager, runner, store and recovery as the daemon on the simulated training service
(see test_loop_states.py). The assessor is a small custom one written to a file, loaded as a
user's would be; it logs what it is told to a JSON-lines file that the tests read.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL_SPACE
from test_loop_states import Lab, scenario_with

from manager.config import ConfigError, parse_config
from manager.store import EventKind
from manager.training.base import TrialSpec
from manager.training.simulated import TrialScript
from trials.status import ExperimentStatus, TrialStatus

SPEED = 200.0
#: Every architecture's learning curve: conv3x3 learns nothing, the others learn well.
CURVES = {"conv3x3": (0.1, 0.1, 0.1, 0.1), "conv5x5": (0.5, 0.6, 0.7, 0.8), "maxpool": (0.4, 0.5, 0.6, 0.7)}

ASSESSOR = '''
import json
from manager.assessors.base import AssessResult, Assessor, AssessorError


class Threshold(Assessor):
    """Bad when the latest result is below ``below`` from ``start_step`` results on."""

    @classmethod
    def validate_class_args(cls, log, below=0.0, start_step=1, raise_on=None):
        if not isinstance(start_step, int) or start_step < 1:
            raise AssessorError(f"classArgs.start_step: must be a whole number >= 1, got {start_step!r}")

    def __init__(self, log, below=0.0, start_step=1, raise_on=None):
        self.log, self.below, self.start_step, self.raise_on = log, below, start_step, raise_on
        self.judged = 0
        self.ended = 0

    def _write(self, *entry):
        with open(self.log, "a") as f:
            f.write(json.dumps(entry) + "\\n")

    def assess_trial(self, trial_id, history):
        self.judged += 1
        self._write("assess", trial_id, len(history))
        if self.raise_on is not None and len(history) == self.raise_on:
            raise RuntimeError("broken assessor")
        if len(history) >= self.start_step and history[-1] < self.below:
            return AssessResult.Bad
        return AssessResult.Good

    def trial_end(self, trial_id, success):
        self.ended += 1
        self._write("end", trial_id, success)

    def reason(self, trial_id):
        return f"Threshold: below {self.below}"

    def save_checkpoint(self):
        return {"judged": self.judged, "ended": self.ended}

    def load_checkpoint(self, state):
        self.judged, self.ended = state["judged"], state["ended"]
        self._write("loaded", state)
'''

TUNER = """
import json
from manager.tuners.base import Tuner


class Cycling(Tuner):
    def __init__(self, log):
        self.log = log

    def update_search_space(self, space):
        pass

    def generate_parameters(self, parameter_id):
        return {"conv": ["conv3x3", "conv5x5", "maxpool"][parameter_id % 3], "skip": ["in0"]}

    def receive_trial_result(self, parameter_id, parameters, value):
        with open(self.log, "a") as f:
            f.write(json.dumps([parameter_id, value]) + "\\n")
"""


def script(spec: TrialSpec, parameter: Mapping[str, Any]) -> TrialScript:
    """``curve <duration>``: four intermediate results of its architecture's curve, then the final."""
    conv = parameter["parameters"]["conv"]
    curve = CURVES[conv["_value"] if isinstance(conv, dict) else conv]
    _, *args = spec.command.split()
    return TrialScript.succeeding(curve[-1], intermediate=curve, duration=float(args[0]) if args else 10.0)


scenario = scenario_with(script, SPEED)


def assessor(folder: Path, **class_args: Any) -> dict[str, Any]:
    (folder / "threshold.py").write_text(textwrap.dedent(ASSESSOR))
    args = {"log": str(folder / "assessor.jsonl"), **class_args}
    return {
        "codeDirectory": str(folder),
        "classFileName": "threshold.py",
        "className": "Threshold",
        "classArgs": args,
    }


def tuner(folder: Path, **extra: Any) -> dict[str, Any]:
    (folder / "cycling.py").write_text(textwrap.dedent(TUNER))
    args = {"log": str(folder / "tuner.jsonl")}
    return {
        "codeDirectory": str(folder),
        "classFileName": "cycling.py",
        "className": "Cycling",
        "classArgs": args,
        **extra,
    }


def log_of(folder: Path, name: str) -> list[Any]:
    path = folder / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def create(
    lab: Lab, command: str = "curve", tuner_extra: Mapping[str, Any] = (), **class_args: Any
) -> str:
    return await lab.create(
        command,
        maxTrialNumber=3,
        trialConcurrency=1,
        tuner=tuner(lab.home, **dict(tuner_extra)),
        assessor=assessor(lab.home, **{"below": 0.3, "start_step": 2, **class_args}),
    )


# -- verdicts ------------------------------------------------------------------------------------


@scenario
async def test_a_trial_judged_bad_ends_early_stopped_with_the_reason_and_step(lab: Lab) -> None:
    exp = await create(lab)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    stopped = lab.trials(exp)[0]  # conv3x3: 0.1 at every step
    assert stopped.status is TrialStatus.EARLY_STOPPED
    assert stopped.reason == "Threshold: below 0.3"
    assert stopped.stop_step == 2
    assert stopped.id not in lab.cluster.running
    assert stopped.final_metric is None  # killed before it reported one


@scenario
async def test_good_trials_run_to_their_end(lab: Lab) -> None:
    exp = await create(lab)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    good = lab.trials(exp)[1:]
    assert [t.status for t in good] == [TrialStatus.SUCCEEDED, TrialStatus.SUCCEEDED]
    assert [t.final_metric for t in good] == [0.8, 0.7]
    assert all(t.stop_step is None for t in good)
    judged = [(entry[1], entry[2]) for entry in log_of(lab.home, "assessor.jsonl") if entry[0] == "assess"]
    assert [step for trial, step in judged if trial == good[0].id] == [1, 2, 3, 4]


@scenario
async def test_every_trial_end_reaches_the_assessor_once(lab: Lab) -> None:
    exp = await create(lab)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    ends = [entry[1:] for entry in log_of(lab.home, "assessor.jsonl") if entry[0] == "end"]
    assert ends == [[t.id, t.status is TrialStatus.SUCCEEDED] for t in lab.trials(exp)]


@scenario
async def test_an_early_stopped_trial_counts_toward_max_trial_number(lab: Lab) -> None:
    exp = await create(lab)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert len(lab.cluster.launches) == 3
    assert lab.manager.get(exp).budget_used == 3


@scenario
async def test_with_include_intermediate_results_the_tuner_hears_the_last_judged_result(lab: Lab) -> None:
    exp = await create(lab, tuner_extra={"includeIntermediateResults": True})
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert log_of(lab.home, "tuner.jsonl") == [[0, 0.1], [1, 0.8], [2, 0.7]]


@scenario
async def test_without_include_intermediate_results_the_tuner_hears_no_result_of_an_early_stop(
    lab: Lab,
) -> None:
    exp = await create(lab)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert log_of(lab.home, "tuner.jsonl") == [[1, 0.8], [2, 0.7]]


@scenario
async def test_an_assessor_that_raises_leaves_the_trial_running_and_says_so_once(lab: Lab) -> None:
    exp = await create(lab, raise_on=1, below=0.0)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert all(t.status is TrialStatus.SUCCEEDED for t in lab.trials(exp))
    errors = lab.messages(exp, EventKind.ERROR)
    assert len(errors) == 3  # one per trial
    assert all("assessor assess_trial failed" in e and "broken assessor" in e for e in errors)


# -- restart ---------------------------------------------------------------------------------------


@scenario
async def test_the_assessor_state_survives_a_daemon_restart_and_verdicts_continue(lab: Lab) -> None:
    exp = await create(lab, "curve 100")
    await lab.until(lambda: [t.status for t in lab.trials(exp)][:1] == [TrialStatus.EARLY_STOPPED])
    await lab.until(
        lambda: len(lab.trials(exp)) == 2 and lab.store.trial_metrics(lab.trials(exp)[1].id) != []
    )
    await asyncio.sleep(0.05)  # the checkpoint after the first trial's end
    runner = lab.manager.runners[exp]
    assert runner.assessor is not None
    runner.assessor.release_thread(cancel=True)
    await lab.crash()
    await lab.manager.recover()
    before = len(log_of(lab.home, "assessor.jsonl"))
    await lab.manager.resume(exp)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    after = log_of(lab.home, "assessor.jsonl")[before:]
    assert after[0][0] == "loaded"
    assert after[0][1]["ended"] == 1  # it had heard the early-stopped trial's end
    assert any(entry[0] == "assess" for entry in after[1:])  # it judges the trials after the restart
    trials = lab.trials(exp)
    assert [t.status for t in trials] == [
        TrialStatus.EARLY_STOPPED,
        TrialStatus.SUCCEEDED,
        TrialStatus.SUCCEEDED,
    ]
    ends = [entry[1] for entry in log_of(lab.home, "assessor.jsonl") if entry[0] == "end"]
    assert sorted(ends) == sorted(t.id for t in trials)  # each end heard once, across the restart


# -- config --------------------------------------------------------------------------------------


def base_config(**overrides: Any) -> dict[str, Any]:
    return {"trialCommand": "python train.py", "searchSpace": SMALL_SPACE, **overrides}


def test_a_config_with_an_assessor_is_accepted(tmp_path: Path) -> None:
    config = parse_config(base_config(assessor=assessor(tmp_path, below=0.3)), tmp_path)
    assert config.assessor is not None and config.assessor.class_name == "Threshold"
    assert config.include_intermediate_results is False


def test_nni_v1_assessor_keys_are_accepted(tmp_path: Path) -> None:
    section = {"builtinAssessorName": "Medianstop", "classArgs": {"optimize_mode": "maximize"}}
    config = parse_config(base_config(assessor=section), tmp_path)
    assert config.assessor is not None and config.assessor.name == "Medianstop"


def test_the_stored_config_keeps_the_assessor_and_include_intermediate_results(tmp_path: Path) -> None:
    body = base_config(
        assessor=assessor(tmp_path), tuner={"name": "Random", "includeIntermediateResults": True}
    )
    config = parse_config(body, tmp_path)
    assert type(config).from_json(config.to_json()) == config
    assert config.include_intermediate_results is True


def refusal(tmp_path: Path, **overrides: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(base_config(**overrides), tmp_path)
    return caught.value


def test_an_unknown_assessor_is_refused_naming_the_field(tmp_path: Path) -> None:
    error = refusal(tmp_path, assessor={"name": "Medianstp"})
    assert error.field == "assessor.name"
    assert "unknown assessor 'Medianstp'" in str(error) and "Medianstop" in str(error)


def test_bad_assessor_class_args_are_refused_naming_the_argument(tmp_path: Path) -> None:
    error = refusal(tmp_path, assessor={"name": "Medianstop", "classArgs": {"start_step": -1}})
    assert error.field is not None and error.field.startswith("assessor")
    assert "start_step" in str(error)


def test_include_intermediate_results_must_be_true_or_false(tmp_path: Path) -> None:
    error = refusal(tmp_path, tuner={"name": "Random", "includeIntermediateResults": "yes"})
    assert error.field == "tuner.includeIntermediateResults"


# -- what the CLI shows ------------------------------------------------------------------------------


def test_nasctl_status_counts_early_stopped_trials() -> None:
    from nasctl.output import status_text

    counts = {"SUCCEEDED": 4, "FAILED": 1, "EARLY_STOPPED": 3}
    page = status_text({"id": "e1", "status": "RUNNING", "maxTrialNumber": 10, "trialCounts": counts}, None)
    assert "(4 succeeded, 1 failed, 3 early-stopped)" in page


def test_nasctl_trial_ls_shows_the_step_an_early_stopped_trial_was_stopped_at() -> None:
    from nasctl.output import trial_table

    trials = [
        {"id": "t1", "status": "EARLY_STOPPED", "stopStep": 3, "parameters": {}},
        {"id": "t2", "status": "SUCCEEDED", "stopStep": None, "finalMetric": 0.9, "parameters": {}},
    ]
    rows = trial_table(trials).splitlines()
    assert "EARLY_STOPPED@3" in rows[1] and "SUCCEEDED" in rows[2]


def test_the_foreground_summary_counts_early_stopped_trials_apart_from_cancelled_ones() -> None:
    from nasctl.best import summary_line

    experiment = {
        "id": "abc",
        "status": "DONE",
        "maxTrialNumber": 20,
        "trialCounts": {"SUCCEEDED": 2, "EARLY_STOPPED": 17, "USER_CANCELED": 1},
        "startTime": 1_000,
        "endTime": 28_300,
    }
    line = summary_line(experiment)
    assert "2 succeeded, 0 failed, 1 cancelled, 17 early-stopped, in 27.3s" in line
