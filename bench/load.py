"""Load: trials reporting as fast as they can while many REST clients poll the daemon.

Four trials each report 2,000 intermediate results (and a final one) as fast as they can, while
50 REST clients poll the daemon for 30 seconds the way dashboards and scripts do: the experiment,
a page of trials, the metrics since the last poll (incremental), the experiment list; each
client sends its next request as soon as the last is answered (or, with ``--interval S``, S
seconds after it, as a dashboard does). The daemon is its own process.

Printed: requests answered, the clients' p50/p99/max latency, the same measured on an idle
daemon first (same clients, same routes, a finished experiment of the same shape) and their
ratio, and the exact count of metrics stored per trial against what each trial wrote to its
metrics.jsonl: every one stored, none twice. Exit status 1 on any lost or duplicated metric, any
answer that is not a 2xx, or a "database is locked" anywhere.

Usage: ``python bench/load.py [--trials 4] [--results 2000] [--clients 50] [--seconds 30]
[--interval 0]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
TRIAL = REPO / "tests" / "reliability" / "faulty_trial.py"
#: 3 x 2 x 2 = 12 architectures: enough for every trial of a run.
SPACE = {
    "conv": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "maxpool"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["in0", "in1"], "n_chosen": 1}},
    "act": {"_type": "layer_choice", "_value": ["relu", "gelu"]},
}


@dataclass
class Latencies:
    """What the clients saw in one phase."""

    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        if not self.seconds:
            return float("nan")
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


@dataclass(frozen=True)
class TrialCount:
    """One trial's metrics: what it wrote to metrics.jsonl, and what the database holds."""

    trial_id: str
    status: str
    written: int
    stored_intermediate: int
    stored_final: int
    distinct: int  # distinct intermediate results stored (by their counter)

    @property
    def exact(self) -> bool:
        return (
            self.stored_intermediate + self.stored_final == self.written == self.distinct + self.stored_final
        )


@dataclass(frozen=True)
class LoadResult:
    idle: Latencies
    loaded: Latencies
    trials: tuple[TrialCount, ...]
    expected_per_trial: int
    locked: bool  # "database is locked" seen in an answer or in manager.log

    @property
    def ok(self) -> bool:
        return (
            not self.idle.failures
            and not self.loaded.failures
            and not self.locked
            and all(t.exact and t.stored_intermediate == self.expected_per_trial for t in self.trials)
            and all(t.stored_final == 1 for t in self.trials)
        )


