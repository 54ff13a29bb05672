"""NNI v1.9 one-shot code ports with its import lines changed by the README's table, nothing else.

The scripts in ``tests/nni_port/`` use NNI's API the way NNI's own examples do, with NNI's import
lines. Each test copies them, rewrites every ``from nni... import`` / ``import nni...`` line by
the README's porting tables (``tests/nni_porting.py``: an exact lookup, a line or module missing
from the tables fails), and runs the result as a user would, on tiny synthetic data.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from nni_porting import IMPORT, ROOT, line_table, module_table, port

SCRIPTS = ROOT / "tests" / "nni_port"

pytestmark = pytest.mark.slow


@pytest.fixture
def ported(tmp_path: Path) -> Path:
    modules, lines = module_table(), line_table()
    for script in SCRIPTS.glob("*.py"):
        (tmp_path / script.name).write_text(port(script.read_text(), modules, lines))
    return tmp_path


def run(folder: Path, script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, script, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def multi_hot(path: Path) -> dict[str, list[bool]]:
    architecture = json.loads(path.read_text())
    assert all(isinstance(v, list) and all(isinstance(b, bool) for b in v) for v in architecture.values())
    return architecture


def test_the_table_maps_every_module_nni_one_shot_code_imports() -> None:
    table = module_table()
    for module in (
        "nni.nas.pytorch",
        "nni.nas.pytorch.mutables",
        "nni.nas.pytorch.callbacks",
        "nni.nas.pytorch.fixed",
        "nni.nas.pytorch.utils",
        "nni.algorithms.nas.pytorch.darts",
        "nni.algorithms.nas.pytorch.enas",
        "nni.algorithms.nas.pytorch.spos",
        "nni.algorithms.nas.pytorch.classic_nas",
        "nni.nas.pytorch.darts",
        "nni.nas.pytorch.enas",
        "nni.nas.pytorch.spos",
    ):
        assert module in table
        __import__(table[module])


def test_porting_changes_import_lines_only(ported: Path) -> None:
    for script in SCRIPTS.glob("*.py"):
        before = script.read_text().splitlines()
        after = (ported / script.name).read_text().splitlines()
        assert len(before) == len(after)
        changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        assert changed or "nni" not in script.read_text()
        assert all(IMPORT.match(a) and b.split()[1].split(".")[0] == "trials" for a, b in changed)


def test_darts_search_writes_nni_epoch_architectures_that_retrain(ported: Path) -> None:
    out = run(ported, "darts_search.py", "--epochs", "2")
    assert "Epoch [1/2] Step [2/" in out  # NNI's step lines at log_frequency
    epochs = [multi_hot(ported / "checkpoints" / f"epoch_{n}.json") for n in (0, 1)]
    assert set(epochs[0]) == {
        f"{cell}_n{n}_{part}"
        for cell in ("normal", "reduce")
        for n in (2, 3)
        for part in ("p0", "p1", "switch")
    } | {"normal_n3_p2", "reduce_n3_p2"}
    assert all(sum(v) == 1 for key, v in epochs[1].items() if "_p" in key)
    assert multi_hot(ported / "final_architecture.json") == epochs[1]
    retrained = run(ported, "darts_retrain.py", "--arc-checkpoint", "./checkpoints/epoch_1.json")
    assert "Final Prec@1" in retrained


@pytest.mark.parametrize("space", ["macro", "micro"])
def test_enas_search_runs_with_nni_arguments_and_checkpoints_every_epoch(ported: Path, space: str) -> None:
    run(ported, "enas_search.py", "--search-for", space, "--epochs", "2")
    last = multi_hot(ported / "checkpoints" / "epoch_1.json")
    if space == "macro":
        assert set(last) == {"LayerChoice1", "LayerChoice2", "InputChoice3", "LayerChoice4", "InputChoice5"}
    else:
        assert {"normal_node_0_x", "reduce_node_1_y_op"} <= set(last)
        assert sum(last["normal_node_1_x"]) == 1 and len(last["normal_node_1_x"]) == 3


def test_spos_supernet_trains_saves_plain_state_dicts_and_applies_multi_hot(ported: Path) -> None:
    out = run(ported, "spos_supernet.py", "--epochs", "2")
    assert (ported / "checkpoints" / "epoch_1.pth.tar").exists()
    assert "retrain output: (2, 10)" in out
    assert "candidate flops: " in out
