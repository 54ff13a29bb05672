"""A trial that misbehaves on purpose, for the reliability tests (no torch: it starts in ms).

Which fault it plays is chosen by ``--modes A,B,C``: the trial with sequence id N plays the Nth
mode (the last one repeats), so one experiment can run every fault side by side. Modes:

    ok              two intermediate results, then the final one (computed from the architecture)
    nofinal         two intermediate results, exit 0 without a final result
    crash           raise ZeroDivisionError (exit code 1, a traceback on stderr)
    oom             allocate 64 MB, then die of SIGKILL the way the out-of-memory killer kills
    flood:MB        write MB megabytes to stdout, then finish like ok
    nan             the final result is NaN
    many:N          N intermediate results as fast as it can, then the final one
    hang            ignore SIGTERM, start a child (same group) and a grandchild in a new session
                    that ignore it too, write their pids to $NASCTL_TRIAL_DIR/tree.pids, sleep
    control         obey files in --control DIR (below)

``control``: after two intermediate results, the trial polls ``DIR/<sequence id>`` and obeys
the word in it, once per change of the file: ``more`` (one more intermediate result), ``final``
(one more intermediate, the final result, exit 0), ``die`` (one more intermediate, exit 3
without a final result). Every intermediate result carries ``{"default": x, "n": k}`` with k
counting from 0, so a test can check each one arrived exactly once.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `trials`

import trials
from trials import env


def metric_of(parameters: dict) -> float:
    total = 0.0
    for i, key in enumerate(sorted(parameters)):
        value = parameters[key]
        idx = value.get("_idx", 0) if isinstance(value, dict) else 0
        number = sum(idx) + len(idx) if isinstance(idx, list) else idx
        total += (i + 1) * float(number)
    return (total * 0.137 + 0.05) % 1.0


class Reporter:
    def __init__(self, value: float) -> None:
        self.value = value
        self.count = 0

    def intermediate(self) -> None:
        trials.report_intermediate_result({"default": self.value * (self.count + 1) / 10, "n": self.count})
        self.count += 1

    def final(self, value: float | None = None) -> None:
        trials.report_final_result(self.value if value is None else value)


def hang(trial_dir: Path) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ignore = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    child_code = (
        ignore + "import subprocess, sys, os; "
        f"g = subprocess.Popen([sys.executable, '-c', {ignore + 'time.sleep(120)'!r}], start_new_session=True); "
        f"open({str(trial_dir / 'tree.pids.tmp')!r}, 'w').write(f'{{os.getpid()}} {{g.pid}}'); "
        f"os.replace({str(trial_dir / 'tree.pids.tmp')!r}, {str(trial_dir / 'tree.pids')!r}); "
        "time.sleep(120)"
    )
    subprocess.Popen([sys.executable, "-c", child_code])
    while True:
        time.sleep(1)


def control(reporter: Reporter, folder: Path, sequence: str) -> int:
    order = folder / sequence
    seen = ""
    while True:
        try:
            word = order.read_text().strip()
        except FileNotFoundError:
            word = ""
        if word and word != seen:
            seen = word
            reporter.intermediate()
            if word == "final":
                reporter.final()
                return 0
            if word == "die":
                return 3
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="ok")
    parser.add_argument("--control", type=Path, default=None)
    args = parser.parse_args()
    sequence = os.environ.get(env.SEQUENCE_ID, "0")
    modes = args.modes.split(",")
    mode = modes[min(int(sequence), len(modes) - 1)]
    name, _, argument = mode.partition(":")
    reporter = Reporter(metric_of(trials.get_next_parameter()))
    trial_dir = Path(os.environ.get(env.TRIAL_DIR, "."))

    if name == "many":
        for _ in range(int(argument)):
            reporter.intermediate()
        reporter.final()
        return 0
    if name == "crash":
        reporter.intermediate()
        return int(1 / 0)
    reporter.intermediate()
    reporter.intermediate()
    if name == "ok":
        reporter.final()
    elif name == "nofinal":
        pass
    elif name == "oom":
        hog = bytearray(64 * 1024 * 1024)
        hog[::4096] = b"x" * len(hog[::4096])
        os.kill(os.getpid(), signal.SIGKILL)
    elif name == "flood":
        line = b"x" * 1023 + b"\n"
        block = line * 1024
        out = sys.stdout.buffer
        for _ in range(int(argument)):
            out.write(block)
        out.flush()
        reporter.final()
    elif name == "nan":
        reporter.final(math.nan)
    elif name == "hang":
        hang(trial_dir)
    elif name == "control":
        assert args.control is not None, "control needs --control DIR"
        return control(reporter, args.control, sequence)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
