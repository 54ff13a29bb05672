"""The daemon at scale: REST latency at 100,000 trials, its footprint, and a long run of trials.

Three parts, each against a real daemon process (``nasctl.launcher.start_daemon``, what
``nasctl manager start`` runs), all in one run:

1. **latency**: a home with one experiment of ``--db-trials`` trials (default 100,000) with 10
   intermediate results each (1,000,000 metrics, plus the final result of each succeeded trial)
   and 3 events each, written straight into the store's tables with ``sqlite3`` ``executemany``
   (the tables and indexes are the store's own; the indexes are rebuilt after the load), and a
   100-trial experiment as the baseline. The big experiment is left RUNNING with a few RUNNING
   trials whose process is gone, as after a daemon crash, so the daemon's start has to recover
   it (it ends STOPPED; the check is that it starts, and how long that takes). Then every read
   route the CLI and the dashboard use, ``--requests`` times each after 3 warm-ups from one
   kept-alive ``nasctl.client.Client``: p50/p95 and the ratio to the same route on the 100-trial
   experiment; and ``nasctl status ID`` / ``nasctl trial ls ID --top 5`` as subprocesses
   (median of 5) against ``python -c pass``.
2. **footprint**: a daemon on a fresh home, idle: its RSS and CPU% over ``--idle`` seconds.
3. **run**: ``--trials`` trivial trials (``bench/_trivial_trial.py``, Random tuner, concurrency 2)
   on that daemon. From the trials' server-side startTime/endTime: the slot gap (a trial's start
   minus the end of the trial whose slot it took: with concurrency c the i-th start follows the
   (i-c)-th end), per hundred trials by sequence id; median and p90 gap and trials/s of the first,
   middle and last hundred, and the median gap of each tenth of the run (growth shows as a trend,
   the machine's noise as a blip). Then the daemon's RSS. 2,000 trials take ~80 s on 2 cores.

Usage: ``python bench/scale.py [--db-trials 100000] [--requests 50] [--trials 2000]
[--idle 10] [--skip latency,footprint,run]``.

Targets (issue 6): p95 <= 20 ms for a 50-trial page at 100,000 trials (every ``page`` route);
``nasctl status`` <= 300 ms; idle RSS <= 100 MB and idle CPU < 1%; the last hundred trials'
median slot gap within 10% of the first hundred's (or at most 1 ms more: the server's times are
whole milliseconds and the gap is ~10 ms). Exit status 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from manager.store import Store, now_ms  # noqa: E402
from nasctl.client import Client, DaemonInfo  # noqa: E402
from nasctl.launcher import start_daemon, stop_daemon  # noqa: E402

BENCH = Path(__file__).resolve().parent
TRIAL = BENCH / "_trivial_trial.py"
OPS = ["conv3x3", "conv5x5", "sepconv3x3", "maxpool3x3"]
#: The latency experiments' space: 4 layer choices of 4 ops, a skip, a learning rate.
SPACE: dict[str, Any] = {
    **{f"conv{i}": {"_type": "layer_choice", "_value": OPS} for i in range(1, 5)},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["conv1"], "n_chosen": None}},
    "lr": {"_type": "choice", "_value": [0.1, 0.01, 0.001]},
}
#: The run's space: 5**6 = 15,625 architectures, so the Random tuner never runs dry.
RUN_SPACE = {f"cell{i}": {"_type": "layer_choice", "_value": [f"op{j}" for j in range(5)]} for i in range(6)}
INTERMEDIATES = 10
RUNNING_LEFT = 20  # trials left RUNNING (their process gone) in the big experiment
WARMUP = 3
#: The columns of make_experiment's trial rows, in order.
TRIAL_COLUMNS = (
    "id", "experiment_id", "sequence_id", "parameter_id", "parameters", "status", "created_at",
    "start_time", "end_time", "exit_code", "signal", "reason", "waiting_reason", "final_metric",
    "final_metric_data", "gpus", "trial_dir", "pid", "pid_create_time", "metrics_offset",
    "result_in_checkpoint", "end_in_checkpoint",
)  # fmt: skip
TARGET_PAGE_P95_MS = 20.0
TARGET_STATUS_MS = 300.0
TARGET_IDLE_RSS_MB = 100.0
TARGET_IDLE_CPU = 1.0
TARGET_DRIFT = 0.10
CLOCK_TICK_MS = 1.0


# -- 1. the database -------------------------------------------------------------------------------


def _trial_ids(rng: random.Random, count: int) -> list[str]:
    """NNI-shaped ids (five characters, a letter first), all different."""
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    alnum = letters + "0123456789"
    seen: set[str] = set()
    while len(seen) < count:
        seen.add(rng.choice(letters) + "".join(rng.choices(alnum, k=4)))
    ids = sorted(seen)
    rng.shuffle(ids)
    return ids


def make_experiment(home: Path, trials: int, *, running: bool, seed: int, name: str) -> str:
    """An experiment of ``trials`` trials written straight into the store's tables; its id.

    Statuses: mostly SUCCEEDED with a final result, ~3% FAILED, ~1% USER_CANCELED; when
    ``running``, the experiment is RUNNING and its last trials RUNNING (pid gone) or WAITING, as
    a crashed daemon leaves them.
    """
    store = Store.open(home)  # the store's own schema and indexes; the experiment row the store's way
    try:
        record = store.create_experiment(
            name=name,
            config={"experimentName": name, "trialCommand": "python model.py", "searchSpace": SPACE},
            search_space=SPACE,
            trial_concurrency=4,
            max_trial_number=trials + (RUNNING_LEFT if running else 0),
            max_experiment_duration=None,
            optimize_mode="maximize",
            tuner_name="Random",
            experiments_root=home / "experiments",
        )
    finally:
        store.close()
    rng = random.Random(seed)
    ids = _trial_ids(rng, trials)
    start = now_ms() - trials * 500 - 60_000
    trial_dir = str(record.experiment_dir / "trials")
    bonus = {"conv3x3": 0.03, "conv5x5": 0.05, "sepconv3x3": 0.07, "maxpool3x3": -0.08}
    trial_rows, metric_rows, event_rows = [], [], []
    for seq, tid in enumerate(ids):
        picks = [rng.randrange(4) for _ in range(4)]
        skip = rng.random() < 0.5
        lr = rng.randrange(3)
        parameters = {f"conv{i + 1}": {"_value": OPS[p], "_idx": p} for i, p in enumerate(picks)}
        parameters["skip"] = {"_value": ["conv1"] if skip else [], "_idx": [0] if skip else []}
        parameters["lr"] = SPACE["lr"]["_value"][lr]
        final = min(0.99, 0.75 + sum(bonus[OPS[p]] for p in picks) / 2 + 0.02 * skip + rng.gauss(0, 0.02))
        tail = trials - seq
        if running and tail <= 2:
            status = "WAITING"
        elif running and tail <= RUNNING_LEFT:
            status = "RUNNING"
        else:
            roll = rng.random()
            status = "FAILED" if roll < 0.03 else "USER_CANCELED" if roll < 0.04 else "SUCCEEDED"
        begin = start + seq * 500
        end = begin + rng.randint(2_000, 9_000) if status not in ("WAITING", "RUNNING") else None
        ok = status == "SUCCEEDED"
        trial_rows.append(
            (
                tid, record.id, seq, seq, json.dumps(parameters), status, begin - 10,
                begin if status != "WAITING" else None, end,
                None if end is None else 0 if ok else 1 if status == "FAILED" else None,
                None if status != "USER_CANCELED" else 15,
                "exit code 1" if status == "FAILED" else "experiment stopped" if status == "USER_CANCELED" else None,
                "trialConcurrency 4 reached" if status == "WAITING" else None,
                final if ok else None, json.dumps(final) if ok else None, "[]", f"{trial_dir}/{tid}",
                None, None, 0, ok, end is not None,
            )
        )  # fmt: skip
        steps = 0 if status == "WAITING" else INTERMEDIATES
        for step in range(steps):
            value = final * (1 - math.exp(-3 * (step + 1) / INTERMEDIATES)) + rng.gauss(0, 0.005)
            metric_rows.append(
                (record.id, tid, "PERIODICAL", step, json.dumps(value), value, begin + 100 * step)
            )
        if ok:
            metric_rows.append((record.id, tid, "FINAL", 0, json.dumps(final), final, end))
        event_rows.append((record.id, tid, begin - 10, "TRIAL_STATUS", "-> WAITING", '{"to": "WAITING"}'))
        if status != "WAITING":
            event_rows.append((record.id, tid, begin, "TRIAL_STATUS", "WAITING -> RUNNING", None))
        if end is not None:
            event_rows.append((record.id, tid, end, "TRIAL_STATUS", f"RUNNING -> {status}", None))
    db = sqlite3.connect(home / "nasctl.db")
    try:
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-262144")
        tables = ("trials", "metrics", "events")
        indexes = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL AND tbl_name IN (?, ?, ?)",
            tables,
        ).fetchall()
        for index_name, _ in indexes:  # a sorted rebuild after the load beats a million B-tree inserts
            db.execute(f'DROP INDEX "{index_name}"')
        with db:
            db.executemany(
                f"INSERT INTO trials ({', '.join(TRIAL_COLUMNS)}) VALUES ({', '.join('?' * len(TRIAL_COLUMNS))})",
                trial_rows,
            )
            db.executemany(
                "INSERT INTO metrics (experiment_id, trial_id, type, sequence, value, default_value, time) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                metric_rows,
            )
            db.executemany(
                "INSERT INTO events (experiment_id, trial_id, time, kind, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                event_rows,
            )
            db.execute(
                "UPDATE experiments SET status = ?, start_time = ?, end_time = ?, next_sequence_id = ? WHERE id = ?",
                ("RUNNING" if running else "DONE", start, None if running else start + trials * 500 + 9_000, trials, record.id),
            )  # fmt: skip
        for _, sql in indexes:
            db.execute(sql)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return record.id


# -- measuring -------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Route:
    name: str
    path: str  # under /experiments/{id}, or absolute when it starts with "!"
    params: dict[str, Any]
    page: bool = False  # a 50-trial page: the target applies


def routes(total: int, trial_id: str, last_metric: int) -> list[Route]:
    return [
        Route("page, final metric desc", "/trials", {"sort": "finalMetric", "order": "desc"}, True),
        Route("page, final metric asc", "/trials", {"sort": "finalMetric", "order": "asc"}, True),
        Route("page, default", "/trials", {}, True),
        Route(f"page, offset {total // 2:,}", "/trials", {"offset": total // 2}, True),
        Route("page, status=FAILED", "/trials", {"status": "FAILED"}, True),
        Route("page, SUCCEEDED by metric", "/trials", {"status": "SUCCEEDED", "sort": "finalMetric", "order": "desc"}, True),
        Route("page, status desc", "/trials", {"sort": "status", "order": "desc"}, True),
        Route("page, startTime asc", "/trials", {"sort": "startTime"}, True),
        Route("page, duration desc", "/trials", {"sort": "duration", "order": "desc"}, True),
        Route("page, endTime desc", "/trials", {"sort": "endTime", "order": "desc"}, True),
        Route("best k=10", "/best", {"k": 10}),
        Route("metrics since=last-100", "/metrics", {"since": max(0, last_metric - 100)}),
        Route("metrics since=0 (1000)", "/metrics", {}),
        Route("experiment summary", "", {}),
        Route("experiment list", "!/experiments", {}),
        Route("trial + intermediates", f"/trials/{trial_id}", {}),
        Route("final-metrics since=last", "/final-metrics", {"since": last_metric}),
        Route("final-metrics since=0 (all)", "/final-metrics", {}),
        Route("choice-stats top=10", "/choice-stats", {"top": 10}),
        Route("nas-view points=200", "/nas-view", {"points": 200}),
    ]  # fmt: skip


def newest_metric(home: Path, experiment_id: str) -> int:
    db = sqlite3.connect(home / "nasctl.db")
    try:
        return db.execute("SELECT max(id) FROM metrics WHERE experiment_id = ?", (experiment_id,)).fetchone()[
            0
        ]
    finally:
        db.close()


def time_route(client: Client, experiment_id: str, route: Route, requests: int) -> list[float]:
    path = route.path[1:] if route.path.startswith("!") else f"/experiments/{experiment_id}{route.path}"
    samples = []
    for i in range(WARMUP + requests):
        started = time.perf_counter()
        client._request(
            "GET", path, params=route.params
        )  # the answer undecoded: decoding is the client's cost
        if i >= WARMUP:
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def timed_command(command: list[str], env: dict[str, str], repeat: int = 5) -> float:
    """Median seconds of ``repeat`` runs (one run first, untimed, to warm the file cache)."""
    times = []
    for i in range(repeat + 1):
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command[-4:])} failed: {done.stderr.strip()[-400:]}")
        if i:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def started_daemon(home: Path) -> tuple[DaemonInfo, float]:
    started = time.perf_counter()
    info = start_daemon(home, timeout=120)
    return info, time.perf_counter() - started


def latency(args: argparse.Namespace, folder: Path, problems: list[str]) -> None:
    home = folder / "scale-home"
    home.mkdir(parents=True)
    started = time.perf_counter()
    big = make_experiment(home, args.db_trials, running=True, seed=1, name="scale-big")
    big_s = time.perf_counter() - started
    small = make_experiment(home, 100, running=False, seed=2, name="scale-baseline")
    db = sqlite3.connect(home / "nasctl.db")
    metric_count = db.execute("SELECT count(*) FROM metrics").fetchone()[0]
    db.close()
    size = (home / "nasctl.db").stat().st_size / 2**20
    print(
        f"generated {args.db_trials:,} trials and {metric_count:,} metrics in {big_s:.1f} s "
        f"(database {size:.0f} MB), plus a 100-trial baseline experiment",
        flush=True,
    )
    empty = folder / "empty-home"
    _, empty_start = started_daemon(empty)
    stop_daemon(empty)
    info, start_s = started_daemon(home)
    env = {**os.environ, "NASCTL_HOME": str(home)}
    try:
        with Client.from_info(info, timeout=120) as client:
            state = client.get_experiment(big)
            print(
                f"daemon start on this home: {start_s * 1000:.0f} ms (on an empty home {empty_start * 1000:.0f} ms); "
                f"the experiment it found RUNNING is now {state['status']}, trials {state['trialCounts']}",
                flush=True,
            )
            if state["status"] != "STOPPED":
                problems.append(f"the recovered experiment is {state['status']}, not STOPPED")
            table = []
            for experiment_id in (big, small):
                page = client.trials(experiment_id, limit=1)
                total = page["total"]
                trial_id = page["items"][0]["id"]
                last = newest_metric(home, experiment_id)
                measured = {}
                for route in routes(total, trial_id, last):
                    measured[route.name] = time_route(client, experiment_id, route, args.requests)
                table.append((total, measured))
            python_s = timed_command([sys.executable, "-c", "pass"], env)
            nasctl = [sys.executable, "-m", "nasctl.cli"]
            commands = {
                "nasctl status ID": (
                    timed_command([*nasctl, "status", big], env),
                    timed_command([*nasctl, "status", small], env),
                ),
                "nasctl trial ls ID --top 5": (
                    timed_command([*nasctl, "trial", "ls", big, "--top", "5"], env),
                    timed_command([*nasctl, "trial", "ls", small, "--top", "5"], env),
                ),
            }
    finally:
        stop_daemon(home)
    (big_total, big_times), (small_total, small_times) = table
    print()
    header = f"{'route':<30} {'p50 ms':>8} {'p95 ms':>8} {'base p50':>9} {'base p95':>9} {'p95 ratio':>9}"
    print(f"latency at {big_total:,} trials (base: {small_total} trials), {args.requests} requests each")
    print(header)
    print("-" * len(header))
    for route in routes(big_total, "", 0):
        name = route.name
        if name.startswith("page, offset"):
            base = next(v for k, v in small_times.items() if k.startswith("page, offset"))
        else:
            base = small_times[name]
        times = big_times[name]
        p95, base95 = percentile(times, 95), percentile(base, 95)
        flag = ""
        if route.page and p95 > TARGET_PAGE_P95_MS:
            flag = "  MISSED"
            problems.append(f"{name}: p95 {p95:.1f} ms > {TARGET_PAGE_P95_MS:.0f} ms")
        print(
            f"{name:<30} {statistics.median(times):8.1f} {p95:8.1f} {statistics.median(base):9.1f} "
            f"{base95:9.1f} {p95 / base95:8.1f}x{flag}"
        )
    print()
    print(f"{'command (median of 5)':<30} {'big ms':>8} {'base ms':>8} {'x python':>9}")
    print(f"{'python -c pass':<30} {python_s * 1000:8.0f}")
    for name, (big_s, small_s) in commands.items():
        flag = ""
        if name.startswith("nasctl status") and big_s * 1000 > TARGET_STATUS_MS:
            flag = "  MISSED"
            problems.append(f"{name}: {big_s * 1000:.0f} ms > {TARGET_STATUS_MS:.0f} ms")
        print(f"{name:<30} {big_s * 1000:8.0f} {small_s * 1000:8.0f} {big_s / python_s:8.1f}x{flag}")
    print(flush=True)


# -- 2 and 3. footprint and a long run ---------------------------------------------------------------


def footprint_and_run(args: argparse.Namespace, folder: Path, problems: list[str]) -> None:
    home = folder / "run-home"
    info, _ = started_daemon(home)
    process = psutil.Process(info.pid)
    try:
        with Client.from_info(info, timeout=120) as client:
            if "footprint" not in args.skip:
                time.sleep(1.0)  # past the start
                process.cpu_percent(None)
                time.sleep(args.idle)
                cpu = process.cpu_percent(None)
                rss = process.memory_info().rss / 2**20
                flags = []
                if rss > TARGET_IDLE_RSS_MB:
                    flags.append(f"idle RSS {rss:.0f} MB > {TARGET_IDLE_RSS_MB:.0f} MB")
                if cpu >= TARGET_IDLE_CPU:
                    flags.append(f"idle CPU {cpu:.2f}% >= {TARGET_IDLE_CPU:.0f}%")
                problems.extend(flags)
                print(
                    f"daemon idle on a fresh home, {args.idle:.0f} s: RSS {rss:.0f} MB, CPU {cpu:.2f}%"
                    + ("  MISSED" if flags else ""),
                    flush=True,
                )
            if "run" not in args.skip:
                run_trials(args, client, process, problems)
    finally:
        stop_daemon(home)


def run_trials(
    args: argparse.Namespace, client: Client, process: psutil.Process, problems: list[str]
) -> None:
    config = {
        "experimentName": "scale-run",
        "trialCommand": f"{sys.executable} {TRIAL.name}",
        "trialCodeDirectory": str(TRIAL.parent),
        "searchSpace": RUN_SPACE,
        "trialConcurrency": 2,
        "maxTrialNumber": args.trials,
        "tuner": {"name": "Random", "classArgs": {"seed": 0}},
    }
    started = time.perf_counter()
    experiment_id = client.create_experiment(config, BENCH)["id"]
    while (experiment := client.get_experiment(experiment_id))["status"] not in ("DONE", "STOPPED", "ERROR"):
        time.sleep(1.0)
    wall = time.perf_counter() - started
    rss = process.memory_info().rss / 2**20
    trials = list(client.iter_trials(experiment_id))
    succeeded = sum(t["status"] == "SUCCEEDED" for t in trials)
    print(
        f"{args.trials:,} trivial trials at concurrency 2: {experiment['status']}, {succeeded:,} succeeded, "
        f"{wall:.0f} s ({len(trials) / wall:.1f} trials/s); daemon RSS after the run {rss:.0f} MB",
        flush=True,
    )
    if experiment["status"] != "DONE" or succeeded != args.trials:
        problems.append(f"the run ended {experiment['status']} with {experiment['trialCounts']}")
        return
    gaps = slot_gaps(trials, 2)
    hundreds = sorted({t["sequenceId"] // 100 for t in trials})
    if len(hundreds) < 2:
        print("too few trials for a first and a last hundred")
        return
    picks = {"first": hundreds[0], "middle": hundreds[len(hundreds) // 2], "last": hundreds[-1]}
    if len(trials) % 100:  # a short last hundred is noisy: take the last full one
        picks["last"] = hundreds[-2]
    header = f"{'hundred':<8} {'trials':>12} {'gap p50 ms':>11} {'gap p90 ms':>11} {'trials/s':>9}"
    print(header)
    print("-" * len(header))
    medians = {}
    for label, hundred in picks.items():
        group = [t for t in trials if t["sequenceId"] // 100 == hundred]
        values = [gaps[t["id"]] for t in group if t["id"] in gaps]
        span = (max(t["endTime"] for t in group) - min(t["startTime"] for t in group)) / 1000
        medians[label] = statistics.median(values)
        print(
            f"{label:<8} {hundred * 100:>5}-{hundred * 100 + len(group) - 1:<6} {medians[label]:11.1f} "
            f"{percentile(values, 90):11.1f} {len(group) / span:9.2f}"
        )
    tenths = []  # the whole run at a glance: growth shows as a trend, noise as a blip
    for tenth in range(10):
        part = [
            gaps[t["id"]] for t in trials if t["id"] in gaps and t["sequenceId"] * 10 // len(trials) == tenth
        ]
        tenths.append(f"{statistics.median(part):.0f}" if part else "-")
    print(f"gap p50 ms by tenth of the run: {' '.join(tenths)}")
    ratio = medians["last"] / medians["first"] if medians["first"] > 0 else float("inf")
    # the server's times are whole milliseconds: one tick more on a gap of ~9 ms is not growth
    grew = ratio > 1 + TARGET_DRIFT and medians["last"] - medians["first"] > CLOCK_TICK_MS
    flag = "  MISSED" if grew else ""
    if grew:
        problems.append(f"slot gap last/first hundred {ratio:.2f} > {1 + TARGET_DRIFT:.2f}")
    print(
        f"slot gap median, last hundred / first hundred: {ratio:.2f} "
        f"(target <= {1 + TARGET_DRIFT:.2f}, or at most {CLOCK_TICK_MS:.0f} ms more: the clock's resolution){flag}",
        flush=True,
    )


def slot_gaps(trials: list[dict[str, Any]], concurrency: int) -> dict[str, float]:
    """Per trial id, ms from the end that freed its slot to its start (the first ``c`` have none)."""
    started = sorted((t for t in trials if t["startTime"]), key=lambda t: (t["startTime"], t["sequenceId"]))
    ends = sorted(t["endTime"] for t in trials if t["endTime"])
    return {
        t["id"]: t["startTime"] - ends[i - concurrency] for i, t in enumerate(started) if i >= concurrency
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db-trials", type=int, default=100_000, help="trials of the big experiment")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per route")
    parser.add_argument("--trials", type=int, default=2000, help="trivial trials of the run")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds the idle daemon is watched")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: latency, footprint, run")
    args = parser.parse_args()
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="nasctl-scale-") as tmp:
        if "latency" not in args.skip:
            latency(args, Path(tmp), problems)
        if not {"footprint", "run"} <= args.skip:
            footprint_and_run(args, Path(tmp), problems)
    if problems:
        print(f"verdict: misses {len(problems)} target(s): " + "; ".join(problems))
        return 1
    print("verdict: meets the targets (page p95, nasctl status, idle RSS/CPU, flat per-trial overhead)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
