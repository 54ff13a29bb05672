"""The OpenAPI document tells the truth: schemathesis, with every check and every phase (examples,
coverage, fuzzing, stateful), finds no request the daemon answers otherwise than the document says.

It runs as a user would run it (``schemathesis run <url>/openapi.json --checks all``) against a
daemon with real SQLite and finished experiments with trials (one of them multi-objective, so its
Pareto front answers); the ids of those experiments and trials are offered to the generator (a
dictionary) so that requests reach past the 404s. Generated creates really create experiments,
made harmless by ``openapi_hooks``, and the stateful phase follows the document's links from them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reliability.helpers import InProcessDaemon, faulty_config

pytestmark = pytest.mark.slow

#: Generated requests per operation and phase: about 1,100 requests, 10 s; the longer run sets
#: NASCTL_CONTRACT_EXAMPLES (500: about 11,000 requests).
EXAMPLES = int(os.environ.get("NASCTL_CONTRACT_EXAMPLES", "30"))
#: The run's limit: the longer run takes minutes, more on a busy machine.
LIMIT = max(300, 6 * EXAMPLES)
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    running = InProcessDaemon(tmp_path_factory.mktemp("contract") / "home", kill_grace=1.0)
    yield running
    running.close()


#: A trial that reports two objectives, for the multi-objective experiment.
TWO_OBJECTIVES = "import trials; trials.report_final_result({'accuracy': 0.9, 'params': 3.0})"
MULTI_OBJECTIVE_COMMAND = f'{sys.executable} -c "{TWO_OBJECTIVES}"'


def finished_experiment(served: Any, **overrides: Any) -> dict[str, Any]:
    exp = served.create(faulty_config("ok", maxTrialNumber=2, **overrides))
    return served.wait_for_status(exp["id"], "DONE")


def multi_objective_experiment(served: Any) -> dict[str, Any]:
    return finished_experiment(
        served,
        trialCommand=MULTI_OBJECTIVE_COMMAND,
        objectives=[{"metric": "accuracy", "mode": "maximize"}, {"metric": "params", "mode": "minimize"}],
    )


def config(
    kept: list[dict[str, Any]], doomed: dict[str, Any], trials: list[str], first_trials: list[str]
) -> str:
    """The schemathesis.toml of the run: real ids offered most of the time; DELETE of an
    experiment gets its own, so the others live on; cancelling a trial gets ids that belong together. A create whose config fits the schema may
    still be refused (400) for what no schema says (a file that must exist, keys that exclude each
    other: see manager.config.json_schema), so for creates a 400 is an accepted answer too."""
    return f"""
[dictionaries.experiments]
values = {json.dumps([e["id"] for e in kept])}
[dictionaries.first]
values = ["{kept[0]["id"]}"]
[dictionaries.first_trials]
values = {json.dumps(first_trials)}
[dictionaries.doomed]
values = ["{doomed["id"]}"]
[dictionaries.trials]
values = {json.dumps(trials)}
[dictionaries.streams]
values = ["stdout", "stderr"]

[parameters]
"path.experiment_id" = {{ dictionary = "experiments", probability = 0.7 }}
"path.trial_id" = {{ dictionary = "trials", probability = 0.7 }}
"path.stream" = {{ dictionary = "streams", probability = 0.7 }}

[[operations]]
include-name = "DELETE /api/v1/experiments/{{experiment_id}}"
parameters = {{ "path.experiment_id" = {{ dictionary = "doomed", probability = 0.7 }} }}

[[operations]]
include-name = "DELETE /api/v1/experiments/{{experiment_id}}/trials/{{trial_id}}"
parameters = {{ "path.experiment_id" = {{ dictionary = "first", probability = 0.7 }}, "path.trial_id" = {{ dictionary = "first_trials", probability = 0.7 }} }}

[[operations]]
include-name = "POST /api/v1/experiments"
checks.positive_data_acceptance.expected-statuses = [201, 400]
"""


@pytest.mark.timeout(LIMIT + 60)
def test_schemathesis_with_all_checks_finds_no_failure(served: Any, tmp_path: Path) -> None:
    kept = [finished_experiment(served), multi_objective_experiment(served)]
    doomed = finished_experiment(served)
    trials = [t["id"] for e in kept for t in served.trials(e["id"])]
    settings = tmp_path / "schemathesis.toml"
    first_trials = [t["id"] for t in served.trials(kept[0]["id"])]
    settings.write_text(config(kept, doomed, trials, first_trials))
    base = tmp_path / "base"
    base.mkdir()
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "openapi_hooks",
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")]),
        "NASCTL_CONTRACT_BASE_DIR": str(base),
    }
    root = served.base_url.removesuffix("/api/v1")
    done = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(settings),
            "--no-color",
            "run",
            f"{root}/openapi.json",
            "--header",
            f"Authorization: Bearer {served.token}",
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES),
        ],
        capture_output=True,
        text=True,
        timeout=LIMIT,
        cwd=tmp_path,
        env=env,
    )
    summary = done.stdout[done.stdout.find("SUMMARY") :]
    print(summary)  # the figures: operations, phases, cases generated and passed
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    commands = {e.config["trialCommand"] for e in served.daemon.store.list_experiments()}
    ours = {faulty_config()["trialCommand"], MULTI_OBJECTIVE_COMMAND, "true"}
    assert commands - ours == set(), "a generated create ran a command of its own"
    assert "Tested: 20" in summary and " passed" in summary, summary
