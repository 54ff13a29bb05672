"""What early stopping saves: the built-in assessors replayed on the digits learning-curve table.

``bench/data/digits_curves.json`` holds, for every architecture of ``examples/digits`` and each
training seed, the validation accuracy after each epoch and each epoch's training seconds
(``bench/make_digits_curves.py``). A search (the Random tuner, or any built-in through
``--tuners``) proposes architectures; each trial reports its curve epoch by epoch on a simulated
clock, and the assessor, built by ``create_assessor`` with its default classArgs (Curvefitting
also gets ``epoch_num``, which it requires: the table's epochs), is asked after every epoch; a
Bad verdict stops the trial (``bench/_es_replay.py``). A search starts trials until it has spent
the table's full cost (every architecture trained once) or the tuner has none left.

Printed per tuner, concurrency and assessor, means over search seeds x training seeds: trials
run and stopped, the training time spent, the time to find an architecture within 0.5 points of
the table's best (simulated wall clock; at concurrency 1 the same as the training time), as
ratios against "none" (no assessor) in the same run, how often it was found at all, and the
best final accuracy found after 10%, 25%, 50% and 100% of the full cost (points against "none").
A PNG of best-found against training time spent is saved (with matplotlib).

Usage: ``python bench/early_stopping.py [--seeds 30] [--concurrency 1,4] [--tuners Random]
[--assessors none,Medianstop,Curvefitting,ASHA] [--table PATH] [--png PATH | --no-png]``: 20 s on
two cores; ``--table bench/data/digits_curves_e20.json`` replays 20-epoch curves (2 minutes).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import int_list, name_list, positive
from _es_replay import REPO, CurveTable, load_curves, named_assessor, replay

DEFAULT_TABLE = REPO / "bench" / "data" / "digits_curves.json"
ASSESSORS = ("none", "Medianstop", "Curvefitting", "ASHA")
#: Within this much of the table's best final accuracy counts as found (0.5 points).
TOLERANCE = 0.005
#: Fractions of the full cost at which the best found is printed.
FRACTIONS = (0.1, 0.25, 0.5, 1.0)
#: Points (fractions of the full cost) at which the plotted curves are sampled.
GRID = tuple(i / 100 for i in range(1, 101))


@dataclass(frozen=True)
class Outcome:
    """What one search yields, as numbers (cheap to send between processes)."""

    trials: int
    stopped: int
    spent: float  # training seconds, summed over trials
    clock: float  # simulated wall clock
    to_target: float | None  # clock time when within TOLERANCE of the best; None: never
    full: float  # the table's full cost for this training seed
    best: tuple[float | None, ...]  # best found within each GRID fraction of the full cost


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    table = load_curves(args.table)
    epochs = len(next(iter(table.curves.values()))[0].accuracy)
    jobs = [
        (str(args.table), tuner, assessor, concurrency, search_seed, train_seed)
        for tuner in args.tuners
        for concurrency in args.concurrency
        for assessor in args.assessors
        for search_seed in range(args.seeds)
        for train_seed in range(table.seeds)
    ]
    print(
        f"digits learning curves: {len(table.curves)} architectures x {table.seeds} training seed(s), "
        f"{epochs} epochs, best final {', '.join(f'{table.best_final(s):.4f}' for s in range(table.seeds))}, "
        f"full cost {', '.join(f'{table.full_seconds(s):.0f}' for s in range(table.seeds))} s; "
        f"{args.seeds} search seeds, concurrency {', '.join(map(str, args.concurrency))}",
        flush=True,
    )
    started = time.perf_counter()
    results: dict[tuple[str, int, str], list[Outcome]] = {}
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with context.Pool(args.workers) as pool:
        for job, outcome in zip(jobs, pool.imap(_run, jobs, chunksize=8), strict=True):
            results.setdefault((job[1], job[3], job[2]), []).append(outcome)
    print_table(results)
    print(f"\n{len(jobs)} searches in {time.perf_counter() - started:.0f} s")
    if args.png is not None and (saved := plot(results, args.png)) is not None:
        print(f"curves: {saved}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="the curve table (JSON)")
    parser.add_argument("--seeds", type=positive, default=30, help="search seeds (default 30)")
    parser.add_argument("--concurrency", type=int_list, default=[1, 4], help="comma-separated (default 1,4)")
    parser.add_argument(
        "--tuners", type=name_list, default=["Random"], help="comma-separated (default Random)"
    )
    parser.add_argument(
        "--assessors", type=name_list, default=list(ASSESSORS), help="comma-separated; none: no assessor"
    )
    parser.add_argument("--workers", type=positive, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--png", type=Path, default=REPO / "runs" / "bench" / "early-stopping.png")
    parser.add_argument("--no-png", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if "none" not in args.assessors:
        args.assessors.insert(0, "none")  # every ratio is against it
    if args.no_png:
        args.png = None
    return args


_TABLES: dict[str, CurveTable] = {}


def _run(job: tuple[str, str, str, int, int, int]) -> Outcome:
    path, tuner, assessor, concurrency, search_seed, train_seed = job
    table = _TABLES.get(path) or _TABLES.setdefault(path, load_curves(path))
    factory = None
    if assessor != "none":
        class_args: dict[str, Any] = {}
        if assessor == "Curvefitting":
            class_args["epoch_num"] = len(next(iter(table.curves.values()))[0].accuracy)
        factory = named_assessor(assessor, class_args)
    search = replay(
        table, train_seed, tuner=tuner, search_seed=search_seed, assessor=factory, concurrency=concurrency
    )
    full = table.full_seconds(train_seed)
    reached = search.reached(table.best_final(train_seed) - TOLERANCE)
    return Outcome(
        trials=len(search.trials),
        stopped=sum(not t.completed for t in search.trials),
        spent=search.spent,
        clock=search.clock,
        to_target=None if reached is None else reached[0],
        full=full,
        best=tuple(search.best_within(f * full) for f in GRID),
    )


def _mean(values: list[float]) -> float:
    return statistics.mean(values) if values else float("nan")


def _best_at(runs: list[Outcome], fraction: float) -> float:
    """Mean best found (accuracy %) within ``fraction`` of the full cost; nothing found counts 0."""
    index = GRID.index(fraction)
    return 100 * _mean([r.best[index] or 0.0 for r in runs])


def summary(runs: list[Outcome]) -> dict[str, float]:
    found = [r.to_target for r in runs if r.to_target is not None]
    return {
        "trials": _mean([r.trials for r in runs]),
        "stopped": _mean([r.stopped for r in runs]),
        "spent": _mean([r.spent for r in runs]),
        "clock": _mean([r.clock for r in runs]),
        "to_target": _mean(found),
        "found": len(found) / len(runs),
        **{f"best@{f}": _best_at(runs, f) for f in FRACTIONS},
    }


def print_table(results: dict[tuple[str, int, str], list[Outcome]]) -> None:
    header = ["tuner", "c", "assessor", "trials", "stopped", "spent", "clock", "to target", "found"]
    header += [f"best@{int(f * 100)}%" for f in FRACTIONS]
    rows = []
    for (tuner, concurrency, assessor), runs in results.items():
        mine, base = summary(runs), summary(results[(tuner, concurrency, "none")])
        row = [tuner, str(concurrency), assessor, f"{mine['trials']:.1f}", f"{mine['stopped']:.1f}"]
        for key in ("spent", "clock", "to_target"):
            row.append(f"{mine[key]:.0f} s" if assessor == "none" else f"x{mine[key] / base[key]:.2f}")
        row.append(f"{100 * mine['found']:.0f}%")
        for f in FRACTIONS:
            key = f"best@{f}"
            row.append(f"{mine[key]:.2f}" if assessor == "none" else f"{mine[key] - base[key]:+.2f}")
        rows.append(row)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print(
        "\nspent: training seconds summed over trials; clock: simulated wall time; to target: clock time "
        f"until a final accuracy within {100 * TOLERANCE:.1f} points of the table's best (mean over the "
        "searches that found one; found: how many did). For 'none' absolute values, else ratios to "
        "'none'; best@x%: best final accuracy (%) after x% of the full cost, else points against 'none'."
    )


def plot(results: dict[tuple[str, int, str], list[Outcome]], png: Path) -> Path | None:
    """Mean best found against training time spent, one panel per (tuner, concurrency)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no PNG: matplotlib is not installed)")
        return None
    panels = sorted({(tuner, c) for tuner, c, _ in results})
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False, sharey=True)
    curves = {
        key: [100 * _mean([r.best[i] or 0.0 for r in runs]) for i in range(len(GRID))]
        for key, runs in results.items()
    }
    low = min(means[GRID.index(0.05)] for means in curves.values()) - 0.5
    high = max(max(means) for means in curves.values()) + 0.2
    for axis, (tuner, concurrency) in zip(axes[0], panels, strict=True):
        for (t, c, assessor), means in curves.items():
            if (t, c) == (tuner, concurrency):
                style = {"color": "black", "linestyle": "--", "zorder": 3} if assessor == "none" else {}
                axis.plot([100 * f for f in GRID], means, label=assessor, **style)
        axis.set_xscale("log")
        axis.set_xlim(5, 100)
        axis.set_ylim(low, high)
        axis.set_xlabel("training time spent, % of training every architecture once")
        axis.set_title(f"digits, {tuner}, concurrency {concurrency}")
        axis.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("best final validation accuracy found, % (mean)")
    axes[0][-1].legend(loc="lower right")
    figure.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=110)
    plt.close(figure)
    return png


if __name__ == "__main__":
    sys.exit(main())
