"""get_and_apply_next_architecture in its three modes, on the real digits example script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from nas_models import DIGITS_DIR, digits_net

from trials import env
from trials.nas import ArchitectureError, get_and_apply_next_architecture

PYTHON = sys.executable
ARCH = {"conv1": "sepconv3x3", "conv2": "identity", "conv3": "conv1x1", "skip": []}


def run_digits(extra_env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NASCTL_")}
    return subprocess.run(
        [PYTHON, "model.py", "--epochs", "2", *args],
        cwd=DIGITS_DIR,
        env=clean | extra_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_standalone_trains_with_first_candidates_and_says_so() -> None:
    proc = run_digits({})
    assert proc.returncode == 0, proc.stderr
    assert "first candidate of every choice" in proc.stderr
    assert "'conv1': 'conv3x3'" in proc.stdout
    assert "final validation accuracy: 0." in proc.stdout


def test_standalone_applies_the_architecture_file_named_in_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(ARCH))
    proc = run_digits({env.ARCHITECTURE: str(path)})
    assert proc.returncode == 0, proc.stderr
    assert f"applying the architecture in {path}" in proc.stderr
    assert "'conv1': 'sepconv3x3', 'conv2': 'identity'" in proc.stdout


def test_in_an_experiment_the_parameter_file_is_applied_and_metrics_are_written(tmp_path: Path) -> None:
    params = {"conv1": {"_value": "conv5x5", "_idx": 1}, "conv2": "conv3x3", "conv3": 2, "skip": ["conv1"]}
    (tmp_path / env.PARAMETER_FILE_NAME).write_text(json.dumps({"parameter_id": 0, "parameters": params}))
    proc = run_digits(
        {
            env.TRIAL_ID: "t0",
            env.TRIAL_DIR: str(tmp_path),
            env.PARAMETER_FILE: str(tmp_path / env.PARAMETER_FILE_NAME),
        }
    )
    assert proc.returncode == 0, proc.stderr
    assert "'conv1': 'conv5x5'" in proc.stdout and "'conv3': 'conv1x1'" in proc.stdout
    kinds = [json.loads(line)["type"] for line in (tmp_path / env.METRICS_FILE_NAME).read_text().splitlines()]
    assert kinds == ["PERIODICAL", "PERIODICAL", "FINAL"]


def test_hyper_parameters_beside_the_architecture_are_left_for_get_next_parameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trials

    packed = {"parameter_id": 0, "parameters": {**ARCH, "lr": 0.01, "batch": 32}}
    (tmp_path / "p.json").write_text(json.dumps(packed))
    monkeypatch.setenv(env.PARAMETER_FILE, str(tmp_path / "p.json"))
    applied = get_and_apply_next_architecture(digits_net())
    assert set(applied) == set(ARCH)
    assert trials.get_next_parameter()["lr"] == 0.01


def test_a_nas_decision_for_a_choice_the_model_lacks_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packed = {"parameter_id": 0, "parameters": {**ARCH, "conv9": {"_value": "x", "_idx": 0}}}
    (tmp_path / "p.json").write_text(json.dumps(packed))
    monkeypatch.setenv(env.PARAMETER_FILE, str(tmp_path / "p.json"))
    with pytest.raises(
        ArchitectureError, match="key 'conv9' is a NAS decision but the model has no such choice"
    ):
        get_and_apply_next_architecture(digits_net())


def test_retrain_applies_an_exported_architecture_and_prints_test_accuracy(tmp_path: Path) -> None:
    path = tmp_path / "best.json"
    path.write_text(json.dumps(ARCH))
    proc = subprocess.run(
        [PYTHON, "retrain.py", "--arch", str(path), "--epochs", "2"],
        cwd=DIGITS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy: 0." in proc.stdout
