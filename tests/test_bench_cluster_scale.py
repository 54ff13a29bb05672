"""The cluster-scale bench (bench/cluster_scale.py) at a tiny size: it runs and its numbers are sane."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from cluster_scale import Result, run  # noqa: E402

TRIALS = 20
SPEED = 20.0  # 400 reports/s offered


def test_a_tiny_run_stores_every_report_once_and_measures_the_daemon(tmp_path: Path) -> None:
    result = asyncio.run(run(TRIALS, SPEED, window=1.5, warmup=0.5, rest_interval=0.05, home=tmp_path))

    assert result.exactly_once and result.running == TRIALS
    assert result.reports_per_second_offered == TRIALS * SPEED
    assert 0.5 * TRIALS * SPEED < result.events_per_second < 1.5 * TRIALS * SPEED
    assert 0 < result.transactions_per_second <= result.events_per_second
    assert 0 < result.daemon_cores < 2.0 and result.cpu_us_per_event > 0
    assert 0 <= result.writer_busy <= 1.0
    assert 10 < result.rss_window_mb <= result.rss_peak_mb
    assert result.rest_requests > 10 and result.rest_failures == 0
    assert result.page_p95_ms > 0 and result.metrics_p95_ms > 0


def sample(**changes: object) -> Result:
    met = Result(
        trials=1000, speed=1.0, reports_per_second_offered=1000, running=1000, launch_seconds=5.0, window_seconds=10.0,
        events_per_second=1000, transactions_per_second=1000, kept_up=1.0, backlog=0, daemon_cores=0.5,
        cpu_us_per_event=500, loop_thread_cores=0.2, writer_thread_cores=0.2, writer_busy=0.5,
        simulator_cores=0.01, rss_peak_mb=140, rss_window_mb=120, loop_lag_p95_ms=20, page_p95_ms=50, metrics_p95_ms=50,
        rest_requests=200, rest_failures=0, stop_seconds=2.0, exactly_once=True,
    )  # fmt: skip
    return dataclasses.replace(met, **changes)  # type: ignore[arg-type]


def test_a_run_within_the_aims_misses_none() -> None:
    assert sample().misses() == []


def test_each_missed_aim_is_named() -> None:
    missed = sample(
        running=900, daemon_cores=1.2, page_p95_ms=150, kept_up=0.8, rest_failures=3, exactly_once=False
    ).misses()

    assert [line.split()[0] for line in missed] == ["only", "daemon", "REST", "stored", "3", "reports"]
    assert "trial page 150.0 ms" in missed[2]
