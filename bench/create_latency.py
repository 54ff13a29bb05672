"""From ``nasctl create`` to the first trial RUNNING, as a user sees it, with the CLI as a subprocess.

Two cases, each repeated: the daemon already up, and no daemon (the CLI starts one detached).
The first trial's ``startTime`` (stamped by the daemon when its process was spawned) minus the
moment the CLI was launched is the latency. The baseline, measured in the same run, is what any
command-line tool pays at least: starting this Python and importing nothing (``python -c pass``).

Usage: ``python bench/create_latency.py [--repeat 5]``. Targets (issue 6): <= 0.5 s with the
daemon up, <= 2 s when the CLI must start it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nasctl.client import Client  # noqa: E402

TRIAL = REPO / "tests" / "trials" / "fast_trial.py"
SPACE = {"op": {"_type": "layer_choice", "_value": ["a", "b", "c"]}}


def nasctl(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NASCTL_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "nasctl.cli", *args], env=env, capture_output=True, text=True
    )


def write_config(folder: Path) -> Path:
    config = folder / "exp.yaml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "trialCommand": f"{sys.executable} {TRIAL.name} --sleep 5",
                "trialCodeDirectory": str(TRIAL.parent),
                "searchSpace": SPACE,
                "maxTrialNumber": 1,
            }
        )
    )
    return config


def first_trial_latency(home: Path, config: Path) -> float:
    """Seconds from launching ``nasctl create`` to the first trial's spawn."""
    launched = time.time()
    proc = nasctl(home, "create", "--config", str(config), "--json")
    if proc.returncode != 0:
        raise SystemExit(f"nasctl create failed: {proc.stderr.strip()}")
    experiment_id = json.loads(proc.stdout)["id"]
    client = Client.from_home(home)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = client.trials(experiment_id, limit=1)["items"]
        if items and items[0]["startTime"]:
            nasctl(home, "stop", experiment_id)
            return items[0]["startTime"] / 1000.0 - launched
        time.sleep(0.02)
    raise SystemExit("the first trial did not start within 30 s")


def bare_python() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nasctl-bench-") as tmp:
        folder = Path(tmp)
        config = write_config(folder)
        cold, warm = [], []
        for i in range(args.repeat):
            home = folder / f"home{i}"
            cold.append(first_trial_latency(home, config))  # the CLI starts the daemon
            warm.append(first_trial_latency(home, config))  # the daemon is up
            nasctl(home, "manager", "stop")
        baseline = statistics.median(bare_python() for _ in range(args.repeat))
    warm_s, cold_s = statistics.median(warm), statistics.median(cold)
    print(f"baseline: python -c pass                  {baseline * 1000:7.0f} ms")
    print(
        f"create -> first trial, daemon up (median)  {warm_s * 1000:7.0f} ms  = {warm_s / baseline:5.1f} x baseline"
    )
    print(
        f"create -> first trial, daemon started       {cold_s * 1000:7.0f} ms  = {cold_s / baseline:5.1f} x baseline"
    )
    verdict = "meets" if warm_s <= 0.5 and cold_s <= 2.0 else "misses"
    print(f"verdict: {verdict} the targets (<= 500 ms with the daemon up, <= 2000 ms when started)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
