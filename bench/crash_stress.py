"""Crash stress: SIGKILL the daemon at random and at aimed moments, then prove each trial ran once.

``python bench/crash_stress.py [--rounds 10] [--trials 8] [--concurrency 4] [--reports 3]
[--interval 0.05] [--seed 0] [--keep]``

Each round runs one small experiment (counting trials, ledger tuner: see ``bench/exactly_once.py``)
in a fresh ``NASCTL_HOME`` through the CLI as a user would, kills its daemon one to three times,
restarts it each time with ``nasctl resume``, waits for the end, and checks the invariants:
experiment DONE, every trial SUCCEEDED and run once, every metric stored once, every result
heard by the tuner once, and no process left after ``nasctl manager stop``.

Kill moments, because a crash only matters where the daemon is between two steps:

- ``random``: a random delay after the daemon answers;
- ``spawn``: just after the daemon's n-th trial process appears (children polled every ~1 ms),
  between "process started" and "trial recorded RUNNING with its pid" (issue 20);
- ``metric``: just after a trial appends a line to its ``metrics.jsonl``, while the daemon
  stores it and moves the offset;
- ``recovery``: 0-300 ms after a restarted daemon answers, while ``resume`` re-adopts trials,
  replays the tuner's backlog and launches new ones.

Prints one line per round and a summary; exits 1 when any round found a problem.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], the repository is not
    sys.path.insert(0, str(REPO))

from bench.exactly_once import LEDGER_FILE, check_exactly_once, experiment_config, trial_processes  # noqa: E402
from nasctl.client import Client, ClientError, DaemonInfo  # noqa: E402

KINDS_FIRST = ("random", "spawn", "metric")
KINDS_LATER = (*KINDS_FIRST, "recovery")
#: How long an aimed kill waits for its moment before it kills anyway (the experiment may be over).
AIM_TIMEOUT = 3.0
POLL = 0.001
CLI_TIMEOUT = 60.0
END_TIMEOUT = 60.0
LEFTOVER_GRACE = 2.0
FINISHED = ("DONE", "ERROR", "STOPPED")


@dataclass
class RoundResult:
    kills: list[str] = field(default_factory=list)
    trials: int = 0
    problems: list[str] = field(default_factory=list)


def cli_env(home: Path) -> dict[str, str]:
    """The CLI's environment: this home, this tree first on the path (daemons and trials inherit it)."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.pop("NASCTL_DEBUG", None)
    env["NASCTL_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def start_cli(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nasctl.cli", *args],
        env=cli_env(home),
        cwd=home.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_cli(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def run_cli(home: Path, *args: str) -> tuple[int, str, str]:
    return finish_cli(start_cli(home, *args))


# -- finding the moment -------------------------------------------------------------------------


def children(pid: int) -> set[int]:
    """Direct children of ``pid`` from /proc (much cheaper than psutil's scan of every process)."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found.update(int(x) for x in f.read().split())
        except (OSError, ValueError):
            continue
    return found


def daemon_of(cli: subprocess.Popen[str], deadline: float) -> int | None:
    """The daemon the CLI process starts (its child), as soon as it is forked; None if it starts none."""
    while time.monotonic() < deadline:
        kids = children(cli.pid)
        if kids:
            return min(kids)
        if cli.poll() is not None:
            return None
        time.sleep(POLL)
    return None


def answering(home: Path, pid: int, deadline: float) -> bool:
    """Wait until manager.json names ``pid`` (the daemon listens, recovery is done)."""
    while time.monotonic() < deadline:
        with contextlib.suppress(ClientError):
            info = DaemonInfo.read(home)
            if info is not None and info.pid == pid:
                return True
        if not psutil.pid_exists(pid):
            return False
        time.sleep(POLL)
    return False


def wait_spawn(pid: int, nth: int, deadline: float) -> bool:
    """Until the daemon's ``nth`` trial process (counted from now) has been forked."""
    seen: set[int] = set()
    while time.monotonic() < deadline:
        seen |= children(pid)
        if len(seen) >= nth:
            return True
        time.sleep(POLL)
    return False


def wait_metric_line(home: Path, deadline: float) -> bool:
    """Until some trial's metrics.jsonl grows (a trial just reported)."""
    sizes: dict[Path, int] = {}
    next_scan = 0.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_scan:
            for path in home.glob("experiments/*/trials/*/metrics.jsonl"):
                if path not in sizes:
                    sizes[path] = _size(path)
            next_scan = now + 0.02
        for path, size in sizes.items():
            current = _size(path)
            if current > size:
                return True
        time.sleep(POLL)
    return False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(psutil.Error):
        psutil.Process(pid).wait(5)


def aimed_kill(kind: str, home: Path, pid: int, rng: random.Random, concurrency: int) -> str:
    """Kill daemon ``pid`` at a moment of ``kind``; returns the label of what happened."""
    deadline = time.monotonic() + AIM_TIMEOUT
    label = kind
    if kind == "random":
        answering(home, pid, time.monotonic() + CLI_TIMEOUT)
        delay = rng.uniform(0.0, 1.5)
        time.sleep(delay)
        label = f"random({delay:.2f}s)"
    elif kind == "spawn":
        nth = rng.randint(1, concurrency)
        hit = wait_spawn(pid, nth, deadline)
        label = f"spawn#{nth}" + ("" if hit else "(late)")
    elif kind == "metric":
        hit = wait_metric_line(home, deadline)
        label = "metric" + ("" if hit else "(late)")
    elif kind == "recovery":
        answering(home, pid, time.monotonic() + CLI_TIMEOUT)
        delay = rng.uniform(0.0, 0.3)
        time.sleep(delay)
        label = f"recovery({delay * 1000:.0f}ms)"
    kill(pid)
    return label


# -- one round ----------------------------------------------------------------------------------


def experiment_id_from(home: Path, create_out: str) -> str | None:
    """The id ``create --json`` printed, else the one experiment of the home (the daemon died mid-answer)."""
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return str(json.loads(create_out)["id"])
    code, out, _ = run_cli(home, "list", "--all", "--json")
    with contextlib.suppress(ValueError, KeyError, TypeError, IndexError):
        if code == 0:
            return str(json.loads(out)[0]["id"])
    return None


def wait_end(home: Path, experiment_id: str) -> str:
    """The experiment's final status, or what it still was when the time ran out."""
    deadline = time.monotonic() + END_TIMEOUT
    status = "unknown"
    while time.monotonic() < deadline:
        with contextlib.suppress(ClientError), Client.from_home(home) as client:
            status = str(client.get_experiment(experiment_id)["status"])
            if status in FINISHED:
                return status
        time.sleep(0.1)
    return f"{status} after {END_TIMEOUT:.0f} s"


def run_round(folder: Path, rng: random.Random, args: argparse.Namespace) -> RoundResult:
    result = RoundResult()
    home = folder / "home"
    ledger_dir = folder / "ledger"
    config_path = folder / "experiment.yml"
    folder.mkdir(parents=True)
    config = experiment_config(ledger_dir, args.trials, args.concurrency, args.reports, args.interval)
    config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML

    kinds = [rng.choice(KINDS_FIRST)] + [rng.choice(KINDS_LATER) for _ in range(rng.randint(0, 2))]
    cli = start_cli(home, "create", "--config", str(config_path), "--json")
    experiment_id: str | None = None
    for kind in kinds:
        pid = daemon_of(cli, time.monotonic() + CLI_TIMEOUT)
        if pid is None:
            code, out, err = finish_cli(cli)
            result.problems.append(f"the CLI started no daemon (exit {code}): {err.strip()[-300:]}")
            return result
        result.kills.append(aimed_kill(kind, home, pid, rng, args.concurrency))
        code, out, _ = finish_cli(cli)
        if experiment_id is None:
            experiment_id = experiment_id_from(home, out)
            if experiment_id is None:
                # the kill came before the daemon stored the experiment: fine if create said it failed
                if code == 0:
                    result.problems.append("create succeeded, yet no experiment exists after the kill")
                stop_everything(home)
                return result
        cli = start_cli(home, "resume", experiment_id, "--json")
    assert experiment_id is not None
    code, _, err = finish_cli(cli)
    if code != 0:
        result.problems.append(f"the last resume failed (exit {code}): {err.strip()[-300:]}")
    status = wait_end(home, experiment_id)
    if status not in FINISHED:
        result.problems.append(f"experiment not finished: {status}")
    try:
        with Client.from_home(home) as client:
            result.trials = int(
                client.get_experiment(experiment_id).get("trialCounts", {}).get("SUCCEEDED", 0)
            )
            result.problems += check_exactly_once(
                client, experiment_id, ledger_dir / LEDGER_FILE, args.trials, args.reports
            )
    except ClientError as exc:
        result.problems.append(f"cannot reach the daemon to check: {exc}")
    code, _, err = run_cli(home, "manager", "stop", "--timeout", "60")
    if code != 0:
        result.problems.append(f"manager stop failed (exit {code}): {err.strip()[-300:]}")
    deadline = time.monotonic() + LEFTOVER_GRACE
    left = trial_processes(experiment_id)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = trial_processes(experiment_id)
    if left:
        result.problems.append(
            f"{len(left)} process(es) left after manager stop: pids {[p.pid for p in left]}"
        )
    stop_everything(home)
    return result


def stop_everything(under: Path) -> None:
    """SIGKILL every process this script caused under ``under`` (daemons and trials, by their environment)."""
    mine = os.getpid()
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.pid == mine:
                continue
            environ = proc.environ()
            if str(under) in environ.get("NASCTL_HOME", "") or str(under) in environ.get(
                "NASCTL_TRIAL_DIR", ""
            ):
                proc.kill()


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=8, help="maxTrialNumber of each round's experiment")
    parser.add_argument("--concurrency", type=int, default=4, help="trialConcurrency")
    parser.add_argument("--reports", type=int, default=3, help="intermediate results per trial")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between a trial's results")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep", action="store_true", help="keep every round's folder (else only failed ones)"
    )
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends a run like Ctrl-C, so its daemons and trials are killed too."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="nasctl-crash-stress-"))
    kills = trials = 0
    found: list[str] = []
    failed_rounds = 0
    started = time.monotonic()
    try:
        for number in range(1, args.rounds + 1):
            folder = root / f"round{number:03d}"
            result = run_round(folder, rng, args)
            kills += len(result.kills)
            trials += result.trials
            found += [f"round {number}: {problem}" for problem in result.problems]
            failed_rounds += bool(result.problems)
            verdict = "ok" if not result.problems else f"{len(result.problems)} problem(s)"
            print(
                f"round {number:3d}: kills {len(result.kills)} [{', '.join(result.kills)}], "
                f"trials {result.trials}, {verdict}",
                flush=True,
            )
            for problem in result.problems:
                print(f"    {problem}", flush=True)
            if not result.problems and not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
    except KeyboardInterrupt:
        print(
            f"interrupted: killed this run's daemons and trials; folders kept under {root}", file=sys.stderr
        )
        stop_everything(root)
        return 130
    finally:
        stop_everything(root)
    elapsed = time.monotonic() - started
    print(
        f"\n{args.rounds} rounds in {elapsed:.0f} s, {kills} kills, {trials} trials succeeded, "
        f"{len(found)} problem(s) in {failed_rounds} round(s)"
    )
    for problem in found:
        print(f"  {problem}")
    if found or args.keep:
        print(f"folders kept under {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
