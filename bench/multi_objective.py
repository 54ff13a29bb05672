"""How much of NAS-Bench-201's accuracy-latency front a multi-objective search covers.

Each search replays the CIFAR-10 table of ``bench/_nb201.py`` through the Tuner interface the
manager uses, with two objectives (``accuracy`` maximized, ``latency`` minimized: the table's
measured latency of each cell): a trial observes the accuracy of one seed of its cell (noisy)
and the cell's latency, and reports them as the dict a real trial would. After N trials the
searched cells are judged by their mean accuracy, and the hypervolume of their front is divided
by the hypervolume of the table's true front (1.0: the whole front found). The reference point
is the worst accuracy and the worst latency of the whole table, so the ratio does not depend on
units. Printed per tuner: mean ± std over search seeds at each N, and the gain over Random
measured in the same run. Sequential trials (concurrency 1).

Usage: ``python bench/multi_objective.py [--trials 300] [--seeds 30] [--tuners Random,RegularizedEvolution]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _nb201 import Table, load_table
from nb201_table import cell_code, search_space

from manager.config import TunerConfig
from manager.tuners.base import NoMoreTrials
from manager.tuners.registry import create_tuner
from trials.objectives import Objectives, hypervolume_2d, pareto_front
from trials.searchspace import SearchSpace

OBJECTIVES = Objectives.from_config(
    [{"metric": "accuracy", "mode": "maximize"}, {"metric": "latency", "mode": "minimize"}]
)
BUDGETS = (30, 100, 300)


def latency(table: Table, code: str) -> float:
    return float(table.rows[code]["latency"][0])


def judged(table: Table, codes: set[str]) -> list[tuple[float, float]]:
    """Oriented (larger is better) points of ``codes``: mean accuracy, minus latency."""
    return [(table.mean(code), -latency(table, code)) for code in codes]


def true_front_volume(table: Table, reference: tuple[float, float]) -> float:
    points = judged(table, set(table.codes))
    return hypervolume_2d([points[i] for i in pareto_front(points)], reference)


def search(name: str, table: Table, trials: int, seed: int, reference: tuple[float, float]) -> list[float]:
    """Hypervolume ratios (before dividing) after each budget in BUDGETS up to ``trials``."""
    tuner = create_tuner(TunerConfig(name=name, class_args={"seed": seed}), OBJECTIVES)
    tuner.update_search_space(SearchSpace.from_json(search_space()))
    seen: set[str] = set()
    volumes = []
    for parameter_id in range(trials):
        try:
            parameters = tuner.generate_parameters(parameter_id)
        except NoMoreTrials:
            break
        code = cell_code(parameters)
        accuracy = table.observe(code, seed, parameter_id).accuracy
        result = {"default": accuracy, "accuracy": accuracy, "latency": latency(table, code)}
        tuner.receive_trial_result(parameter_id, parameters, result)
        tuner.trial_end(parameter_id, True)
        seen.add(code)
        if parameter_id + 1 in BUDGETS:
            points = judged(table, seen)
            volumes.append(hypervolume_2d([points[i] for i in pareto_front(points)], reference))
    return volumes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--tuners", default="Random,RegularizedEvolution")
    args = parser.parse_args(argv)
    table = load_table("cifar10")
    everything = judged(table, set(table.codes))
    reference = (min(a for a, _ in everything), min(b for _, b in everything))
    best = true_front_volume(table, reference)
    budgets = [n for n in BUDGETS if n <= args.trials]
    ratios: dict[str, list[list[float]]] = {}
    for name in args.tuners.split(","):
        started = time.perf_counter()
        runs = []
        for seed in range(args.seeds):
            runs.append([v / best for v in search(name, table, args.trials, seed, reference)])
            print(f"\r{name}: {seed + 1}/{args.seeds} searches", end="", flush=True)
        ratios[name] = runs
        print(f"  ({time.perf_counter() - started:.1f} s)")
    print(
        f"\nhypervolume of the searched front / the table's true front (accuracy vs latency), {args.seeds} seeds"
    )
    print("| tuner | " + " | ".join(f"N={n}" for n in budgets) + " |")
    print("|---|" + "---|" * len(budgets))
    base = ratios.get("Random")
    for name, runs in ratios.items():
        cells = []
        for k in range(len(budgets)):
            values = [run[k] for run in runs]
            text = f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0:.4f}"
            if base is not None and name != "Random":
                gain = statistics.mean(values) - statistics.mean(run[k] for run in base)
                text += f" ({gain:+.4f} vs Random)"
            cells.append(text)
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