def run_load(
    trials: int = 4,
    results: int = 2000,
    clients: int = 50,
    seconds: float = 30.0,
    idle_seconds: float = 5.0,
    interval: float = 0.0,
) -> LoadResult:
    """Run the whole measurement in a fresh daemon home; see the module docstring."""
    with tempfile.TemporaryDirectory(prefix="nasctl-load-") as folder:
        home = Path(folder) / "home"
        proc = subprocess.Popen(
            [sys.executable, "-m", "manager", "serve", "--home", str(home)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            info = _wait_manager_file(home, proc)
            base = f"http://127.0.0.1:{info['port']}/api/v1"
            headers = {"Authorization": f"Bearer {info['token']}"}
            with httpx.Client(base_url=base, headers=headers, timeout=120, trust_env=False) as api:
                warm = _create(api, trials, "ok")
                _wait_done(api, warm, 120)
                idle = asyncio.run(_poll(base, headers, warm, clients, idle_seconds, interval))
                exp = _create(api, trials, f"many:{results}")
                loaded = asyncio.run(_poll(base, headers, exp, clients, seconds, interval))
                _wait_done(api, exp, 300)
                listed = api.get(f"/experiments/{exp}/trials", params={"limit": 1000}).json()["items"]
            counts = tuple(_count(home, trial) for trial in listed)
            log = (
                (home / "manager.log").read_text(errors="replace") if (home / "manager.log").exists() else ""
            )
            locked = "database is locked" in log or any(
                "locked" in failure for failure in idle.failures + loaded.failures
            )
            return LoadResult(idle, loaded, counts, results, locked)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait_manager_file(home: Path, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        with contextlib.suppress(OSError, ValueError):
            info = json.loads((home / "manager.json").read_text())
            if info["pid"] == proc.pid:
                return dict(info)
        time.sleep(0.02)
    raise RuntimeError("the daemon did not start within 30 s")


def _create(api: httpx.Client, trials: int, mode: str) -> str:
    config = {
        "experimentName": f"load-{mode}",
        "trialCommand": f"{sys.executable} {TRIAL.name} --modes {mode}",
        "trialCodeDirectory": str(TRIAL.parent),
        "searchSpace": SPACE,
        "trialConcurrency": trials,
        "maxTrialNumber": trials,
    }
    response = api.post("/experiments", json={"config": config, "baseDir": "/"})
    response.raise_for_status()
    return str(response.json()["id"])


def _status(api: httpx.Client, experiment_id: str) -> str:
    return str(api.get(f"/experiments/{experiment_id}").json()["status"])


def _wait_done(api: httpx.Client, experiment_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (status := _status(api, experiment_id)) not in ("DONE", "STOPPED", "ERROR"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"experiment {experiment_id} still {status} after {timeout:.0f} s")
        time.sleep(0.1)
    if status != "DONE":
        raise RuntimeError(f"experiment {experiment_id} ended {status}")


async def _poll(
    base: str,
    headers: dict[str, str],
    experiment_id: str,
    clients: int,
    seconds: float,
    interval: float = 0.0,
) -> Latencies:
    """``clients`` clients, each on its own connection, polling for ``seconds`` (``interval`` apart)."""
    seen = Latencies()
    stop_at = time.monotonic() + seconds

    async def client(number: int) -> None:
        since = 0
        routes = itertools.cycle(("experiment", "trials", "metrics", "list"))
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120, trust_env=False) as http:
            for _ in range(number % 4):
                next(routes)  # clients start on different routes
            while time.monotonic() < stop_at:
                route = next(routes)
                if route == "experiment":
                    request = http.get(f"/experiments/{experiment_id}")
                elif route == "trials":
                    request = http.get(f"/experiments/{experiment_id}/trials", params={"limit": 50})
                elif route == "metrics":
                    request = http.get(
                        f"/experiments/{experiment_id}/metrics", params={"since": since, "limit": 1000}
                    )
                else:
                    request = http.get("/experiments")
                started = time.perf_counter()
                try:
                    response = await request
                except httpx.HTTPError as exc:
                    seen.failures.append(f"{route}: {type(exc).__name__}: {exc}")
                    continue
                seen.seconds.append(time.perf_counter() - started)
                if not response.is_success:
                    seen.failures.append(f"{route}: {response.status_code} {response.text[:200]}")
                elif route == "metrics":
                    since = int(response.json()["next"])
                if interval:
                    await asyncio.sleep(interval)

    await asyncio.gather(*(client(i) for i in range(clients)))
    return seen


def _count(home: Path, trial: dict[str, Any]) -> TrialCount:
    path = Path(trial["trialDir"]) / "metrics.jsonl"
    written = sum(1 for line in path.read_text().splitlines() if line.strip())
    with sqlite3.connect(f"file:{home / 'nasctl.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT type, value FROM metrics WHERE trial_id = ?", (trial["id"],)).fetchall()
    intermediate = [json.loads(value) for kind, value in rows if kind == "PERIODICAL"]
    final = sum(1 for kind, _ in rows if kind == "FINAL")
    distinct = len({value["n"] for value in intermediate})
    return TrialCount(trial["id"], trial["status"], written, len(intermediate), final, distinct)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--results", type=int, default=2000, help="intermediate results per trial")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=0.0, help="pause of each client between polls")
    args = parser.parse_args(argv)
    result = run_load(args.trials, args.results, args.clients, args.seconds, args.idle_seconds, args.interval)
    idle, loaded = result.idle, result.loaded
    pace = f"every {args.interval:g} s" if args.interval else "back to back"
    print(f"{args.clients} clients polling {pace}; {args.trials} trials x {args.results} results")
    for name, phase, span in (("idle", idle, args.idle_seconds), ("loaded", loaded, args.seconds)):
        print(
            f"  {name:6}: {len(phase.seconds):6d} requests in {span:.0f} s "
            f"({len(phase.seconds) / span:.0f}/s), p50 {phase.percentile(50):.1f} ms, "
            f"p99 {phase.percentile(99):.1f} ms, max {max(phase.seconds, default=0) * 1000:.1f} ms, "
            f"failures {len(phase.failures)}"
        )
    ratio = loaded.percentile(50) / idle.percentile(50) if idle.seconds else float("nan")
    ratio99 = loaded.percentile(99) / idle.percentile(99) if idle.seconds else float("nan")
    print(f"  loaded / idle: p50 x{ratio:.2f}, p99 x{ratio99:.2f}")
    for count in result.trials:
        print(
            f"  trial {count.trial_id} {count.status}: wrote {count.written}, stored "
            f"{count.stored_intermediate} intermediate + {count.stored_final} final, "
            f"{count.distinct} distinct ({'exact' if count.exact else 'MISMATCH'})"
        )
    print(f"  'database is locked' seen: {'YES' if result.locked else 'no'}")
    for failure in (idle.failures + loaded.failures)[:5]:
        print(f"  failure: {failure}")
    if loaded.seconds:
        print(f"  mean latency loaded {statistics.fmean(loaded.seconds) * 1000:.1f} ms")
    print("verdict:", "ok" if result.ok else "FAILED")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
