"""One daemon at cluster scale: thousands of simulated trials through the real loop, store and API.

The daemon's own parts, in this process as ``nasctl manager start`` wires them: the experiment
manager and its loop, the store on a real SQLite file, and the REST API served by uvicorn on
127.0.0.1 (a free port) on the same asyncio loop. Only the trials are simulated
(``bench/_reporting_cluster.py``): ``--trials`` of them run at once (trialConcurrency and
maxTrialNumber = ``--trials``), each reporting an intermediate result every clock second (``--every``) for a
clock hour, with the Random tuner answering from the NAS-Bench-201 space (15,625 cells). The
daemon polls each trial's channel as it does for real trials: every 0.25 real seconds, slower past
1,000 polls per second in all (``manager.loop.follow.FollowPace``).

``--speed`` is clock seconds per real second: at 1, each trial reports once per real second, the
load a real cluster makes (1,000 trials = 1,000 reports/s); faster clocks stand for more trials
(or chattier ones) and find where the daemon stops keeping up. Once every trial runs, a warm-up,
then a ``--window`` of real seconds is measured while a REST client (``bench/_rest_poller.py``,
its own process) polls a page of trials and the metrics since its last id every
``--rest-interval`` seconds:

- loop events/s: intermediate results the loop moved into the store per second (= metric rows/s),
  and the backlog (written by trials but not yet stored) at the end of the window;
- store transactions/s, and the writer thread's busy share (1.0: the writer is saturated);
- daemon CPU in cores and per event: process CPU minus what the simulated cluster spent writing
  reports (measured by its ticker); the loop thread's and the writer thread's own shares;
- RSS at the window's end, and its peak (through the stop, when every trial ends at once);
  the event loop's lag p95 (a 50 ms heartbeat's lateness);
- REST p95 of each route.

Then the experiment is stopped (its time is printed) and every report written must be stored
exactly once. Aims (issue 22): daemon CPU < 1 core, REST p95 < 100 ms, no backlog growth (stored
>= 95% of written during the window). Exit status 1 when one is missed or a report is lost.

Usage: ``python bench/cluster_scale.py [--trials 200] [--speed 1] [--window 10] [--warmup 3]
[--rest-interval 0.1] [--launch-timeout 600] [--every 1] [--json PATH]``; ``--trials 1000``, ``--trials 10000`` and ``--speed 10``
are the issue's sizes (minutes each).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
import uvicorn

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "examples" / "nb201"):
    if str(path) not in sys.path:
        sys.path.append(str(path))  # last: nb201's model.py must not shadow another example's

from _reporting_cluster import ReportingCluster  # noqa: E402
from nb201_table import search_space  # noqa: E402

from manager.clock import Clock  # noqa: E402
from manager.config import parse_config  # noqa: E402
from manager.http.app import create_app  # noqa: E402
from manager.http.guard import MAX_BODY_BYTES, RequestGuard  # noqa: E402
from manager.http.state import ApiState  # noqa: E402
from manager.loop.experiments import METRIC_POLL_SECONDS, ExperimentManager  # noqa: E402
from manager.store import Store  # noqa: E402
from manager.training.simulated import SimulatedTrainingService  # noqa: E402

POLLER = Path(__file__).resolve().parent / "_rest_poller.py"
HOUR = 3600.0
HEARTBEAT_SECONDS = 0.05
#: The aims of issue 22, part 5.
MAX_CORES = 1.0
MAX_REST_P95_MS = 100.0
MIN_KEPT_UP = 0.95


class CountingStore(Store):
    """The store, counting its transactions and the writer's time in them."""

    transactions = 0
    writer_busy = 0.0

    def _run_write(self, fn: Any) -> Any:
        begin = time.perf_counter()
        try:
            return super()._run_write(fn)
        finally:
            self.transactions += 1
            self.writer_busy += time.perf_counter() - begin


@dataclass(frozen=True)
class Snapshot:
    """Counters at one instant; a window is the difference of two."""

    at: float
    cpu: float  # process CPU seconds
    loop_cpu: float
    writer_cpu: float
    ticker_cpu: float
    transactions: int
    writer_busy: float
    stored: int  # metric rows
    written: int  # records the trials wrote


