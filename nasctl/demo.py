"""``make demo``: a whole architecture search on the digits CNN, in the foreground, in a few minutes.

Runs ``configs/digits-random.yaml`` (20 random architectures, two at a time, CPU) with a daemon
inside this process and a fresh home under ``runs/demo-home``, then shows the best architecture,
exports every trial to JSON and prints the command that retrains the winner.

    python -m nasctl.demo [--home DIR] [--trials N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from nasctl.app import EXIT_FAILURE, CliError
from nasctl.best import ForegroundResult
from nasctl.client import Client
from nasctl.experiment_config import load_experiment_config
from nasctl.foreground import run_foreground

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "digits-random.yaml"
DEFAULT_HOME = REPO / "runs" / "demo-home"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="fresh NASCTL_HOME (emptied first)")
    parser.add_argument("--trials", type=int, help="override maxTrialNumber")
    args = parser.parse_args(argv)
    try:
        return run_demo(args.home.resolve(), args.trials)
    except CliError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code


def run_demo(home: Path, max_trials: int | None = None) -> int:
    # Trials run `python3` through `sh -c`: it must be this interpreter, whatever PATH the user has.
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    _fresh_home(home)
    os.environ["NASCTL_HOME"] = str(home)
    config, base_dir = load_experiment_config(CONFIG)
    if max_trials is not None:
        config = {**config, "maxTrialNumber": max_trials}

    print(f"nasctl demo: {CONFIG.relative_to(REPO)} with NASCTL_HOME={home}", flush=True)
    started = time.monotonic()
    exported: list[Path] = []

    def export(client: Client, result: ForegroundResult) -> None:
        path = Path(result.experiment["experimentDir"]) / "trials.json"
        path.write_text(json.dumps(client.export(result.experiment["id"], "json"), indent=2) + "\n")
        exported.append(path)

    result = run_foreground(home, config, base_dir, after=export)
    took = time.monotonic() - started
    if result.best_trial is None or result.architecture_file is None:
        status = result.experiment["status"]
        print(f"demo: no architecture came out after {took:.0f} s (status {status})", file=sys.stderr)
        return result.exit_code or EXIT_FAILURE
    retrain = REPO / "examples" / "digits" / "retrain.py"
    print()
    print(f"demo finished in {took:.0f} s")
    print(f"every trial:        {exported[0] if exported else '-'}")
    print(f"best architecture:  {result.architecture_file}")
    print(f"retrain it:         {sys.executable} {retrain} --arch {result.architecture_file}")
    print(f"look around:        NASCTL_HOME={home} nasctl list --all")
    return result.exit_code


def _fresh_home(home: Path) -> None:
    """Empty the demo's home, after stopping a daemon left running there by an earlier demo."""
    from nasctl.launcher import stop_daemon

    if home.exists():
        stop_daemon(home, force=True, notify=lambda message: print(message, file=sys.stderr))
        shutil.rmtree(home)
    home.mkdir(parents=True)


if __name__ == "__main__":
    sys.exit(main())
