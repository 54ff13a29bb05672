"""The ENAS search of the TextNAS space against random architectures of it: the README's table.

    python examples/textnas/compare.py                    # ~8 min on 2 CPU cores
    python examples/textnas/compare.py --seeds 0,1,2,3 --random 12

Runs ``search.py`` once per ``--seeds`` seed, retrains each export from scratch
(``retrain.py``), retrains ``--random`` random architectures of the same space the same way,
and prints one table of retrained test accuracies (chance is 0.25) with the operations each
architecture chose. Results also go to examples/textnas/logs/compare.json.
"""

from __future__ import annotations

import argparse
import json
import statistics

import retrain
import search
from common import HERE, build_network

from trials.nas.oneshot.choices import random_architecture_of


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="0,1,2", help="search seeds, separated by commas")
    parser.add_argument("--random", type=int, default=8, help="random architectures to retrain")
    parser.add_argument("--search-epochs", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    options = parser.parse_args()

    base = ["--device", options.device, "--quiet"]
    rows = []
    for seed in [int(seed) for seed in options.seeds.split(",")]:
        search_args = search.parse(["--seed", str(seed), "--epochs", str(options.search_epochs), *base])
        search_args.logdir = HERE / "logs" / f"enas-seed{seed}"
        architecture, seconds, _ = search.run(search_args)
        result = retrain.retrain(retrain.parse(["--random", "0", *base]), architecture)
        rows.append({"name": f"ENAS (seed {seed})", "search_s": seconds["wall_s"], **result})
        print(f"ENAS seed {seed}: {', '.join(result['ops'])}: {result['test_acc']:.4f}", flush=True)
    for seed in range(options.random):
        args = retrain.parse(["--random", str(seed), *base])
        result = retrain.retrain(args, random_architecture_of(build_network(args), seed))
        rows.append({"name": f"random (seed {seed})", "search_s": None, **result})
        print(f"random {seed}: {', '.join(result['ops'])}: {result['test_acc']:.4f}", flush=True)

    print("\n| architecture | search time | operations | retrained test acc |\n|---|---|---|---|")
    for row in rows:
        searched = f"{row['search_s']:.0f} s" if row["search_s"] is not None else "-"
        print(f"| {row['name']} | {searched} | {', '.join(row['ops'])} | {row['test_acc']:.4f} |")
    for kind in ("ENAS", "random"):
        accuracies = [row["test_acc"] for row in rows if row["name"].startswith(kind)]
        if accuracies:
            spread = f", min {min(accuracies):.4f}" if len(accuracies) > 1 else ""
            print(f"{kind}: mean {statistics.mean(accuracies):.4f} over {len(accuracies)}{spread}")
    path = HERE / "logs" / "compare.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
