"""What the orchestrator costs per trial, against a bare launch loop and, optionally, against NNI.

N trivial trials (``bench/_trivial_trial.py``: read the parameters, report one result, exit; no
torch) at each concurrency, three ways, in the same run:

- **bare**: the same script launched N times by a minimal thread pool, each with its own folder
  and parameter file: the physical limit, the cost of starting the trial's Python;
- **nasctl**: ``nasctl create --config`` as a subprocess on a fresh home (so the CLI also starts
  the daemon, as NNI's ``nnictl create`` starts its manager), the trials run by the daemon;
- **NNI**, when ``--nni-python PATH`` names a Python with ``nni`` installed: the benchmark writes
  NNI's config and an NNI flavour of the trial, runs ``nnictl create`` and reads NNI's REST API.
  NNI's trial imports ``nni``, which is slower to start than ours, so NNI is compared against a
  bare loop of its own trial.

Printed per system: time from ``create`` to the first trial's start; wall time (first trial start
to last trial end, from the orchestrator's own timestamps); trials per second; overhead per trial
over its bare loop, both as wall time ((wall - bare) / N) and as slot time (that times the
concurrency: how much longer each trial holds its slot than it needs); the daemon's RSS after the
run; and how long ``list``, ``trial ls`` and ``stop`` take from the command line.

Usage: ``python bench/overhead.py [--trials 100] [--concurrency 1,2] [--repeat 3]
[--nni-python PATH [--nni-trials 50]]``.
Verdict (issue 6): slot overhead <= 20 ms per trial at concurrency 2. Exit status 1 when missed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nasctl.client import Client, DaemonInfo  # noqa: E402

TRIAL = Path(__file__).resolve().parent / "_trivial_trial.py"
KEYS = ("cell0", "cell1", "cell2", "cell3")
#: 5**4 = 625 architectures: more than any run here asks for, so no tuner runs dry.
SPACE = {key: {"_type": "layer_choice", "_value": [f"op{i}" for i in range(5)]} for key in KEYS}
NNI_SPACE = {key: {"_type": "choice", "_value": list(range(5))} for key in KEYS}
NNI_TRIAL = """\
import nni

parameters = nni.get_next_parameter() or {}
nni.report_final_result(sum(parameters.values()) / 100)
"""
TARGET_SLOT_MS = 20.0
POLL_S = 0.1
RUN_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Result:
    """One system's run of N trials at one concurrency; times in seconds."""

    system: str
    trials: int
    concurrency: int
    wall: float
    first_trial: float | None = None
    rss_mib: float | None = None
    #: CPU the orchestrator itself used per trial (its daemon or manager processes, not the trials).
    cpu_ms: float | None = None
    commands: dict[str, float] = field(default_factory=dict)

    def overhead_ms(self, bare: Result) -> float:
        """Wall time each trial adds over the bare loop."""
        return (self.wall - bare.wall) / self.trials * 1000

    def slot_ms(self, bare: Result) -> float:
        """How much longer each trial holds its slot than under the bare loop."""
        return self.overhead_ms(bare) * self.concurrency


def bare_loop(count: int, concurrency: int, workdir: Path, launch: Callable[[int, Path], None]) -> float:
    """Seconds to run ``launch(i, folder)`` for i < count, ``concurrency`` at a time."""
    workdir.mkdir(parents=True)

    def one(i: int) -> None:
        folder = workdir / f"trial{i}"
        folder.mkdir()
        launch(i, folder)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - started


def launch_ours(i: int, folder: Path) -> None:
    """Our trial once, the way the daemon runs it: parameter file, env, stdout/stderr files."""
    parameters = {key: {"_value": "op0", "_idx": 0} for key in KEYS}
    (folder / "parameter.json").write_text(json.dumps({"parameter_id": i, "parameters": parameters}))
    env = {
        **os.environ,
        "NASCTL_TRIAL_ID": f"bare{i}",
        "NASCTL_TRIAL_DIR": str(folder),
        "NASCTL_PARAMETER_FILE": str(folder / "parameter.json"),
    }
    with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
        subprocess.run([sys.executable, str(TRIAL)], env=env, stdout=out, stderr=err, check=True)


def timed(command: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(list(command), env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command[:3])} ... failed ({done.returncode}): {done.stderr.strip()[-500:]}"
        )
    return seconds, done.stdout


def rss_mib(processes: Sequence[psutil.Process]) -> float:
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total / 2**20


def wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def run_nasctl(count: int, concurrency: int, folder: Path) -> Result:
    """``nasctl create`` on a fresh home (the CLI starts the daemon), then the CLI's read commands."""
    folder.mkdir(parents=True)
    home = folder / "home"
    env = {**os.environ, "NASCTL_HOME": str(home)}
    nasctl = [sys.executable, "-m", "nasctl.cli"]
    config = folder / "exp.yaml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "trialCommand": f"{sys.executable} {TRIAL.name}",
                "trialCodeDirectory": str(TRIAL.parent),
                "searchSpace": SPACE,
                "trialConcurrency": concurrency,
                "maxTrialNumber": count,
                "tuner": {"name": "Random", "classArgs": {"seed": 0}},
            }
        )
    )
    launched = time.time()
    _, out = timed([*nasctl, "create", "--config", str(config), "--json"], env)
    experiment_id = json.loads(out)["id"]
    info = DaemonInfo.read(home)
    assert info is not None
    daemon = psutil.Process(info.pid)
    cpu_before = cpu_seconds([daemon])
    client = Client.from_info(info)
    try:
        wait_for(
            "the nasctl experiment",
            lambda: client.get_experiment(experiment_id)["status"] in ("DONE", "ERROR", "STOPPED"),
        )
        experiment = client.get_experiment(experiment_id)
        items = list(client.iter_trials(experiment_id))
        daemon_rss = rss_mib([daemon])
        daemon_cpu = cpu_seconds([daemon]) - cpu_before
    finally:
        client.close()
    succeeded = [t for t in items if t["status"] == "SUCCEEDED"]
    if experiment["status"] != "DONE" or len(succeeded) != count:
        raise SystemExit(
            f"nasctl: the experiment ended {experiment['status']} with {experiment['trialCounts']}"
        )
    commands = {
        "list": timed([*nasctl, "list"], env)[0],
        "trial ls": timed([*nasctl, "trial", "ls", experiment_id], env)[0],
        # NNI's `stop` ends its manager, the experiment being done: the same as stopping our daemon
        "stop": timed([*nasctl, "manager", "stop"], env)[0],
    }
    starts = [t["startTime"] / 1000 for t in items]
    ends = [t["endTime"] / 1000 for t in items]
    return Result(
        system="nasctl",
        trials=count,
        concurrency=concurrency,
        wall=max(ends) - min(starts),
        first_trial=min(starts) - launched,
        rss_mib=daemon_rss,
        cpu_ms=daemon_cpu / count * 1000,
        commands=commands,
    )