@dataclass(frozen=True)
class Result:
    """What one run measured (see the module docstring)."""

    trials: int
    speed: float
    reports_per_second_offered: float
    running: int  # trials running in the window (fewer than ``trials``: launching timed out)
    launch_seconds: float
    window_seconds: float
    events_per_second: float
    transactions_per_second: float
    kept_up: float  # stored / written during the window
    backlog: int  # written but not stored at the window's end
    daemon_cores: float
    cpu_us_per_event: float
    loop_thread_cores: float
    writer_thread_cores: float
    writer_busy: float
    simulator_cores: float
    rss_peak_mb: float  # through the stop, when every trial ends at once
    rss_window_mb: float  # at the window's end: what the running trials hold
    loop_lag_p95_ms: float
    page_p95_ms: float
    metrics_p95_ms: float
    rest_requests: int
    rest_failures: int
    stop_seconds: float
    exactly_once: bool

    def misses(self) -> list[str]:
        """The aims this run missed, one line each."""
        out = []
        if self.running < self.trials:
            out.append(f"only {self.running} of {self.trials} trials launched in {self.launch_seconds:.0f} s")
        if self.daemon_cores >= MAX_CORES:
            out.append(f"daemon CPU {self.daemon_cores:.2f} cores >= {MAX_CORES}")
        for name, p95 in (("trial page", self.page_p95_ms), ("metrics since", self.metrics_p95_ms)):
            if not p95 < MAX_REST_P95_MS:
                out.append(f"REST p95 of {name} {p95:.1f} ms >= {MAX_REST_P95_MS:.0f} ms")
        if self.kept_up < MIN_KEPT_UP:
            out.append(f"stored only {self.kept_up:.0%} of the reports written during the window")
        if self.rest_failures:
            out.append(f"{self.rest_failures} REST requests failed")
        if not self.exactly_once:
            out.append("reports lost or stored twice")
        return out


def percentile_ms(seconds: list[float], p: float) -> float:
    if not seconds:
        return float("nan")
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def thread_cpu(process: psutil.Process, native_id: int) -> float:
    for thread in process.threads():
        if thread.id == native_id:
            return thread.user_time + thread.system_time
    return 0.0


