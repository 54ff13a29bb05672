"""Names of the environment variables through which the training service talks to a trial.

The training service sets them, the SDK reads them; both import them from here so the two
sides can never disagree on a spelling.
"""

from __future__ import annotations

import os

EXPERIMENT_ID = "NASCTL_EXPERIMENT_ID"
TRIAL_ID = "NASCTL_TRIAL_ID"
SEQUENCE_ID = "NASCTL_SEQUENCE_ID"
TRIAL_DIR = "NASCTL_TRIAL_DIR"
#: The trial's own output folder (TensorBoard logs, checkpoints), inside its trial folder.
OUTPUT_DIR = "NASCTL_OUTPUT_DIR"
PARAMETER_FILE = "NASCTL_PARAMETER_FILE"
GEN_SEARCH_SPACE = "NASCTL_GEN_SEARCH_SPACE"
ARCHITECTURE = "NASCTL_ARCHITECTURE"
CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"

#: File names inside a trial's folder.
PARAMETER_FILE_NAME = "parameter.json"
METRICS_FILE_NAME = "metrics.jsonl"
STDOUT_FILE_NAME = "stdout"
STDERR_FILE_NAME = "stderr"
OUTPUT_DIR_NAME = "output"


def in_experiment() -> bool:
    """True inside a trial launched by a training service (it always sets the trial id)."""
    return bool(os.environ.get(TRIAL_ID))
