"""Run every benchmark in this folder (``make bench``); each prints its own ratios and verdict."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: Not benchmarks, or run by hand: a base revision to compare against; the crash stress
#: (``make crash-stress``; ``make test`` runs 10 rounds); pieces the others import; the Ray
#: overhead (it runs a cluster in a network namespace: root or user namespaces); the digits
#: learning-curve table (minutes of training; it rewrites the table that early_stopping.py replays).
BY_HAND = {
    "compare_revisions.py",
    "crash_stress.py",
    "exactly_once.py",
    "make_digits_curves.py",
    "ray_overhead.py",
}


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for script in sorted(here.glob("*.py")):
        if script.name == Path(__file__).name or script.name.startswith("_") or script.name in BY_HAND:
            continue
        command = [sys.executable, str(script)]
        if script.name == "gpu_check.py":  # through its shell entry: skips without CUDA, installs .whl/
            script = script.with_suffix(".sh")
            command = ["bash", str(script)]
        print(f"=== {script.name} ===", flush=True)
        env = {**os.environ, "PYTHON": sys.executable}  # the interpreter gpu_check.sh runs
        if subprocess.run(command, cwd=here.parent, env=env).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
