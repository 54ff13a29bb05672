"""Experiments with several objectives on the simulated training service (see test_loop_states.py).

Each trial reports its final result as a dict; the command says which metrics it holds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from test_loop_states import Lab, scenario_with

from manager.training.base import TrialSpec
from manager.training.simulated import TrialScript
from trials.status import ExperimentStatus, TrialStatus

SPEED = 200.0
OBJECTIVES = [{"metric": "accuracy", "mode": "maximize"}, {"metric": "latency_ms", "mode": "minimize"}]
#: Each architecture's (accuracy, latency_ms).
COSTS = {"conv3x3": (0.7, 10.0), "conv5x5": (0.8, 20.0), "maxpool": (0.5, 5.0)}


def script(spec: TrialSpec, parameter: Mapping[str, Any]) -> TrialScript:
    """``both``: accuracy and latency_ms in the final dict; ``accuracy-only``: no latency_ms."""
    conv = parameter["parameters"]["conv"]
    accuracy, latency = COSTS[conv["_value"] if isinstance(conv, dict) else conv]
    final: dict[str, Any] = {"default": accuracy, "accuracy": accuracy}
    if spec.command == "both":
        final["latency_ms"] = latency
    return TrialScript.succeeding(final, duration=5.0)  # type: ignore[arg-type]


scenario = scenario_with(script, SPEED)


async def create(lab: Lab, command: str, trials: int = 3) -> str:
    return await lab.create(
        command,
        maxTrialNumber=trials,
        objectives=OBJECTIVES,
        constraints=["latency_ms <= 15"],
        tuner={"name": "Evolution", "classArgs": {"seed": 0, "population_size": 2, "sample_size": 2}},
    )


@scenario
async def test_a_two_objective_experiment_runs_to_the_end_and_evolution_learns_the_dicts(lab: Lab) -> None:
    exp = await create(lab, "both", trials=5)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    trials = lab.trials(exp)
    assert [t.status for t in trials] == [TrialStatus.SUCCEEDED] * 5
    state = lab.store.load_tuner_checkpoint(exp)
    scores = [score for _, score in state["population"]]
    assert len(scores) == 2
    assert all(set(score) == {"accuracy", "latency_ms"} for score in scores)


@scenario
async def test_a_trial_whose_final_result_lacks_a_metric_fails_naming_it(lab: Lab) -> None:
    exp = await create(lab, "accuracy-only", trials=2)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    trials = lab.trials(exp)
    assert [t.status for t in trials] == [TrialStatus.FAILED] * 2
    assert trials[0].reason == "final result lacks the metrics of objectives/constraints: latency_ms"
    state = lab.store.load_tuner_checkpoint(exp)
    assert state["population"] == []  # nothing reached the tuner


LOGGING_TUNER = """
import json
from manager.tuners.random import RandomTuner


class Logging(RandomTuner):
    multi_objective = True

    def __init__(self, log, seed=0):
        super().__init__(seed=seed)
        self.log = log

    def _write(self, *entry):
        with open(self.log, "a") as f:
            f.write(json.dumps(entry) + "\\n")

    def update_objectives(self, objectives):
        super().update_objectives(objectives)
        self._write("objectives", objectives.metrics)

    def receive_trial_result(self, parameter_id, parameters, value):
        self._write("result", value)

    def import_data(self, records):
        super().import_data(records)
        self._write("import", [record["value"] for record in records])

    def save_checkpoint(self):
        return None  # so that a restarted daemon imports every stored result
"""


@scenario
async def test_a_restarted_daemon_imports_the_metric_dicts_into_its_tuner(lab: Lab) -> None:
    (lab.home / "logging_tuner.py").write_text(LOGGING_TUNER)
    log = lab.home / "tuner.jsonl"
    tuner = {
        "codeDirectory": str(lab.home),
        "classFileName": "logging_tuner.py",
        "className": "Logging",
        "classArgs": {"log": str(log)},
    }
    exp = await lab.create("both", maxTrialNumber=2, objectives=OBJECTIVES, tuner=tuner)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    await lab.crash()
    await lab.manager.update(exp, max_trial_number=3)  # room for one more: the tuner is rebuilt
    assert await lab.finished(exp) is ExperimentStatus.DONE
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    results = [entry[1] for entry in entries if entry[0] == "result"]
    imported = [entry[1] for entry in entries if entry[0] == "import"]
    assert [entry[0] for entry in entries][:1] == ["objectives"]
    assert len(results) == 3 and all({"accuracy", "latency_ms"} <= set(r) for r in results)
    assert imported == [results[:2]]
