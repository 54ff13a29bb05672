"""A trial that needs no torch, for the CLI tests: a fixed space, a metric computed from the choices.

    python cli_trial.py [--sleep SECONDS] [--fail]

Under ss_gen (``NASCTL_GEN_SEARCH_SPACE`` set) it writes its search space and exits 0. In a
trial it prints its architecture to stdout and a line to stderr, reports two intermediate
results and a final one that grows with the chosen indices (so the best trial is knowable).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import trials
from trials import env
from trials.searchspace import SearchSpace

SPACE = {
    "op": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "maxpool"]},
    "act": {"_type": "layer_choice", "_value": ["relu", "tanh"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["in0", "in1"], "n_chosen": 1}},
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--fail", action="store_true")
    args = parser.parse_args()
    target = os.environ.get(env.GEN_SEARCH_SPACE)
    if target:
        SearchSpace.from_json(SPACE).dump(target)
        return 0
    params = trials.get_next_parameter()
    print(f"architecture {sorted((k, str(v)) for k, v in params.items())}", flush=True)
    print("a line on stderr", file=sys.stderr, flush=True)
    if args.fail:
        print("failing on purpose", file=sys.stderr, flush=True)
        return 1
    score = 0.5 + sum(_index(value) for value in params.values()) / 10
    for step in range(2):
        time.sleep(args.sleep / 2)
        trials.report_intermediate_result(score * (step + 1) / 2)
    trials.report_final_result(score)
    print(f"final {score}", flush=True)
    return 0


def _index(value: object) -> int:
    if isinstance(value, dict):
        idx = value.get("_idx", 0)
        return sum(idx) if isinstance(idx, list) else int(idx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
