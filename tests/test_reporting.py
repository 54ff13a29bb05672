"""Reporting from a trial: accepted types, the metrics file, parameters and ids (trials/reporting.py)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import trials
from trials import env

PYTHON = sys.executable


@pytest.fixture
def trial_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(env.TRIAL_DIR, str(tmp_path))
    monkeypatch.setenv(env.TRIAL_ID, "t1")
    return tmp_path


def records(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / env.METRICS_FILE_NAME).read_text().splitlines()]


@pytest.mark.parametrize(
    ("metric", "stored"),
    [
        (0.5, 0.5),
        (3, 3),
        (np.float32(0.25), 0.25),
        (np.int64(7), 7),
        (torch.tensor(0.75), 0.75),
        (torch.tensor([0.125]), 0.125),
        (
            {"default": np.float64(0.9), "loss": torch.tensor(0.1), "note": "ok"},
            {"default": 0.9, "loss": pytest.approx(0.1), "note": "ok"},
        ),
    ],
)
def test_numbers_scalars_and_dicts_are_recorded_as_plain_json(trial_dir: Path, metric, stored) -> None:
    trials.report_final_result(metric)
    assert records(trial_dir)[-1]["value"] == stored


def test_nan_and_infinity_are_recorded_not_refused(trial_dir: Path) -> None:
    trials.report_intermediate_result(float("nan"))
    trials.report_final_result(np.float32("inf"))
    values = [r["value"] for r in records(trial_dir)]
    assert math.isnan(values[0]) and values[1] == math.inf


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        ([0.5], "got builtins.list"),
        ("0.9", "got builtins.str"),
        (None, "got builtins.NoneType"),
        (True, "expected a number, got bool"),
        (torch.tensor([0.1, 0.2]), "got torch.Tensor"),
        ({"acc": 0.9}, "needs a numeric 'default' key, got keys \\['acc'\\]"),
        ({"default": "high"}, "report_final_result\\['default'\\]: .*got builtins.str"),
    ],
)
def test_anything_else_raises_type_error_naming_the_type(trial_dir: Path, metric, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        trials.report_final_result(metric)
    assert not (trial_dir / env.METRICS_FILE_NAME).exists()


def test_records_carry_type_sequence_and_time(tmp_path: Path) -> None:
    code = "import trials\nfor x in (0.1, 0.2): trials.report_intermediate_result(x)\ntrials.report_final_result(0.3)"
    subprocess.run([PYTHON, "-c", code], env={env.TRIAL_DIR: str(tmp_path), env.TRIAL_ID: "t"}, check=True)
    got = [(r["type"], r["sequence"], r["value"]) for r in records(tmp_path)]
    assert got == [("PERIODICAL", 0, 0.1), ("PERIODICAL", 1, 0.2), ("FINAL", 0, 0.3)]
    assert all(isinstance(r["time"], float) for r in records(tmp_path))


def test_import_trials_and_reporting_leave_heavy_modules_unimported(tmp_path: Path) -> None:
    """Every trial pays for what ``import trials`` loads: dataclasses (with inspect) cost 10 ms."""
    code = (
        "import sys, trials\n"
        "trials.report_final_result(trials.get_next_parameter().get('x', 1.0))\n"
        "heavy = {'torch', 'numpy', 'dataclasses', 'inspect'} & set(sys.modules)\n"
        "assert not heavy, sorted(heavy)"
    )
    subprocess.run([PYTHON, "-c", code], env={env.TRIAL_DIR: str(tmp_path), env.TRIAL_ID: "t"}, check=True)


def test_standalone_results_go_to_stderr() -> None:
    proc = subprocess.run(
        [PYTHON, "-c", "import trials; trials.report_final_result(0.5)"],
        capture_output=True,
        text=True,
        env={},
    )
    assert proc.returncode == 0 and "[nasctl] final result: 0.5" in proc.stderr


def test_get_next_parameter_reads_the_packed_parameter_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / env.PARAMETER_FILE_NAME
    packed = {
        "parameter_id": 3,
        "parameter_source": "algorithm",
        "parameters": {"lr": 0.1},
        "parameter_index": 0,
    }
    path.write_text(json.dumps(packed))
    monkeypatch.setenv(env.PARAMETER_FILE, str(path))
    assert trials.get_next_parameter() == {"lr": 0.1}


def test_unreadable_parameter_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.PARAMETER_FILE, str(tmp_path / "none.json"))
    with pytest.raises(RuntimeError, match="cannot read parameter file"):
        trials.get_next_parameter()


def test_ids_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.EXPERIMENT_ID, "exp1")
    monkeypatch.setenv(env.TRIAL_ID, "trialA")
    monkeypatch.setenv(env.SEQUENCE_ID, "12")
    assert (trials.get_experiment_id(), trials.get_trial_id(), trials.get_sequence_id()) == (
        "exp1",
        "trialA",
        12,
    )


def test_ids_outside_an_experiment_say_standalone(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (env.EXPERIMENT_ID, env.TRIAL_ID, env.SEQUENCE_ID):
        monkeypatch.delenv(name, raising=False)
    assert (trials.get_experiment_id(), trials.get_trial_id(), trials.get_sequence_id()) == (
        "STANDALONE",
        "STANDALONE",
        0,
    )
