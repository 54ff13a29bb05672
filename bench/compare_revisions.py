"""A change against its base, side by side in one run: is the new code any slower?

A refactor must not cost speed, and these machines are too noisy for figures taken at another
time. So this script checks the base revision out into a temporary git worktree and runs each
revision's own ``bench/overhead.py`` and ``bench/scale.py`` (latency part), alternating base and
head ``--rounds`` times, every run importing its own tree (``PYTHONPATH``). The fastest figure of
each revision counts (noise only ever adds time), and the table shows head / base.

Figures: create -> first trial and slot overhead per trial at each concurrency (overhead.py);
the daemon's CPU per trial (overhead.py); p95 of a 50-trial page and of ``nasctl status`` at
``--db-trials`` trials (scale.py, unless ``--skip-scale``).

Usage: ``python bench/compare_revisions.py --base REV [--head REV_OR_WORKTREE] [--rounds 2]
[--trials 100] [--db-trials 100000] [--skip-scale]``. Exit status 1 when head is more than ``--tolerance``
slower than base on a figure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: A row of overhead.py's table for nasctl: concurrency, create->1st, ..., slot/trial.
_OVERHEAD_ROW = re.compile(
    r"^nasctl\s+(?P<c>\d+)\s+(?P<first>[\d.]+)ms\s+[\d.]+s\s+[\d.]+\s+[-\d.]+ms\s+(?P<slot>[-\d.]+)ms"
    r"\s+(?P<cpu>[\d.]+)ms"
)
#: A row of scale.py's latency table: route, p50, p95.
_LATENCY_ROW = re.compile(r"^(?P<route>page, offset \S+|[a-z].*?)\s{2,}(?P<p50>[\d.]+)\s+(?P<p95>[\d.]+)\s")
_COMMAND_ROW = re.compile(r"^(?P<command>nasctl status ID)\s+(?P<big>[\d.]+)\s")


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """``revision`` checked out in a temporary worktree (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="nasctl-rev-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(path), revision], cwd=REPO, check=True
        )
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO, check=False)


def run_bench(tree: Path, script: str, *args: str) -> str:
    """Run ``tree``'s own copy of a bench script against ``tree``'s code; its stdout."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, str(tree / "bench" / script), *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if not any(line.startswith("verdict") for line in done.stdout.splitlines()):
        raise RuntimeError(f"{script} in {tree} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def figures(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    """One round of figures (milliseconds) for the code in ``tree``."""
    out: dict[str, float] = {}
    text = run_bench(
        tree, "overhead.py", "--trials", str(args.trials), "--concurrency", "1,2", "--repeat", "1"
    )
    for line in text.splitlines():
        row = _OVERHEAD_ROW.match(line)
        if row:
            out[f"create -> 1st trial, c={row['c']}"] = float(row["first"])
            out[f"slot overhead / trial, c={row['c']}"] = float(row["slot"])
            out[f"daemon CPU / trial, c={row['c']}"] = float(row["cpu"])
    if args.skip_scale:
        return out
    text = run_bench(
        tree, "scale.py", "--skip", "footprint,run", "--db-trials", str(args.db_trials), "--requests", "50"
    )
    for line in text.splitlines():
        row = _LATENCY_ROW.match(line)
        if row and row["route"].startswith("page"):
            out["trial page p95"] = float(row["p95"])
        command = _COMMAND_ROW.match(line)
        if command:
            out["nasctl status ID"] = float(command["big"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__)
    parser.add_argument("--base", required=True, help="the revision to compare against (e.g. main~3)")
    parser.add_argument("--head", default=None, help="a revision; default: this working tree as it is")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--db-trials", type=int, default=100_000)
    parser.add_argument("--skip-scale", action="store_true", help="overhead.py's figures only")
    parser.add_argument("--tolerance", type=float, default=0.15, help="head may be this much slower")
    args = parser.parse_args()
    best: dict[str, dict[str, float]] = {"base": {}, "head": {}}
    with contextlib.ExitStack() as stack:
        trees = {
            "base": stack.enter_context(worktree(args.base)),
            "head": REPO if args.head is None else stack.enter_context(worktree(args.head)),
        }
        for round_ in range(args.rounds):
            for name in ("base", "head") if round_ % 2 == 0 else ("head", "base"):
                print(f"round {round_ + 1}: {name} ({trees[name]})", flush=True)
                for key, value in figures(trees[name], args).items():
                    best[name][key] = min(value, best[name].get(key, value))
    print()
    print(
        f"{'figure (ms, fastest of ' + str(args.rounds) + ')':<34} {'base':>9} {'head':>9} {'head/base':>9}"
    )
    slower = []
    for key, base in best["base"].items():
        head = best["head"].get(key)
        if head is None:
            continue
        ratio = head / base if base > 0 else float("nan")
        print(f"{key:<34} {base:9.1f} {head:9.1f} {ratio:8.2f}x")
        if base > 0 and ratio > 1 + args.tolerance and head - base > 1.0:
            slower.append(key)
    if slower:
        print(f"verdict: head is slower on {', '.join(slower)}")
        return 1
    print(f"verdict: head is no slower than base (tolerance {args.tolerance:.0%} or 1 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
