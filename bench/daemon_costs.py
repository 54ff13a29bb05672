"""What the daemon does per trial, counted rather than timed: a figure a loaded machine cannot blur.

Runs N trivial trials (``bench/_trivial_trial.py``) through ``nasctl create`` on a fresh home, as
``bench/overhead.py`` does, twice: once with ``NASCTL_PROFILE`` (the daemon's loop and writer
threads under cProfile, see :mod:`manager.profiling`) to count, per trial, the store's writer
transactions, the SQL statements they run, the threads the loop starts and the loop's wake-ups;
once plain, for the daemon's CPU per trial (psutil; noisy on a shared machine, best of
``--repeat``).

Usage: ``python bench/daemon_costs.py [--trials 100] [--concurrency 2] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import os
import pstats
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import overhead

#: (label, thread whose profile holds it, pstats function key test)
COUNTS = (
    ("writer transactions", "writer", lambda f: f[0].endswith("store/database.py") and f[2] == "_run_write"),
    ("SQL statements", "writer", lambda f: f[2] == "<method 'execute' of 'sqlite3.Cursor' objects>"),
    ("threads started by the loop", "loop", lambda f: f[0].endswith("threading.py") and f[2] == "start"),
    ("loop iterations", "loop", lambda f: f[0].endswith("base_events.py") and f[2] == "_run_once"),
)


def counted(trials: int, concurrency: int, folder: Path) -> dict[str, float]:
    """Per-trial counts from one profiled run."""
    profiles = folder / "profiles"
    os.environ["NASCTL_PROFILE"] = str(profiles)
    try:
        overhead.run_nasctl(trials, concurrency, folder / "run")
    finally:
        del os.environ["NASCTL_PROFILE"]
    out: dict[str, float] = {}
    for label, thread, match in COUNTS:
        files = sorted(profiles.glob(f"{thread}-*.prof"))
        if not files:
            raise SystemExit(f"no {thread} profile in {profiles}: does this tree have manager/profiling.py?")
        stats = pstats.Stats(str(files[0])).stats  # type: ignore[attr-defined]
        calls = sum(entry[1] for key, entry in stats.items() if match(key))
        out[label] = calls / trials
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nasctl-costs-") as tmp:
        counts = counted(args.trials, args.concurrency, Path(tmp) / "counted")
        cpu = min(
            overhead.run_nasctl(args.trials, args.concurrency, Path(tmp) / f"plain{i}").cpu_ms or 0.0
            for i in range(args.repeat)
        )
    print(f"per trial, {args.trials} trials at concurrency {args.concurrency}:")
    for label, value in counts.items():
        print(f"  {label:<30} {value:7.2f}")
    print(f"  {'daemon CPU (ms, best of ' + str(args.repeat) + ')':<30} {cpu:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
