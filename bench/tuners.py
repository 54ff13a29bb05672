"""Which tuner finds good architectures sooner: Random, RegularizedEvolution, PPO, Predictor on NAS-Bench-201.

Each search replays the NAS-Bench-201 tables through the Tuner interface the manager uses
(``bench/_nb201.py``): a trial observes the accuracy of one seed of its cell (noisy, as real
training is) and is judged by the mean over seeds; at concurrency > 1 a simulated clock (the
table's training times) brings results back out of order. Printed per tuner and concurrency:
the mean ± std over search seeds of the judged accuracy of the best-observed cell after N
trials, beside the optimum, the gain over Random measured in the same run and the lowest gain
over RegularizedEvolution at any N; then the time spent inside the tuner per trial, and the
median, 95th percentile and maximum of single ``generate_parameters`` calls. A PNG of the
curves is saved. ``--dataset digits`` replays the digits example's 96 architectures instead
(``bench/_digits_table.py``; N stops at 96).

The tuners run with their default class arguments (plus ``seed`` and ``optimize_mode``): the
defaults are what is measured, and they know nothing of this data set.

Usage: ``python bench/tuners.py [--dataset cifar10|cifar100|imagenet|digits] [--trials 300] [--seeds 30]
[--concurrency 1,8] [--tuners Random,RegularizedEvolution,PPO,Predictor] [--variant LABEL TUNER JSON]
[--workers N] [--png PATH]``; a variant runs a tuner with other class arguments beside the defaults.
With no arguments: CIFAR-10, 30 seeds, N up to 300, concurrency 1 and 8, one worker per core
(3 minutes on a busy two-core machine; ``--trials 1000`` for the README's full table, about
three times longer). On CIFAR-10 the exit status is 1 when a tuner falls below an aim it has met (issues 4 and 18) at
the budgets measured; issue 18's aims not met yet are printed as targets, with the distance left.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import int_list, name_list, positive
from _nb201 import REPO, Replay, load_replay_table, replay

BUDGETS = (10, 30, 100, 300, 1000)
DEFAULT_TUNERS = ("Random", "RegularizedEvolution", "PPO", "Predictor", "Optuna")
#: Aims on CIFAR-10 that are met, kept as guards: tuner -> ((N, mean accuracy at least), ...);
#: the exit status is 1 when one is missed (a regression).
AIMS = {
    "RegularizedEvolution": ((100, 91.30),),  # issue 4
    "PPO": ((100, 91.20),),  # issue 4
    "Predictor": ((100, 91.40),),  # what it reaches (issue 18), as a guard
}
#: Aims set but not reached yet (issue 18): printed with the distance left, no failure.
TARGETS = {"Predictor": ((30, 91.25), (100, 91.52))}
#: The tuner a new one must never fall below, at any N from 10 on (issue 18).
REFERENCE = "RegularizedEvolution"
#: ... and the better of the two at N = 300.
AIM_300 = 91.50


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    table = load_replay_table(args.dataset)
    args.trials = min(args.trials, table.size)  # a finite table ends the search (digits: 96)
    budgets = [n for n in BUDGETS if n <= args.trials] or [args.trials]
    if args.trials not in budgets:
        budgets.append(args.trials)
    entries = [(name, name, {}) for name in args.tuners] + [tuple(v) for v in args.variant]
    jobs = [
        (label, name, class_args, concurrency, seed, args.dataset, args.trials)
        for label, name, class_args in entries
        for concurrency in args.concurrency
        for seed in range(args.seeds)
    ]
    print(
        f"{table.label}, optimum {table.optimum:.2f}: "
        f"{args.seeds} search seeds x {args.trials} trials, concurrency {', '.join(map(str, args.concurrency))}, "
        f"{args.workers} worker process(es)",
        flush=True,
    )
    started = time.perf_counter()
    results: dict[tuple[str, int], list[Replay]] = {}
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with context.Pool(args.workers, initializer=_quiet_torch) as pool:
        for job, result in zip(jobs, pool.imap(_run, jobs, chunksize=1), strict=True):
            label, concurrency = job[0], job[3]
            results.setdefault((label, concurrency), []).append(result)
    elapsed = time.perf_counter() - started
    print_table(results, budgets, args, table.optimum)
    print(f"\n{len(jobs)} searches in {elapsed:.0f} s")
    if args.png is not None:
        saved = plot(results, args, table.optimum)
        if saved:
            print(f"curves: {saved}")
    return verdict(results, args)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="cifar10", choices=("cifar10", "cifar100", "imagenet", "digits"))
    parser.add_argument("--trials", type=positive, default=300, help="N: trials per search (default 300)")
    parser.add_argument("--seeds", type=positive, default=30, help="search seeds per tuner (default 30)")
    parser.add_argument("--concurrency", type=int_list, default=[1, 8], help="comma-separated (default 1,8)")
    parser.add_argument(
        "--tuners", type=name_list, default=list(DEFAULT_TUNERS), help="comma-separated names"
    )
    parser.add_argument(
        "--variant",
        nargs=3,
        action="append",
        default=[],
        type=str,
        metavar=("LABEL", "TUNER", "JSON"),
        help="also run TUNER with these classArgs under LABEL, e.g. PPO-NNI PPO '{\"lr\": 0.0003}'",
    )
    parser.add_argument(
        "--workers", type=positive, default=os.cpu_count() or 1, help="processes (default: cores)"
    )
    parser.add_argument("--png", type=Path, default=None, help="where to save the curves")
    parser.add_argument("--no-png", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    for variant in args.variant:
        try:
            variant[2] = json.loads(variant[2])
        except json.JSONDecodeError as exc:
            parser.error(f"--variant {variant[0]}: classArgs are not JSON ({exc.msg})")
        if not isinstance(variant[2], dict):
            parser.error(f"--variant {variant[0]}: classArgs must be a JSON object")
    if args.no_png:
        args.png = None
    elif args.png is None:
        args.png = REPO / "runs" / "bench" / f"tuners-{args.dataset}.png"
    return args


def _quiet_torch() -> None:
    """One thread per worker process (the processes already use the cores), torch's imports done.

    The first optimizer a process builds imports a few seconds of torch modules; that happens
    here, so the time measured inside the tuners is the tuners' own.
    """
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def _run(job: tuple[str, str, dict[str, Any], int, int, str, int]) -> Replay:
    _label, name, extra, concurrency, seed, dataset, trials = job
    class_args: dict[str, Any] = {"seed": seed}
    if name != "GridSearch":
        class_args["optimize_mode"] = "maximize"
    class_args.update(extra)
    return replay(name, class_args, load_replay_table(dataset), trials, concurrency, noise_seed=seed)


def _mean_std(results: list[Replay], n: int) -> tuple[float, float]:
    values = [r.curve[min(n, len(r.curve)) - 1] for r in results]
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def print_table(
    results: dict[tuple[str, int], list[Replay]], budgets: list[int], args: argparse.Namespace, optimum: float
) -> None:
    header = ["tuner", "c"] + [f"N={n}" for n in budgets]
    rows = []
    for (name, concurrency), runs in results.items():
        cells = [f"{m:.2f} ± {s:.2f}" for m, s in (_mean_std(runs, n) for n in budgets)]
        rows.append([name, str(concurrency), *cells])
    rows.append(["optimum", "", *[f"{optimum:.2f}" for _ in budgets]])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    baseline = {c: runs for (name, c), runs in results.items() if name == "Random"}
    if baseline:
        print("\ngain over Random in the same run (mean accuracy points):")
        for (name, concurrency), runs in results.items():
            if name == "Random" or concurrency not in baseline:
                continue
            gains = [_mean_std(runs, n)[0] - _mean_std(baseline[concurrency], n)[0] for n in budgets]
            print(
                f"  {name} c={concurrency}: "
                + "  ".join(f"N={n} {g:+.2f}" for n, g in zip(budgets, gains, strict=True))
            )
    reference = {c: runs for (name, c), runs in results.items() if name == REFERENCE}
    if reference:
        print(f"\nlowest gain over {REFERENCE} at any N from 10 to {args.trials} (mean accuracy points):")
        for (name, concurrency), runs in results.items():
            if name == REFERENCE or concurrency not in reference:
                continue
            gaps = [
                (_mean_std(runs, n)[0] - _mean_std(reference[concurrency], n)[0], n)
                for n in range(min(10, args.trials), args.trials + 1)
            ]
            gap, at = min(gaps)
            print(f"  {name} c={concurrency}: {gap:+.2f} at N={at}")
    print("\ntime inside the tuner (ms): mean per trial; generate_parameters calls: median, p95, max")
    for (name, concurrency), runs in results.items():
        per_trial = statistics.mean(r.tuner_seconds / len(r.curve) for r in runs) * 1000
        calls = sorted(t * 1000 for r in runs for t in r.call_seconds)
        median = statistics.median(calls) if calls else 0.0
        p95 = calls[min(len(calls) - 1, int(0.95 * len(calls)))] if calls else 0.0
        print(
            f"  {name} c={concurrency}: {per_trial:.2f} per trial; calls {median:.2f}, {p95:.2f}, "
            f"{max(calls, default=0.0):.2f}"
        )


def verdict(results: dict[tuple[str, int], list[Replay]], args: argparse.Namespace) -> int:
    """Check the aims (guards) where this run measured them (CIFAR-10 only); 1 when one is missed.
    The targets not reached yet are printed with the distance left."""
    if args.dataset != "cifar10":
        return 0
    missed = []
    for (name, concurrency), runs in results.items():
        if len(runs) < 2:
            continue
        for n, aim in AIMS.get(name, ()):
            if args.trials < n:
                continue
            mean = _mean_std(runs, n)[0]
            ok = mean >= aim
            print(f"aim {name} c={concurrency} N={n} >= {aim:.2f}: {mean:.2f} {'ok' if ok else 'MISSED'}")
            if not ok:
                missed.append(name)
        for n, target in TARGETS.get(name, ()):
            if args.trials >= n:
                mean = _mean_std(runs, n)[0]
                left = "reached" if mean >= target else f"not reached ({target - mean:.2f} short)"
                print(f"target {name} c={concurrency} N={n} >= {target:.2f}: {mean:.2f} {left}")
    if args.trials >= 300:
        for concurrency in args.concurrency:
            means = [
                _mean_std(results[(name, concurrency)], 300)[0]
                for name in ("RegularizedEvolution", "PPO")
                if (name, concurrency) in results
            ]
            if means:
                ok = max(means) >= AIM_300
                print(
                    f"aim best of RE/PPO c={concurrency} N=300 >= {AIM_300:.2f}: {max(means):.2f} {'ok' if ok else 'MISSED'}"
                )
                if not ok:
                    missed.append("N=300")
    return 1 if missed else 0


def plot(
    results: dict[tuple[str, int], list[Replay]], args: argparse.Namespace, optimum: float
) -> Path | None:
    """Mean ± std curves, one panel per concurrency; None (and a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no PNG: matplotlib is not installed)")
        return None
    panels = list(args.concurrency)
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False, sharey=True)
    for axis, concurrency in zip(axes[0], panels, strict=True):
        for (name, c), runs in results.items():
            if c != concurrency:
                continue
            xs = list(range(1, min(len(r.curve) for r in runs) + 1))
            means = [statistics.mean(r.curve[x - 1] for r in runs) for x in xs]
            stds = [statistics.pstdev(r.curve[x - 1] for r in runs) for x in xs]
            axis.plot(xs, means, label=name)
            low = [m - s for m, s in zip(means, stds, strict=True)]
            high = [m + s for m, s in zip(means, stds, strict=True)]
            axis.fill_between(xs, low, high, alpha=0.2)
        axis.axhline(optimum, color="black", linestyle="--", linewidth=1, label=f"optimum {optimum:.2f}")
        axis.set_xscale("log")
        axis.set_ylim(optimum - 3, optimum + 0.3)
        axis.set_xlabel("trials")
        axis.set_title(f"{args.dataset}, concurrency {concurrency}")
        axis.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("accuracy of best-observed cell (mean over seeds), %")
    axes[0][-1].legend(loc="lower right")
    figure.tight_layout()
    args.png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.png, dpi=110)
    plt.close(figure)
    return args.png


if __name__ == "__main__":
    sys.exit(main())
