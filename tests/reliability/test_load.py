"""Trials reporting as fast as they can while REST clients poll: every metric stored exactly once,
no "database is locked", no failed request (bench/load.py measures the same at full size)."""

from __future__ import annotations

import pytest

from bench.load import run_load

pytestmark = pytest.mark.slow


def test_metrics_reported_under_polling_are_stored_exactly_once_and_no_request_fails() -> None:
    result = run_load(trials=4, results=2000, clients=20, seconds=4.0, idle_seconds=0.5)
    assert result.idle.failures == [] and result.loaded.failures == []
    assert not result.locked
    assert len(result.trials) == 4
    for trial in result.trials:
        assert trial.status == "SUCCEEDED"
        assert (trial.written, trial.stored_intermediate, trial.stored_final, trial.distinct) == (
            2001,
            2000,
            1,
            2000,
        )
    assert len(result.loaded.seconds) > 20  # the clients really polled while the trials reported
