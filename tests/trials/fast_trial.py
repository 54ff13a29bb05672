"""A trial that needs no torch: the daemon's tests run it by the dozen.

It reads its architecture with ``trials.get_next_parameter()``, reports a few intermediate
results and a final one, all computed from the architecture alone (so a test can predict them),
and exits. Options (argv) make it misbehave on purpose::

    --sleep S          sleep S seconds before the final result (in small steps)
    --exit N           exit with status N after reporting
    --no-final         report no final result
    --nan              the final result is NaN
    --dict             report {"default": x, "loss": 1 - x} instead of x
    --grandchild FILE  start a child and a grandchild in its own session (both sleep for a
                       minute), write their pids to FILE, then sleep
    --dump-env         print the NASCTL_* variables and CUDA_VISIBLE_DEVICES as one JSON line
    --garbage          write an invalid line into metrics.jsonl before the results

Under ``NASCTL_GEN_SEARCH_SPACE`` (ss_gen's dry run) it writes :data:`SPACE` there and exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `trials`

import trials
from trials import env

SPACE = {
    "conv": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "maxpool"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["in0", "in1"], "n_chosen": 1}},
}


def metric_of(parameters: dict) -> float:
    """A deterministic number in [0, 1) from the chosen indices (hyper-parameters count by value)."""
    total = 0.0
    for i, key in enumerate(sorted(parameters)):
        value = parameters[key]
        if isinstance(value, dict) and "_idx" in value:
            idx = value["_idx"]
            number = sum(idx) + len(idx) if isinstance(idx, list) else idx
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        else:
            number = len(str(value))
        total += (i + 1) * float(number)
    return (total * 0.137) % 1.0


def spawn_grandchild(pid_file: Path) -> None:
    """A child (same group) that starts a grandchild in a new session; both sleep a minute."""
    code = (
        "import subprocess, sys, time, os;"
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True);"
        f"open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}} {{g.pid}}');"
        "time.sleep(60)"
    )
    subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 10
    while time.time() < deadline and not (pid_file.exists() and pid_file.read_text().strip()):
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--exit", type=int, default=0)
    parser.add_argument("--no-final", action="store_true")
    parser.add_argument("--nan", action="store_true")
    parser.add_argument("--dict", action="store_true")
    parser.add_argument("--grandchild", type=Path, default=None)
    parser.add_argument("--dump-env", action="store_true")
    parser.add_argument("--garbage", action="store_true")
    args = parser.parse_args()

    target = os.environ.get(env.GEN_SEARCH_SPACE)
    if target:
        Path(target).write_text(json.dumps(SPACE, sort_keys=True, indent=2))
        return 0
    if args.dump_env:
        names = [n for n in os.environ if n.startswith("NASCTL_")] + [env.CUDA_VISIBLE_DEVICES]
        print(json.dumps({n: os.environ.get(n) for n in names}), flush=True)
    parameters = trials.get_next_parameter()
    value = metric_of(parameters)
    if args.garbage and os.environ.get(env.TRIAL_DIR):
        with open(Path(os.environ[env.TRIAL_DIR]) / env.METRICS_FILE_NAME, "a") as metrics:
            metrics.write("this is not json\n")
    for step in range(2):
        trials.report_intermediate_result(value * (step + 1) / 3)
    if args.grandchild is not None:
        spawn_grandchild(args.grandchild)
    deadline = time.monotonic() + args.sleep
    while time.monotonic() < deadline:
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    if not args.no_final:
        final = math.nan if args.nan else value
        trials.report_final_result({"default": final, "loss": 1 - final} if args.dict else final)
    print(f"fast_trial: {parameters} -> {value}", flush=True)
    return args.exit


if __name__ == "__main__":
    sys.exit(main())
