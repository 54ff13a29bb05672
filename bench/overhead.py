"""What the daemon costs per trial: 100 trivial trials through a real daemon vs 100 plain launches.

Both sides run the same script (``tests/trials/fast_trial.py``: reads its parameters, reports two
intermediate results and a final one) at the same concurrency, in the same run, so the ratio
compares like with like on this machine. The daemon side adds everything an experiment does per trial: asking
the tuner, writing the trial's rows and folder, spawning through ``sh -c``, tailing and storing
the metrics, telling the tuner the result. Also printed: how long from ``POST /experiments`` to
the first trial RUNNING, and the gap between one trial's end and the next one's start.

Usage: ``python bench/overhead.py [--trials 100] [--concurrency 1]``. Exit status 1 when the
per-trial overhead exceeds ``--max-overhead-ms`` (default 200 ms).
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import itertools  # noqa: E402

from manager.daemon import Daemon  # noqa: E402

TRIAL = REPO / "tests" / "trials" / "fast_trial.py"
#: 5 x 5 x 5 = 125 architectures, so 100 trials never exhaust the tuner.
SPACE = {
    key: {"_type": "layer_choice", "_value": [f"op{i}" for i in range(5)]}
    for key in ("cell0", "cell1", "cell2")
}


def plain_launch(i: int, workdir: Path) -> None:
    """Run the trial once with subprocess, with its own folder, parameter file and log files."""
    trial_dir = workdir / f"plain{i}"
    trial_dir.mkdir()
    parameters = {key: {"_value": "op0", "_idx": 0} for key in SPACE}
    (trial_dir / "parameter.json").write_text(json.dumps({"parameter_id": i, "parameters": parameters}))
    env = {
        **os.environ,
        "NASCTL_TRIAL_ID": f"plain{i}",
        "NASCTL_TRIAL_DIR": str(trial_dir),
        "NASCTL_PARAMETER_FILE": str(trial_dir / "parameter.json"),
    }
    with open(trial_dir / "stdout", "wb") as out, open(trial_dir / "stderr", "wb") as err:
        subprocess.run(
            [sys.executable, str(TRIAL)], cwd=TRIAL.parent, env=env, stdout=out, stderr=err, check=True
        )


def plain_launches(count: int, concurrency: int, workdir: Path) -> float:
    """Seconds to run the trial ``count`` times, ``concurrency`` at a time, with a minimal pool."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(plain_launch, range(count), itertools.repeat(workdir)))
    return time.perf_counter() - started


def through_daemon(count: int, concurrency: int, home: Path) -> dict[str, float | list[int]]:
    daemon = Daemon(home)
    port, token = daemon.start_in_thread()
    try:
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            trust_env=False,
            timeout=60,
        )
        config = {
            "experimentName": "overhead",
            "trialCommand": f"{sys.executable} {TRIAL.name}",
            "trialCodeDirectory": str(TRIAL.parent),
            "searchSpace": SPACE,
            "trialConcurrency": concurrency,
            "maxTrialNumber": count,
        }
        started = time.perf_counter()
        response = client.post("/experiments", json={"config": config, "baseDir": str(REPO)})
        post_seconds = time.perf_counter() - started
        response.raise_for_status()
        exp_id = response.json()["id"]
        while True:
            experiment = client.get(f"/experiments/{exp_id}").json()
            if experiment["status"] in ("DONE", "ERROR", "STOPPED"):
                break
            time.sleep(0.25)  # the timing comes from the server's clock; polling only costs it CPU
        # the server's own clock: from creation to the end of the last trial (no polling error)
        elapsed = (experiment["endTime"] - experiment["createdAt"]) / 1000
        trials = client.get(f"/experiments/{exp_id}/trials", params={"limit": 1000}).json()["items"]
        client.close()
    finally:
        daemon.shutdown()
    if experiment["status"] != "DONE" or experiment["trialCounts"]["SUCCEEDED"] != count:
        raise SystemExit(f"the experiment ended {experiment['status']} with {experiment['trialCounts']}")
    first_running = min(t["startTime"] for t in trials) - experiment["createdAt"]
    ordered = sorted(trials, key=lambda t: t["startTime"])
    gaps = [b["startTime"] - a["endTime"] for a, b in itertools.pairwise(ordered)] if concurrency == 1 else []
    durations = [t["duration"] * 1000 for t in trials]
    return {
        "seconds": elapsed,
        "post_seconds": post_seconds,
        "first_running_ms": first_running,
        "gaps": gaps,
        "durations": durations,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--max-overhead-ms", type=float, default=200.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nasctl-bench-") as tmp:
        workdir = Path(tmp)
        plain = plain_launches(args.trials, args.concurrency, workdir)
        daemon = through_daemon(args.trials, args.concurrency, workdir / "home")
    seconds = float(daemon["seconds"])  # type: ignore[arg-type]
    overhead_ms = (seconds - plain) / args.trials * 1000
    print(f"trials: {args.trials}, concurrency {args.concurrency}")
    print(f"plain subprocess launches: {plain:.2f} s ({plain / args.trials * 1000:.1f} ms per trial)")
    print(f"through the daemon:        {seconds:.2f} s ({seconds / args.trials * 1000:.1f} ms per trial)")
    print(f"ratio daemon / plain:      {seconds / plain:.2f}")
    print(f"overhead per trial:        {overhead_ms:.1f} ms")
    print(f"POST /experiments answered in {float(daemon['post_seconds']) * 1000:.0f} ms")  # type: ignore[arg-type]
    print(f"POST -> first trial RUNNING: {daemon['first_running_ms']} ms")
    gaps = daemon["gaps"]
    if gaps:
        assert isinstance(gaps, list)
        print(
            f"gap from a trial's end to the next start: median {statistics.median(gaps):.0f} ms, "
            f"p90 {sorted(gaps)[int(len(gaps) * 0.9)]:.0f} ms, max {max(gaps):.0f} ms"
        )
    durations = daemon["durations"]
    assert isinstance(durations, list)
    print(f"a trial's own run (start to end, daemon side): median {statistics.median(durations):.0f} ms")
    verdict = overhead_ms <= args.max_overhead_ms
    print(f"verdict: {'OK' if verdict else 'TOO SLOW'} (limit {args.max_overhead_ms:.0f} ms per trial)")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
