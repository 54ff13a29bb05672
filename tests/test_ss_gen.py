"""ss_gen: the exact search-space JSON, and clear failures (manager/loop/ss_gen.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from nas_models import DIGITS_DIR, ScopedNet

from manager.loop.ss_gen import generate_search_space
from trials.errors import SearchSpaceError
from trials.nas import dump_search_space

PYTHON = sys.executable

DIGITS_SPACE = {
    "conv1": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "sepconv3x3", "maxpool3x3"]},
    "conv2": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "dilconv3x3", "identity"]},
    "conv3": {"_type": "layer_choice", "_value": ["conv3x3", "sepconv3x3", "conv1x1"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["conv1"], "n_chosen": None}},
}

SCOPED_SPACE = {
    "InputChoice4": {
        "_type": "input_choice",
        "_value": {"candidates": ["in0", "in1", "in2"], "n_chosen": None},
    },
    "LayerChoice1": {"_type": "layer_choice", "_value": ["0", "1"]},
    "LayerChoice2": {"_type": "layer_choice", "_value": ["0", "1"]},
    "LayerChoice3": {"_type": "layer_choice", "_value": ["0", "1"]},
    "own_mix": {
        "_type": "input_choice",
        "_value": {"candidates": ["own_op1", "own_op2", "own_inner"], "n_chosen": 2},
    },
    "own_op1": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "identity"]},
    "own_op2": {"_type": "layer_choice", "_value": ["0", "1"]},
    "shared_mix": {
        "_type": "input_choice",
        "_value": {"candidates": ["shared_op1", "shared_op2", "shared_inner"], "n_chosen": 2},
    },
    "shared_op1": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "identity"]},
    "shared_op2": {"_type": "layer_choice", "_value": ["0", "1"]},
}


def test_digits_model_gives_the_exact_search_space_file(tmp_path: Path) -> None:
    out = tmp_path / "space.json"
    generate_search_space(f"{PYTHON} model.py", trial_dir=DIGITS_DIR, output=out)
    assert out.read_text() == json.dumps(DIGITS_SPACE, sort_keys=True, indent=2) + "\n"


def test_nested_scopes_and_shared_keys_give_the_exact_search_space() -> None:
    assert dump_search_space(ScopedNet()) == SCOPED_SPACE


def test_dry_run_stops_before_training(tmp_path: Path) -> None:
    # the digits script prints "final validation accuracy" only after training
    script = tmp_path / "wrap.sh"
    script.write_text(f"{PYTHON} {DIGITS_DIR / 'model.py'} > {tmp_path / 'out.txt'}\n")
    generate_search_space(f"sh {script}", trial_dir=tmp_path)
    assert "final validation accuracy" not in (tmp_path / "out.txt").read_text()


def test_relative_output_is_made_absolute_against_the_callers_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    generate_search_space(f"{PYTHON} model.py", trial_dir=DIGITS_DIR, output="rel.json")
    assert json.loads((tmp_path / "rel.json").read_text()) == DIGITS_SPACE


def test_failing_command_is_reported_with_its_exit_code_and_stderr_tail(tmp_path: Path) -> None:
    command = f"{PYTHON} -c \"import sys; print('boom: no such dataset', file=sys.stderr); sys.exit(3)\""
    with pytest.raises(SearchSpaceError, match="(?s)failed with exit code 3.*boom: no such dataset"):
        generate_search_space(command, trial_dir=tmp_path)


def test_command_that_writes_no_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SearchSpaceError, match="exited 0 but wrote no search space"):
        generate_search_space(f"{PYTHON} -c pass", trial_dir=tmp_path)


def test_missing_trial_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SearchSpaceError, match="trial directory .* does not exist"):
        generate_search_space("true", trial_dir=tmp_path / "nope")