def stored_metrics(db: Path, experiment_id: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        row = connection.execute("SELECT count(*) FROM metrics WHERE experiment_id = ?", (experiment_id,))
        return int(row.fetchone()[0])


class Monitor:
    """Samples RSS and the event loop's lag while the run lasts."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.rss_peak = 0
        self.lags: list[float] = []
        self.recording = False

    async def run(self) -> None:
        while True:
            begin = time.perf_counter()
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if self.recording:
                self.lags.append(time.perf_counter() - begin - HEARTBEAT_SECONDS)
            self.rss_peak = max(self.rss_peak, self.process.memory_info().rss)


async def serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """The API on 127.0.0.1, a free port, on this loop (as the daemon serves it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    guarded = RequestGuard(app, max_body_bytes=MAX_BODY_BYTES, loopback_only=True)
    config = uvicorn.Config(
        guarded, log_config=None, access_log=False, loop="asyncio", http="h11", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, sock.getsockname()[1]


async def run(
    trials: int,
    speed: float,
    window: float,
    warmup: float,
    rest_interval: float,
    home: Path,
    launch_timeout: float = 600.0,
    every: float = 1.0,
) -> Result:
    process = psutil.Process()
    store = CountingStore.open(home)
    cluster = ReportingCluster(Clock(speed=speed), every=every, duration=HOUR)
    manager = ExperimentManager(
        store,
        home,
        clock=cluster.clock,
        metric_poll_seconds=METRIC_POLL_SECONDS * speed,  # 0.25 real seconds, as for real trials
        services=lambda _config: SimulatedTrainingService(cluster),
    )
    token = "bench-token"
    server, server_task, port = await serve(create_app(ApiState(store, manager, token)))
    monitor = Monitor(process)
    background = [asyncio.create_task(cluster.tick()), asyncio.create_task(monitor.run())]
    writer_id = store.submit(threading.get_native_id).result()
    loop_id = threading.get_native_id()

    def snapshot(experiment_id: str) -> Snapshot:
        cpu = process.cpu_times()
        return Snapshot(
            time.perf_counter(),
            cpu.user + cpu.system,
            thread_cpu(process, loop_id),
            thread_cpu(process, writer_id),
            cluster.ticker_cpu,
            store.transactions,
            store.writer_busy,
            stored_metrics(home / "nasctl.db", experiment_id),
            cluster.written,
        )

    body = {
        "trialCommand": "simulated",
        "trialCodeDirectory": str(home),
        "searchSpace": search_space(),
        "trialConcurrency": trials,
        "maxTrialNumber": trials,
        "tuner": {"name": "Random", "classArgs": {"seed": 0}},
    }
    begin = time.perf_counter()
    record = await manager.create(parse_config(body, home))
    deadline = begin + launch_timeout
    while len(cluster.running) < trials and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    launch_seconds = time.perf_counter() - begin
    running = len(cluster.running)
    await asyncio.sleep(warmup)
    poller = subprocess.Popen(
        [sys.executable, str(POLLER), f"http://127.0.0.1:{port}", token, record.id, str(rest_interval)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert poller.stdout is not None and poller.stdin is not None
    await asyncio.to_thread(poller.stdout.readline)  # "ready"
    monitor.recording = True
    first = snapshot(record.id)
    await asyncio.sleep(window)
    last = snapshot(record.id)
    rss_window = process.memory_info().rss
    monitor.recording = False
    poller.stdin.write("stop\n")
    poller.stdin.flush()
    rest = json.loads(await asyncio.to_thread(poller.stdout.readline))
    poller.wait()

    begin = time.perf_counter()
    await manager.stop(record.id)
    stop_seconds = time.perf_counter() - begin
    for task in background:
        task.cancel()
    exactly_once = stored_metrics(home / "nasctl.db", record.id) == cluster.written
    server.should_exit = True
    await server_task
    await manager.shutdown()
    store.close()

    elapsed = last.at - first.at
    events = last.stored - first.stored
    written = last.written - first.written
    simulator = last.ticker_cpu - first.ticker_cpu
    daemon_cpu = (last.cpu - first.cpu) - simulator
    return Result(
        trials=trials,
        speed=speed,
        reports_per_second_offered=trials * speed / every,
        running=running,
        launch_seconds=round(launch_seconds, 2),
        window_seconds=round(elapsed, 2),
        events_per_second=round(events / elapsed, 1),
        transactions_per_second=round((last.transactions - first.transactions) / elapsed, 1),
        kept_up=round(events / written, 3) if written else 1.0,
        backlog=last.written - last.stored,
        daemon_cores=round(daemon_cpu / elapsed, 3),
        cpu_us_per_event=round(daemon_cpu / events * 1e6, 1) if events else float("nan"),
        loop_thread_cores=round((last.loop_cpu - first.loop_cpu - simulator) / elapsed, 3),
        writer_thread_cores=round((last.writer_cpu - first.writer_cpu) / elapsed, 3),
        writer_busy=round((last.writer_busy - first.writer_busy) / elapsed, 3),
        simulator_cores=round(simulator / elapsed, 3),
        rss_peak_mb=round(monitor.rss_peak / 2**20, 1),
        rss_window_mb=round(rss_window / 2**20, 1),
        loop_lag_p95_ms=round(percentile_ms(monitor.lags, 95), 1),
        page_p95_ms=round(percentile_ms(rest["page"], 95), 1),
        metrics_p95_ms=round(percentile_ms(rest["metrics"], 95), 1),
        rest_requests=len(rest["page"]) + len(rest["metrics"]),
        rest_failures=len(rest["failures"]),
        stop_seconds=round(stop_seconds, 2),
        exactly_once=exactly_once,
    )


def report(result: Result) -> str:
    r = result
    return "\n".join(
        [
            f"{r.trials} concurrent trials at clock x{r.speed:g}: {r.reports_per_second_offered:,.0f} reports/s "
            f"offered; {r.running} launched in {r.launch_seconds} s; window {r.window_seconds} s",
            f"  loop events/s {r.events_per_second:,.0f} (kept up {r.kept_up:.0%}, backlog {r.backlog:,}); "
            f"store transactions/s {r.transactions_per_second:,.0f}, writer busy {r.writer_busy:.0%}",
            f"  daemon CPU {r.daemon_cores:.2f} cores = {r.cpu_us_per_event} us/event "
            f"(loop thread {r.loop_thread_cores:.2f}, writer {r.writer_thread_cores:.2f}; "
            f"simulated cluster {r.simulator_cores:.2f} not counted); RSS {r.rss_window_mb} MB "
            f"(peak {r.rss_peak_mb} MB through the stop); "
            f"loop lag p95 {r.loop_lag_p95_ms} ms",
            f"  REST p95: trial page {r.page_p95_ms} ms, metrics since an id {r.metrics_p95_ms} ms "
            f"({r.rest_requests} requests, {r.rest_failures} failed)",
            f"  stop took {r.stop_seconds} s; every report stored exactly once: {r.exactly_once}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=200, help="concurrent simulated trials")
    parser.add_argument("--speed", type=float, default=1.0, help="clock seconds per real second")
    parser.add_argument("--window", type=float, default=10.0, help="real seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="real seconds after the last launch")
    parser.add_argument("--rest-interval", type=float, default=0.1, help="seconds between a route's requests")
    parser.add_argument("--every", type=float, default=1.0, help="clock seconds between a trial's reports")
    parser.add_argument("--launch-timeout", type=float, default=600.0, help="measure after this many s")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nasctl-cluster-scale-") as home:
        result = asyncio.run(
            run(
                args.trials,
                args.speed,
                args.window,
                args.warmup,
                args.rest_interval,
                Path(home),
                args.launch_timeout,
                args.every,
            )
        )
    print(report(result))
    print(f"  machine: {psutil.cpu_count()} CPUs, load average {statistics.fmean(psutil.getloadavg()):.2f}")
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2))
    misses = result.misses()
    print("aims met" if not misses else "MISSED: " + "; ".join(misses))
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
