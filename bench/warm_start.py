"""Warm trial starts (``trialPreload``) against cold ones, measured in the same run.

1. Start to first line: the local training service starts a trial whose first statement stamps
   the clock, then imports torch and stamps it again (the first line of a real trial's own code), ``--repeat`` times cold and warm (torch preloaded); the medians
   from just before ``submit`` to the first line of user code and to torch being ready, and their
   ratios. The warm server's own start (its ``import torch``) is paid once, by a first trial that
   is left out and shown alone. Aim (issue 22): first line under 100 ms warm.
2. Same results: ``examples/digits`` through the daemon, ``--digits-trials`` trials of the Random
   tuner (seed 0) at concurrency 1, cold and warm: every trial's architecture, intermediate and
   final results must be identical.
3. ``examples/nb201`` (configs/nb201-evolution.yaml) through the daemon, ``--nb201-trials``
   trials (200 is the config's full run; fewer by default, so that ``make bench`` stays short):
   minutes cold against minutes warm.

Usage: ``python bench/warm_start.py [--repeat 10] [--digits-trials 2] [--nb201-trials 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402
from _cli import positive  # noqa: E402

from manager.training.base import TrialSpec  # noqa: E402
from manager.training.local import LocalTrainingService  # noqa: E402
from nasctl.client import Client  # noqa: E402

FIRST_LINE_TRIAL = """import time
first = time.time()
import torch
ready = time.time()
print(first, ready)
"""
PACKED = {"parameter_id": 0, "parameter_source": "algorithm", "parameters": {}, "parameter_index": 0}


async def first_lines(
    root: Path, repeat: int, preload: tuple[str, ...]
) -> tuple[list[float], list[float], float]:
    """(seconds to the first line, seconds to torch ready) per trial, and the first (server-starting) one's."""
    code = root / "code"
    code.mkdir(parents=True)
    (code / "first.py").write_text(FIRST_LINE_TRIAL)
    service = LocalTrainingService(preload=preload)
    firsts, readies = [], []
    try:
        for i in range(repeat + 1):
            spec = TrialSpec(
                f"t{i}", "bench", i, f"{sys.executable} first.py", code, root / "trials" / f"t{i}"
            )
            submitted = time.time()
            process = await service.submit(spec, PACKED)
            exit_ = await service.wait(spec.trial_id)
            assert exit_.succeeded and process.launch == ("warm" if preload else "cold"), (exit_, process)
            first, ready = map(float, (spec.trial_dir / "stdout").read_text().split())
            firsts.append(first - submitted)
            readies.append(ready - submitted)
    finally:
        await service.close()
    return firsts[1:], readies[1:], readies[0]


def through_daemon(home: Path, config: dict[str, Any], base_dir: Path) -> tuple[float, dict[int, Any]]:
    """Run one experiment to its end; (seconds from create to DONE, sequence id -> what it found)."""
    client = Client.from_home(home)
    try:
        started = time.monotonic()
        experiment = client.create_experiment(config, base_dir)
        while client.get_experiment(experiment["id"])["status"] not in ("DONE", "ERROR", "STOPPED"):
            time.sleep(0.2)
        took = time.monotonic() - started
        found = {}
        for item in client.iter_trials(experiment["id"]):
            trial = client.trial(experiment["id"], item["id"])
            intermediate = [m["value"] for m in trial.get("intermediate", [])]
            found[trial["sequenceId"]] = (
                trial["status"],
                trial["launch"],
                trial["parameters"],
                intermediate,
                trial["finalMetric"],
            )
        return took, found
    finally:
        client.close()


def experiment_config(name: str, trials: int, preload: list[str], concurrency: int = 1) -> dict[str, Any]:
    config = yaml.safe_load((REPO / "configs" / name).read_text())
    command = config["trialCommand"].split(maxsplit=1)
    config.update(
        trialCommand=f"{sys.executable} {command[1]}",  # the daemon's PATH may not lead to this venv
        maxTrialNumber=trials,
        trialConcurrency=concurrency,
        trialPreload=preload,
    )
    return config


def start_daemon(home: Path) -> None:
    env = {**os.environ, "NASCTL_HOME": str(home), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "nasctl.cli", "manager", "start"], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"nasctl manager start failed: {done.stderr.strip()}")


def stop_daemon(home: Path) -> None:
    env = {**os.environ, "NASCTL_HOME": str(home)}
    subprocess.run([sys.executable, "-m", "nasctl.cli", "manager", "stop"], env=env, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=positive, default=10)
    parser.add_argument("--digits-trials", type=positive, default=2)
    parser.add_argument("--nb201-trials", type=positive, default=20)
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (timings are noisy when loaded)"
    )
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="nasctl-warm-") as tmp:
        folder = Path(tmp)
        cold_first, cold_ready, _ = asyncio.run(first_lines(folder / "cold", args.repeat, ()))
        warm_first, warm_ready, server = asyncio.run(first_lines(folder / "warm", args.repeat, ("torch",)))
        cf, cr = statistics.median(cold_first), statistics.median(cold_ready)
        wf, wr = statistics.median(warm_first), statistics.median(warm_ready)
        print(f"1. submit -> first line of user code, median of {args.repeat}:")
        print(f"   cold {cf * 1000:7.1f} ms   warm {wf * 1000:7.1f} ms   cold/warm {cf / wf:6.1f} x")
        print(
            f"   submit -> torch imported: cold {cr * 1000:7.1f} ms   warm {wr * 1000:7.1f} ms   cold/warm {cr / wr:6.1f} x"
        )
        print(
            f"   (the first warm trial, which started the server and its import torch: {server * 1000:.0f} ms)"
        )
        verdicts.append(("first line after import torch, warm, < 100 ms", wr < 0.1))

        home = folder / "home"
        start_daemon(home)
        try:
            digits = REPO / "configs"
            results = {}
            for mode, preload in (("cold", []), ("warm", ["torch"])):
                config = experiment_config("digits-random.yaml", args.digits_trials, preload)
                config["trialCommand"] += " --epochs 2"
                results[mode] = through_daemon(home, config, digits)[1]
            same = {s: r[:1] + r[2:] for s, r in results["cold"].items()} == {
                s: r[:1] + r[2:] for s, r in results["warm"].items()
            }
            launches = {mode: sorted({r[1] for r in found.values()}) for mode, found in results.items()}
            print(
                f"2. digits, {args.digits_trials} trials cold and warm: results identical: {same} (launches {launches})"
            )
            verdicts.append(("digits identical", same and launches == {"cold": ["cold"], "warm": ["warm"]}))

            minutes = {}
            for mode, preload in (("cold", []), ("warm", ["torch"])):
                config = experiment_config("nb201-evolution.yaml", args.nb201_trials, preload)
                took, found = through_daemon(home, config, REPO / "configs")
                ok = (
                    all(r[0] == "SUCCEEDED" and r[1] == mode for r in found.values())
                    and len(found) == args.nb201_trials
                )
                minutes[mode] = took / 60
                print(
                    f"3. nb201, {args.nb201_trials} trials, {mode}: {took / 60:.2f} min ({took / args.nb201_trials:.2f} s a trial), all {mode} and succeeded: {ok}"
                )
            full = {mode: m * 200 / args.nb201_trials for mode, m in minutes.items()}
            print(
                f"   cold/warm {minutes['cold'] / minutes['warm']:.1f} x; "
                f"the config's 200 trials at this rate: {full['cold']:.1f} min cold, {full['warm']:.1f} min warm"
            )
        finally:
            stop_daemon(home)
    for what, ok in verdicts:
        print(f"verdict: {what}: {'meets' if ok else 'misses'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
