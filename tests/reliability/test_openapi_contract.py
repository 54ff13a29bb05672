"""The OpenAPI document tells the truth: schemathesis, with every check and every phase (examples,
coverage, fuzzing, stateful), finds no request the daemon answers otherwise than the document says.

It runs as a user would run it (``schemathesis run <url>/openapi.json --checks all``) against a
daemon with real SQLite and finished experiments with trials; the ids of those experiments and
trials are offered to the generator (a dictionary) so that requests reach past the 404s.
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
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    running = InProcessDaemon(tmp_path_factory.mktemp("contract") / "home", kill_grace=1.0)
    yield running
    running.close()


def finished_experiment(served: Any) -> dict[str, Any]:
    exp = served.create(faulty_config("ok", maxTrialNumber=2))
    return served.wait_for_status(exp["id"], "DONE")


def config(kept: dict[str, Any], doomed: dict[str, Any], trials: list[str]) -> str:
    """The schemathesis.toml of the run: real ids offered most of the time; DELETE of an
    experiment gets its own, so the others live on; creating one is fuzzed with invalid bodies
    only (a valid one would run whatever command the generator wrote)."""
    return f"""
[dictionaries.experiments]
values = ["{kept["id"]}"]
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
include-path = "/api/v1/experiments/{{experiment_id}}"
include-method = "DELETE"
parameters = {{ "path.experiment_id" = {{ dictionary = "doomed", probability = 0.7 }} }}

[[operations]]
include-path = "/api/v1/experiments"
include-method = "POST"
generation.mode = "negative"
"""


def test_schemathesis_with_all_checks_finds_no_failure(served: Any, tmp_path: Path) -> None:
    kept, doomed = finished_experiment(served), finished_experiment(served)
    trials = [t["id"] for t in served.trials(kept["id"])]
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(config(kept, doomed, trials))
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
        timeout=300,
        cwd=tmp_path,
    )
    summary = done.stdout[done.stdout.find("SUMMARY") :]
    print(summary)  # the figures: operations, phases, cases generated and passed
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    assert "Tested: 20" in summary and " passed" in summary, summary
