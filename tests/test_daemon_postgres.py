"""The real daemon on PostgreSQL: ``nasctl manager start --db-url``, real trials, a restart.

One test, as a user would run it: the CLI starts the daemon detached with a PostgreSQL URL
that carries a password, an experiment of real trial processes runs (one of them reports NaN),
the daemon stops and starts again on the same database, and everything reads back: the
experiment, its trials, their metrics, and ``nasctl trial ls``. The password is shown nowhere.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from conftest import TRIALS_DIR
from postgres import PostgresServer
from waiting import wait_until

from manager.daemon import Daemon, DaemonError
from nasctl.client import Client

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "s3cret-pg-pw"


def nasctl(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["NASCTL_HOME"] = str(home)
    env.pop("NASCTL_DB_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "nasctl.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def with_password(url: str) -> str:
    """The trust-authenticated test server ignores it; the daemon must still hide it."""
    return url.replace("postgresql+psycopg://postgres@", f"postgresql+psycopg://postgres:{PASSWORD}@", 1)


def daemon_command_line(home: Path) -> str:
    pid = json.loads((home / "manager.json").read_text())["pid"]
    return " ".join(psutil.Process(pid).cmdline())


def experiment_state(home: Path, exp_id: str) -> dict[str, Any]:
    with Client.from_home(home) as client:
        return {
            "experiment": client.get_experiment(exp_id),
            "trials": client.trials(exp_id, limit=100)["items"],
            "metrics": client.metrics(exp_id)["items"],
        }


def test_the_daemon_runs_an_experiment_on_postgresql_and_finds_it_all_after_a_restart(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.new_database()
    home = tmp_path / "home"
    config = tmp_path / "exp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "experimentName": "on-postgres",
                # the trial of sequence id 1 reports a NaN final result
                "trialCommand": f'{sys.executable} fast_trial.py $([ "$NASCTL_SEQUENCE_ID" = 1 ] && echo --nan)',
                "trialCodeDirectory": str(TRIALS_DIR),
                "searchSpace": {"conv": {"_type": "choice", "_value": [0, 1, 2, 3]}},
                "maxTrialNumber": 4,
                "trialConcurrency": 2,
            }
        )
    )
    try:
        started = nasctl(home, "manager", "start", "--db-url", with_password(url))
        assert PASSWORD not in daemon_command_line(home)
        exp_id = json.loads(nasctl(home, "create", "--config", str(config), "--json").stdout)["id"]
        nasctl(home, "status", exp_id)  # answers while it runs
        wait_until(
            lambda: experiment_state(home, exp_id)["experiment"]["status"] == "DONE",
            60,
            "the experiment DONE",
        )
        before = experiment_state(home, exp_id)
        status = nasctl(home, "manager", "status", "--json").stdout
        nasctl(home, "manager", "stop")
        nasctl(home, "manager", "start", "--db-url", with_password(url))
        after = experiment_state(home, exp_id)
        listing = nasctl(home, "trial", "ls", exp_id, "--json").stdout
    finally:
        subprocess.run(
            [sys.executable, "-m", "nasctl.cli", "manager", "stop"],
            env={**os.environ, "NASCTL_HOME": str(home)},
            capture_output=True,
            timeout=120,
        )
        postgres_server.drop_database(url)

    assert not (home / "nasctl.db").exists()  # the data went to PostgreSQL
    assert [t["status"] for t in before["trials"]] == ["SUCCEEDED"] * 4
    nan_trial = next(t for t in before["trials"] if t["sequenceId"] == 1)
    assert math.isnan(float(nan_trial["finalMetric"])) and math.isnan(float(nan_trial["finalMetricData"]))
    assert [m["type"] for m in before["metrics"]].count("FINAL") == 4
    assert [m["type"] for m in before["metrics"]].count("PERIODICAL") == 8
    # the same after the restart (as JSON text: NaN equals nothing, not even NaN)
    assert json.dumps(after["trials"]) == json.dumps(before["trials"])
    assert json.dumps(after["metrics"]) == json.dumps(before["metrics"])
    assert after["experiment"]["status"] == "DONE"
    assert {t["id"] for t in json.loads(listing)} == {t["id"] for t in before["trials"]}
    shown = started.stdout + started.stderr + status
    for name in ("manager.log", "daemon.stderr"):
        if (home / name).exists():
            shown += (home / name).read_text()
    assert PASSWORD not in shown


def test_a_database_that_cannot_be_opened_is_named_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://nasctl:{PASSWORD}@/nasctl?host={tmp_path / 'no-server-here'}"
    with pytest.raises(
        DaemonError, match=r"^cannot open the database postgresql\+psycopg://nasctl:\*\*\*@/"
    ) as caught:
        Daemon(tmp_path / "home", db_url=url).start_in_thread()
    assert PASSWORD not in str(caught.value) and "\n" not in str(caught.value)
