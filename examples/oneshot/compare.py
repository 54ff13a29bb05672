"""DARTS, ENAS, SPOS, P-DARTS and CDARTS against random architectures, on digits: the README's table.

    python examples/oneshot/compare.py [--space darts] [--random 3]     # ~10 min on 2 idle CPU cores
    python examples/oneshot/compare.py --algorithms pdarts,cdarts --seeds 0,1,2

Runs each search with its defaults (``search.py``) once per ``--seeds`` seed, retrains each export from scratch
(``retrain.py``), retrains ``--random`` random architectures of the same space the same way,
and prints one table: search time, the super-net's last validation accuracy (a search-time
number), and the retrained test accuracy (the one that counts). Results also go to
examples/oneshot/logs/compare-<space>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics

import retrain
import search
from common import HERE, build_model, write_json

from trials.nas.oneshot.choices import random_architecture_of

NAMES = {"pdarts": "P-DARTS", "cdarts": "CDARTS"}


def supernet_accuracy(logdir) -> float | None:
    """The last ``val_acc`` in the search log (the super-net's, at the last epoch)."""
    last = None
    for line in (logdir / "metrics.jsonl").read_text().splitlines():
        value = json.loads(line)["metrics"].get("val_acc")
        last = value if value is not None else last
    return last


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--space", choices=("darts", "nb201"), default="darts")
    parser.add_argument("--random", type=int, default=3, help="random architectures to retrain")
    parser.add_argument("--algorithms", default="darts,enas,spos,pdarts,cdarts")
    parser.add_argument("--seeds", default="0", help="search seeds, separated by commas")
    parser.add_argument("--device", default="cpu")
    options = parser.parse_args()

    base = ["--space", options.space, "--device", options.device, "--quiet"]
    rows = []
    seeds = [int(seed) for seed in options.seeds.split(",")]
    for algorithm in options.algorithms.split(","):
        for seed in seeds:
            args = search.parse(["--algorithm", algorithm, "--seed", str(seed), *base])
            architecture, seconds, logdir = search.run(args)
            retrain_args = retrain.parse(["--arch", str(logdir / "architecture.json"), *base])
            result = retrain.retrain(retrain_args, architecture)
            name = NAMES.get(algorithm, algorithm.upper()) + (f" (seed {seed})" if len(seeds) > 1 else "")
            rows.append({"name": name, **seconds, "supernet_val_acc": supernet_accuracy(logdir), **result})
            print(
                f"{name}: search {seconds['wall_s']:.0f} s, retrained test accuracy {result['test_acc']:.4f}",
                flush=True,
            )
    for seed in range(options.random):
        args = retrain.parse(["--random", str(seed), *base])
        result = retrain.retrain(args, random_architecture_of(build_model(args), seed))
        rows.append(
            {
                "name": f"random (seed {seed})",
                "wall_s": None,
                "cpu_s": None,
                "supernet_val_acc": None,
                **result,
            }
        )
        print(f"random {seed}: retrained test accuracy {result['test_acc']:.4f}", flush=True)

    print()
    print(
        "| architecture | search time (wall / CPU) | super-net val acc (search) | retrained test acc | parameters |"
    )
    print("|---|---|---|---|---|")
    for row in rows:
        search_s = f"{row['wall_s']:.0f} s / {row['cpu_s']:.0f} s" if row["wall_s"] is not None else "-"
        supernet = f"{row['supernet_val_acc']:.3f}" if row["supernet_val_acc"] is not None else "-"
        print(f"| {row['name']} | {search_s} | {supernet} | {row['test_acc']:.4f} | {row['params']} |")
    randoms = [row["test_acc"] for row in rows if row["name"].startswith("random")]
    if randoms:
        print(f"\nrandom architectures: mean {statistics.mean(randoms):.4f} over {len(randoms)}")
    write_json(HERE / "logs" / f"compare-{options.space}.json", rows)


if __name__ == "__main__":
    main()
