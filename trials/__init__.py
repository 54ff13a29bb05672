"""The nasctl trial SDK: what runs inside a trial or a user's training script.

``import trials`` is cheap (no torch): a trial that only reads its parameters and reports
results starts as fast as Python does. The NAS model API lives in :mod:`trials.nas`.
"""

from trials.output import get_output_dir
from trials.reporting import (
    get_experiment_id,
    get_next_parameter,
    get_sequence_id,
    get_trial_id,
    report_final_result,
    report_intermediate_result,
)

__all__ = [
    "get_experiment_id",
    "get_next_parameter",
    "get_output_dir",
    "get_sequence_id",
    "get_trial_id",
    "report_final_result",
    "report_intermediate_result",
]
