"""Classic NAS on the Keras digits example: ss_gen, a real daemon experiment, export, retrain."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from nas_models import DIGITS_DIR

pytest.importorskip("tensorflow")

from manager.config.parser import load_config
from manager.loop.ss_gen import generate_search_space
from manager.tuners.registry import check_tuner_config
from trials.searchspace import SearchSpace

KERAS_DIGITS = DIGITS_DIR.parent / "digits-keras"


def test_ss_gen_reads_the_search_space_from_the_keras_model() -> None:
    space = generate_search_space(f"{sys.executable} model.py", KERAS_DIGITS, timeout=120)
    assert space.to_json() == {
        "conv1": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "sepconv3x3", "maxpool3x3"]},
        "conv2": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "dilconv3x3", "identity"]},
        "skip": {"_type": "input_choice", "_value": {"candidates": ["conv1"], "n_chosen": None}},
        "conv3": {"_type": "layer_choice", "_value": ["conv3x3", "sepconv3x3", "conv1x1"]},
    }


@pytest.mark.slow
def test_two_keras_digits_trials_run_through_the_daemon_and_the_best_retrains(daemon, tmp_path) -> None:
    config = {
        "experimentName": "digits-keras-e2e",
        "trialCommand": f"{sys.executable} model.py --epochs 2",
        "trialCodeDirectory": str(KERAS_DIGITS),
        "trialConcurrency": 2,
        "maxTrialNumber": 2,
        "tuner": {"name": "Random", "classArgs": {"seed": 3, "optimize_mode": "maximize"}},
    }
    experiment = daemon.create(config)
    done = daemon.wait_for_status(experiment["id"], "DONE", timeout=240)
    assert done["trialCounts"]["SUCCEEDED"] == 2, done

    space = SearchSpace.from_json(daemon.client.get(f"/experiments/{experiment['id']}/search-space").json())
    assert sorted(space.keys()) == ["conv1", "conv2", "conv3", "skip"]  # from ss_gen: no file was given
    trials = daemon.trials(experiment["id"])
    for trial in trials:
        space.parse_architecture(trial["parameters"])
        detail = daemon.trial(experiment["id"], trial["id"])
        assert [m["sequence"] for m in detail["intermediate"]] == [0, 1]
        assert 0.0 < trial["finalMetric"] <= 1.0

    best = daemon.client.get(f"/experiments/{experiment['id']}/best", params={"k": 1}).json()[0]
    arch_file = tmp_path / "best.json"
    arch_file.write_text(json.dumps(best["parameters"]))
    retrain = subprocess.run(
        [sys.executable, "retrain.py", "--arch", str(arch_file), "--epochs", "1"],
        cwd=KERAS_DIGITS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert retrain.returncode == 0 and "test accuracy" in retrain.stdout, retrain.stderr
    for key, value in best["parameters"].items():  # retrained the architecture it was given
        assert f"{key!r}: {value['_value']!r}" in retrain.stdout


def test_the_keras_example_config_is_valid_as_nasctl_create_checks_it() -> None:
    config = load_config(KERAS_DIGITS / "config.yml")
    check_tuner_config(config.tuner)
    assert (
        config.trial_code_directory == KERAS_DIGITS
        and config.search_space is None
        and config.search_space_file is None
    )
