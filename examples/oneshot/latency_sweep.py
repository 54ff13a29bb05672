"""ProxylessNAS on digits at several latency weights: what the latency term buys and costs.

    python examples/oneshot/latency_sweep.py                         # weights 0, 0.1, 1, 10: ~8 min
    python examples/oneshot/latency_sweep.py --weights 0,1 --mode multiplicative

For each weight, runs ``search.py --algorithm proxyless --space proxyless`` (the same seed, the
same latency table: the first search profiles it and the others reuse it, so timing noise
between searches cannot reorder them), retrains the export from scratch (``retrain.py``) and
prints one table: the expected latency at the end of the search, the table's latency of the
export, the export timed as a whole network (batch ``--batch-size`` on this machine's CPU),
and the retrained test accuracy. In multiplicative mode the weight is the exponent beta.
Results also go to examples/oneshot/logs/latency-sweep.json.
"""

from __future__ import annotations

import argparse
import json
import shutil

import retrain
import search
from common import HERE, write_json


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", default="0,0.1,1,10", help="latency weights, separated by commas")
    parser.add_argument("--mode", choices=("additive", "multiplicative"), default="additive")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    options = parser.parse_args()

    base = ["--space", "proxyless", "--device", options.device, "--seed", str(options.seed), "--quiet"]
    table = HERE / "logs" / "latency-sweep-table.json"
    table.unlink(missing_ok=True)
    rows = []
    for weight in options.weights.split(","):
        reuse = ["--latency-table", str(table)] if table.exists() else []
        args = search.parse(
            [
                "--algorithm",
                "proxyless",
                "--latency-mode",
                options.mode,
                "--latency-weight",
                weight,
                *reuse,
                *base,
            ]
        )
        args.logdir = HERE / "logs" / f"proxyless-sweep-{options.mode}-{weight}"
        architecture, seconds, logdir = search.run(args)
        if not reuse:
            shutil.copy(logdir / "latency.json", table)
        report = json.loads((logdir / "latency_report.json").read_text())
        result = retrain.retrain(
            retrain.parse(["--arch", str(logdir / "architecture.json"), *base]), architecture
        )
        ops = [value["_value"] for value in architecture.values()]
        rows.append({"weight": float(weight), **report, "search_s": seconds["wall_s"], "ops": ops, **result})
        print(
            f"weight {weight}: expected {report['expected']:.3f} ms, measured {report['measured_ms']:.3f} ms, "
            f"test accuracy {result['test_acc']:.4f}",
            flush=True,
        )
    print(
        "\n| latency weight | expected latency (ms) | export by the table (ms) | export measured (ms) "
        "| retrained test acc | export |\n|---|---|---|---|---|---|"
    )
    for row in rows:
        print(
            f"| {row['weight']:g} | {row['expected']:.3f} | {row['exported']:.3f} | {row['measured_ms']:.3f} "
            f"| {row['test_acc']:.4f} | {' '.join(row['ops'])} |"
        )
    write_json(HERE / "logs" / f"latency-sweep-{options.mode}.json", rows)


if __name__ == "__main__":
    main()
