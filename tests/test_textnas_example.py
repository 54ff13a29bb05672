"""The README's TextNAS commands run end to end: ENAS searches the TextNAS space on the
synthetic text task, the export retrains to well above chance, and ``view-nas`` reads the log.

Each script runs as a user would run it (a subprocess), with tiny settings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from manager.views.searchlog import SearchLog
from trials.nas.zoo import TEXTNAS_OPS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "textnas"
TINY = ("--layers", "3", "--hidden", "16", "--train-batches", "40", "--epochs", "6", "--quiet")

pytestmark = pytest.mark.slow


def example(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logdir = tmp_path_factory.mktemp("textnas") / "log"
    example("search.py", *TINY, "--controller-steps", "20", "--logdir", str(logdir))
    return logdir


def test_search_exports_one_op_per_layer_and_any_subset_skips(searched: Path) -> None:
    exported = json.loads((searched / "architecture.json").read_text())
    assert sorted(key for key in exported if key.endswith("_op")) == ["layer0_op", "layer1_op", "layer2_op"]
    assert all(exported[f"layer{i}_op"]["_value"] in TEXTNAS_OPS for i in range(3))
    assert len(exported["layer2_input"]["_value"]) == 1
    assert set(exported["layer2_skip"]["_value"]) <= {"layer0", "layer1"}


def test_search_log_opens_in_view_nas(searched: Path) -> None:
    view = SearchLog(searched).view()
    assert view["finished"] and not view["problems"]
    assert view["metrics"]["items"]


def test_retrained_export_beats_chance_clearly(searched: Path) -> None:
    proc = example("retrain.py", *TINY, "--arch", str(searched / "architecture.json"))
    accuracy = float(proc.stdout.split("test accuracy:")[1].split()[0])
    assert accuracy >= 0.4  # four balanced classes: chance is 0.25


def test_retrain_of_another_spaces_architecture_is_one_line_error(tmp_path: Path) -> None:
    wrong = tmp_path / "arch.json"
    wrong.write_text(json.dumps({"normal_n2_p0": {"_value": "conv3", "_idx": 0}}))
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE / "retrain.py"), *TINY, "--arch", str(wrong)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:")
