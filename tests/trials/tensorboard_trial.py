"""A trial for the TensorBoard tests: no torch, reports dicts, and logs into its own output folder.

    python tensorboard_trial.py [--sleep SECONDS]

Reports three intermediate results ``{"default": d, "acc": a}`` and a final one, all computed
from the chosen indices (:func:`expected` says which), writes its own event file with the tag
``own/loss`` (steps 0..2) into ``trials.get_output_dir()``, and prints the environment's output
folder as one JSON line. ``--sleep`` waits that long before each result. Under ``NASCTL_GEN_SEARCH_SPACE`` it writes :data:`SPACE` and exits 0.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from tensorboard.summary import Writer

import trials
from trials import env
from trials.searchspace import SearchSpace

SPACE = {
    "op": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "maxpool"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["in0", "in1"], "n_chosen": 1}},
}
STEPS = 3
OWN_TAG = "own/loss"


def expected(parameters: dict[str, Any]) -> tuple[list[dict[str, float]], dict[str, float]]:
    """(the intermediate results, the final one) a trial with these parameters reports."""
    base = sum(_index(v) for v in parameters.values()) / 10
    intermediate = [{"default": base + step, "acc": base + step / 10} for step in range(STEPS)]
    return intermediate, {"default": base + STEPS, "acc": base + 0.5}


def main() -> int:
    target = os.environ.get(env.GEN_SEARCH_SPACE)
    if target:
        SearchSpace.from_json(SPACE).dump(target)
        return 0
    parameters = trials.get_next_parameter()
    output = trials.get_output_dir()
    print(json.dumps({"env": os.environ.get(env.OUTPUT_DIR), "trialDir": os.environ.get(env.TRIAL_DIR)}))
    writer = Writer(str(output))
    for step in range(STEPS):
        writer.add_scalar(OWN_TAG, 1.0 / (step + 1), step)
    writer.close()
    intermediate, final = expected(parameters)
    pause = float(sys.argv[sys.argv.index("--sleep") + 1]) if "--sleep" in sys.argv else 0.0
    for value in intermediate:
        time.sleep(pause)
        trials.report_intermediate_result(value)
    time.sleep(pause)
    trials.report_final_result(final)
    return 0


def _index(value: object) -> int:
    if isinstance(value, dict):
        idx = value.get("_idx", 0)
        return sum(idx) if isinstance(idx, list) else int(idx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
