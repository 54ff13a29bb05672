"""The digits example as a real classic-NAS experiment: ss_gen, three torch trials, export, retrain."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from nas_models import DIGITS_DIR, digits_model_class

from trials.nas import apply_fixed_architecture
from trials.searchspace import SearchSpace

pytestmark = pytest.mark.slow


def test_three_digits_trials_run_end_to_end(daemon, tmp_path) -> None:
    config = {
        "experimentName": "digits-e2e",
        "trialCommand": f"{sys.executable} model.py --epochs 2",
        "trialCodeDirectory": str(DIGITS_DIR),
        "trialConcurrency": 2,
        "maxTrialNumber": 3,
        "tuner": {"name": "Random", "classArgs": {"seed": 7, "optimize_mode": "maximize"}},
    }
    experiment = daemon.create(config)
    done = daemon.wait_for_status(experiment["id"], "DONE", timeout=240)
    assert done["trialCounts"]["SUCCEEDED"] == 3, done

    space = SearchSpace.from_json(daemon.client.get(f"/experiments/{experiment['id']}/search-space").json())
    assert sorted(space.keys()) == ["conv1", "conv2", "conv3", "skip"]  # from ss_gen: no file was given

    trials = daemon.trials(experiment["id"])
    architectures = {json.dumps(t["parameters"], sort_keys=True) for t in trials}
    assert len(architectures) == 3
    for trial in trials:
        space.parse_architecture(trial["parameters"])
        detail = daemon.trial(experiment["id"], trial["id"])
        assert [m["sequence"] for m in detail["intermediate"]] == [0, 1]
        assert 0.0 < trial["finalMetric"] <= 1.0

    best = daemon.client.get(f"/experiments/{experiment['id']}/best", params={"k": 1}).json()[0]
    assert best["finalMetric"] == max(t["finalMetric"] for t in trials)
    arch_file = tmp_path / "best.json"
    arch_file.write_text(json.dumps(best["parameters"]))
    apply_fixed_architecture(digits_model_class()(), arch_file)
    retrain = subprocess.run(
        [sys.executable, "retrain.py", "--arch", str(arch_file), "--epochs", "1"],
        cwd=DIGITS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert retrain.returncode == 0 and "test accuracy" in retrain.stdout, retrain.stderr
