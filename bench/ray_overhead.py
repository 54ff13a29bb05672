"""What ``platform: ray`` costs per trial against ``local``, on a 3-node Ray cluster on this machine.

The same trivial trials (``bench/_trivial_trial.py``) through one real daemon (``python -m manager
serve``), at each concurrency, on ``local`` and on ``ray`` (``trialCpuNumber: 0.5`` on the
cluster of ``tests/ray/cluster.py``: a head and two workers, 1 CPU each). Printed per platform and
concurrency: create -> first trial running (the trial's ``startTime``); slot overhead per trial
(wall time from first start to last end, times the concurrency, over N); and how long a metric
takes from the trial writing it (its ``time``) to the daemon serving it over REST (polled every
10 ms: p50 and p95). Then the ratios ray / local.

Ray binds the machine's routable address, so the cluster runs in a private network + PID
namespace: this script re-executes itself under ``unshare --net --pid --fork --mount-proc``
(root or unprivileged user namespaces needed; ``make bench`` skips it: ``BY_HAND`` in run_all.py).

Usage: ``python bench/ray_overhead.py [--trials 20] [--concurrency 1,2]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "ray")]
TRIAL = Path(__file__).resolve().parent / "_trivial_trial.py"
KEYS = ("cell0", "cell1", "cell2", "cell3")
SPACE = {key: {"_type": "layer_choice", "_value": [f"op{i}" for i in range(5)]} for key in KEYS}
POLL_S = 0.01


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--concurrency", default="1,2")
    args = parser.parse_args()
    if os.environ.get("NASCTL_RAY_NETNS") != "1":
        return reexec_in_namespace()
    from cluster import AUTH_ENV, RayCluster

    os.environ.update(AUTH_ENV)
    from ray_daemon import Served

    rows: list[dict[str, Any]] = []
    with RayCluster() as cluster, tempfile.TemporaryDirectory(prefix="rayovh-") as home:
        daemon = Served(Path(home) / "home")
        try:
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                for platform in ("local", "ray"):
                    rows.append(run(daemon, platform, cluster.address, args.trials, concurrency))
        finally:
            daemon.stop()
    print_table(rows)
    return 0


def reexec_in_namespace() -> int:
    unshare = shutil.which("unshare")
    if unshare is None:
        print("bench/ray_overhead.py needs unshare (util-linux) to run Ray in a network namespace")
        return 1
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    inner = f"ip link set lo up && {sys.executable} {' '.join(sys.argv)}"
    env = {**os.environ, "NASCTL_RAY_NETNS": "1", "PYTHONPATH": str(REPO)}
    command = [unshare, *user, "--net", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", inner]
    return subprocess.run(command, cwd=REPO, env=env).returncode


def run(daemon: Any, platform: str, address: str, trials: int, concurrency: int) -> dict[str, Any]:
    config: dict[str, Any] = {
        "experimentName": f"overhead-{platform}",
        "trialCommand": f"{sys.executable} {TRIAL.name}",
        "trialCodeDirectory": str(TRIAL.parent),
        "searchSpace": SPACE,
        "trialConcurrency": concurrency,
        "maxTrialNumber": trials,
        "tuner": {"name": "Random", "classArgs": {"seed": 0}},
        "trainingService": {"platform": platform},
    }
    if platform == "ray":
        config["trainingService"]["address"] = address
        config["trialCpuNumber"] = 0.5
    created = time.time()
    experiment_id = daemon.create(config)
    seen: dict[int, float] = {}  # metric id -> when REST first served it
    latencies: list[float] = []
    since = 0
    while True:
        page = daemon.client.metrics(experiment_id, since=since, limit=1000)
        now = time.time()
        for metric in page["items"]:
            if metric["id"] not in seen:
                seen[metric["id"]] = now
                latencies.append(now - float(metric["time"]) / 1000)
            since = max(since, int(metric["id"]))
        if daemon.client.get_experiment(experiment_id)["status"] in ("DONE", "STOPPED", "ERROR"):
            break
        time.sleep(POLL_S)
    records = daemon.trials(experiment_id)
    failed = [t for t in records if t["status"] != "SUCCEEDED"]
    if failed:
        raise SystemExit(f"{platform}: {len(failed)} trials failed: {failed[0].get('reason')}")
    starts = [t["startTime"] / 1000 for t in records]
    ends = [t["endTime"] / 1000 for t in records]
    wall = max(ends) - min(starts)
    return {
        "platform": platform,
        "concurrency": concurrency,
        "trials": len(records),
        "first": min(starts) - created,
        "slot_ms": 1000 * wall * concurrency / len(records),
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else float("nan"),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'platform':8} {'c':>2} {'N':>3} {'create->first':>14} {'slot/trial':>11} {'metric p50':>11} {'p95':>8}"
    )
    for r in rows:
        print(
            f"{r['platform']:8} {r['concurrency']:>2} {r['trials']:>3} {r['first']:>13.2f}s "
            f"{r['slot_ms']:>9.0f}ms {r['p50_ms']:>9.0f}ms {r['p95_ms']:>6.0f}ms"
        )
    by = {(r["platform"], r["concurrency"]): r for r in rows}
    for (platform, c), ray in sorted(by.items()):
        local = by.get(("local", c))
        if platform == "ray" and local:
            print(
                f"ray / local at c={c}: create->first {ray['first'] / local['first']:.1f}x, "
                f"slot/trial {ray['slot_ms'] / local['slot_ms']:.1f}x, metric p50 {ray['p50_ms'] / local['p50_ms']:.1f}x"
            )


if __name__ == "__main__":
    sys.exit(main())