def cpu_seconds(processes: Sequence[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def best_of(runs: Sequence[Result]) -> Result:
    """The least disturbed of repeated runs: on a noisy machine, noise only ever adds time."""
    firsts = [r.first_trial for r in runs if r.first_trial is not None]
    cpus = [r.cpu_ms for r in runs if r.cpu_ms is not None]
    names = runs[0].commands
    return dataclasses.replace(
        min(runs, key=lambda r: r.wall),
        first_trial=min(firsts) if firsts else None,
        cpu_ms=min(cpus) if cpus else None,
        commands={name: statistics.median(r.commands[name] for r in runs) for name in names},
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nni_get(port: int, route: str) -> object:
    """NNI's REST API over plain HTTP (no proxy), without importing anything of NNI here."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", f"/api/v1/nni/{route}")
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def run_nni(nni_python: Path, count: int, concurrency: int, folder: Path) -> tuple[Result, Result]:
    """NNI's ``nnictl create`` with its local training service, and a bare loop of NNI's trial."""
    folder.mkdir(parents=True)
    trial = folder / "trial.py"
    trial.write_text(NNI_TRIAL)
    bare_nni = Result(
        "bare (NNI's trial)",
        count,
        concurrency,
        bare_loop(
            count,
            concurrency,
            folder / "bare",
            lambda i, f: subprocess.run(
                [str(nni_python), str(trial)], cwd=f, capture_output=True, check=True
            ),
        ),
    )
    port = free_port()
    config = folder / "config.yml"
    config.write_text(
        json.dumps(
            {
                "experimentName": "overhead",
                "searchSpace": NNI_SPACE,
                "trialCommand": f"{nni_python} trial.py",
                "trialCodeDirectory": str(folder),
                "trialConcurrency": concurrency,
                "maxTrialNumber": count,
                "experimentWorkingDirectory": str(folder / "nni-experiments"),
                "tuner": {"name": "Random", "classArgs": {"seed": 0}},
                "trainingService": {"platform": "local"},
            }
        )
    )
    nnictl = [str(nni_python), "-m", "nni.tools.nnictl.nnictl"]
    env = {**os.environ, "HOME": str(folder), "NO_PROXY": "127.0.0.1,localhost"}
    launched = time.time()
    timed([*nnictl, "create", "--config", str(config), "--port", str(port)], env)
    experiment_id = str(nni_get(port, "experiment")["id"])  # type: ignore[index]
    cpu_before = {p.pid: cpu_seconds([p]) for p in nni_processes(experiment_id)}

    def finished() -> bool:
        jobs = nni_get(port, "trial-jobs")
        assert isinstance(jobs, list)
        return sum(job["status"] == "SUCCEEDED" for job in jobs) >= count or any(
            job["status"] in ("FAILED", "SYS_CANCELED") for job in jobs
        )

    wait_for("the NNI experiment", finished)
    jobs = nni_get(port, "trial-jobs")
    assert isinstance(jobs, list)
    processes = nni_processes(experiment_id)  # the trials are over: the manager and its dispatcher
    nni_rss = rss_mib(processes)
    nni_cpu = sum(cpu_seconds([p]) - cpu_before.get(p.pid, 0.0) for p in processes)
    commands = {
        "list": timed([*nnictl, "experiment", "list"], env)[0],
        "trial ls": timed([*nnictl, "trial", "ls", experiment_id], env)[0],
        "stop": timed([*nnictl, "stop", experiment_id], env)[0],
    }
    if sum(job["status"] == "SUCCEEDED" for job in jobs) < count:
        raise SystemExit(f"NNI: not every trial succeeded: {[job['status'] for job in jobs]}")
    starts = [job["startTime"] / 1000 for job in jobs]
    ends = [job["endTime"] / 1000 for job in jobs]
    nni = Result(
        system="NNI",
        trials=count,
        concurrency=concurrency,
        wall=max(ends) - min(starts),
        first_trial=min(starts) - launched,
        rss_mib=nni_rss,
        cpu_ms=nni_cpu / count * 1000,
        commands=commands,
    )
    return bare_nni, nni


def nni_processes(experiment_id: str) -> list[psutil.Process]:
    """NNI's manager (its command line names the experiment) and every process below it."""
    found: dict[int, psutil.Process] = {}
    for process in psutil.process_iter(["cmdline"]):
        if experiment_id in " ".join(process.info["cmdline"] or []):
            found[process.pid] = process
            with contextlib.suppress(psutil.Error):
                found.update({child.pid: child for child in process.children(recursive=True)})
    return list(found.values())


def report(results: Sequence[tuple[Result, Result]]) -> None:
    """One table: each system against its own bare loop."""
    header = (
        f"{'system':<20} {'c':>2} {'create->1st':>11} {'wall':>8} {'trials/s':>8} "
        f"{'overhead/trial':>14} {'slot/trial':>10} {'CPU/trial':>9} {'RSS':>7}  commands"
    )
    print(header)
    print("-" * len(header))
    for bare, result in results:
        for row in (bare, result):
            first = f"{row.first_trial * 1000:9.0f}ms" if row.first_trial is not None else f"{'':>11}"
            extra = (
                f"{row.overhead_ms(bare):12.1f}ms {row.slot_ms(bare):8.1f}ms"
                if row is not bare
                else f"{'':>25}"
            )
            cpu = f"{row.cpu_ms:7.1f}ms" if row.cpu_ms is not None else f"{'':>9}"
            rss = f"{row.rss_mib:5.0f}MB" if row.rss_mib is not None else f"{'':>7}"
            commands = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in row.commands.items())
            print(
                f"{row.system:<20} {row.concurrency:>2} {first} {row.wall:7.2f}s "
                f"{row.trials / row.wall:8.2f} {extra} {cpu} {rss}  {commands}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--concurrency", default="1,2", help="comma-separated, e.g. 1,2")
    parser.add_argument(
        "--repeat", type=int, default=3, help="bare and nasctl runs, alternated; the fastest of each counts"
    )
    parser.add_argument(
        "--nni-python", type=Path, default=None, help="a Python with nni installed (run once)"
    )
    parser.add_argument(
        "--nni-trials", type=int, default=50, help="trials for NNI (each of its trials starts in ~1-2 s)"
    )
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
    if args.nni_python is not None and not args.nni_python.exists():
        parser.error(f"--nni-python: {args.nni_python} does not exist")
    results: list[tuple[Result, Result]] = []
    with tempfile.TemporaryDirectory(prefix="nasctl-bench-") as tmp:
        for c in levels:
            bares, ours = [], []
            for attempt in range(args.repeat):
                base = Path(tmp) / f"c{c}-{attempt}"
                wall = bare_loop(args.trials, c, base / "bare", launch_ours)
                bares.append(Result("bare (our trial)", args.trials, c, wall))
                ours.append(run_nasctl(args.trials, c, base / "nasctl"))
                print(
                    f"  c={c} run {attempt + 1}: bare {wall:.2f} s, nasctl {ours[-1].wall:.2f} s", flush=True
                )
            results.append((best_of(bares), best_of(ours)))
            if args.nni_python is not None:
                results.append(run_nni(args.nni_python, args.nni_trials, c, Path(tmp) / f"c{c}-nni"))
    report(results)
    at_two = [r.slot_ms(b) for b, r in results if r.system == "nasctl" and r.concurrency == 2]
    if not at_two:
        print("verdict: no run at concurrency 2; nothing to judge")
        return 0
    slot = at_two[0]
    ok = slot <= TARGET_SLOT_MS
    print(
        f"verdict: {'meets' if ok else 'misses'} the target: nasctl's slot overhead at concurrency 2 is "
        f"{slot:.1f} ms per trial (target <= {TARGET_SLOT_MS:.0f} ms; fastest of {args.repeat} runs each)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
