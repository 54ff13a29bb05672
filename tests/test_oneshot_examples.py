"""The README's one-shot commands for P-DARTS and CDARTS run end to end on digits.

Each test runs ``examples/oneshot/search.py`` as a user would (a subprocess, tiny settings),
retrains the export with ``retrain.py``, and reads the log the way ``nasctl view-nas`` and
TensorBoard do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from manager.views.searchlog import SearchLog

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "oneshot"

pytestmark = pytest.mark.slow


def example(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def option(args: tuple[str, ...], name: str) -> list[str]:
    """``name`` and its value, as given in ``args``."""
    at = args.index(name)
    return [name, args[at + 1]]


def search_and_retrain(tmp_path: Path, *search_args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    logdir = tmp_path / "log"
    proc = example("search.py", *search_args, "--logdir", str(logdir), "--tensorboard")
    shape = [
        arg for name in ("--space", "--layers") if name in search_args for arg in option(search_args, name)
    ]
    retrained = example(
        "retrain.py", "--arch", str(logdir / "architecture.json"), "--epochs", "1", "--channels", "4", "--quiet",
        *shape,
    )  # fmt: skip
    assert "test accuracy:" in retrained.stdout
    return proc, logdir


def test_pdarts_example_searches_in_stages_and_its_export_retrains(tmp_path: Path) -> None:
    proc, logdir = search_and_retrain(
        tmp_path,
        "--algorithm",
        "pdarts",
        "--epochs",
        "1",
        "--warmup",
        "0",
        "--depths",
        "3,4,5",
        "--channels",
        "4",
    )
    assert "stage 3/3, 5 cells" in proc.stderr
    view = SearchLog(logdir).view()
    assert view["finished"] and not view["problems"]
    stages = {item["metrics"]["stage"] for item in view["metrics"]["items"] if "stage" in item["metrics"]}
    assert stages == {1, 2, 3}
    last = view["weights"]["items"][-1]["weights"]["normal_n2_p0"]
    assert sum(1 for w in last if w == 0) == 5  # 7 candidates, 3 then 2 dropped
    assert list((logdir / "tensorboard").glob("events.out.tfevents.*"))


def test_cdarts_example_exports_every_epoch_and_its_export_retrains(tmp_path: Path) -> None:
    _, logdir = search_and_retrain(
        tmp_path, "--algorithm", "cdarts", "--epochs", "2", "--warmup", "1", "--channels", "4"
    )
    lines = (logdir / "architectures.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1]
    view = SearchLog(logdir).view()
    assert view["finished"] and not view["problems"]
    assert list((logdir / "tensorboard").glob("events.out.tfevents.*"))


def test_proxyless_example_profiles_a_latency_table_and_its_export_retrains(tmp_path: Path) -> None:
    proc, logdir = search_and_retrain(
        tmp_path,
        "--algorithm", "proxyless", "--space", "proxyless",
        "--epochs", "2", "--warmup", "1", "--channels", "4", "--layers", "1",
    )  # fmt: skip
    table = json.loads((logdir / "latency.json").read_text())
    assert table["unit"] == "ms" and all(v > 0 for c in table["candidates"].values() for v in c.values())
    metrics = [json.loads(line)["metrics"] for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    assert any("train_expected_latency_ms" in m for m in metrics)
    assert SearchLog(logdir).view()["finished"]
    report = json.loads((logdir / "latency_report.json").read_text())
    assert report["expected"] > 0 and report["exported"] > 0 and report["measured_ms"] > 0
    assert "exported as measured" in proc.stdout
