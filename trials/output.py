"""Where a trial writes its own files (TensorBoard logs, checkpoints): ``trials.get_output_dir()``.

Every training service sets ``NASCTL_OUTPUT_DIR`` to ``<trial folder>/output`` and creates it
before the trial starts; ``nasctl tensorboard`` shows what a trial writes there under the trial's
run. Outside an experiment the folder is ``./nasctl-output`` (beside where the script runs), so
the same script works under plain ``python`` and never writes into a trial folder that is not its.
"""

from __future__ import annotations

import os
from pathlib import Path

from trials import env

#: The folder of a script run outside an experiment (relative to the working directory).
STANDALONE_OUTPUT_DIR = "nasctl-output"


def get_output_dir() -> Path:
    """The trial's own output folder, created if missing (an absolute path).

    ``NASCTL_OUTPUT_DIR`` when set; else, in a trial of a service that does not set it,
    ``<NASCTL_TRIAL_DIR>/output``; else ``./nasctl-output``.
    """
    given = os.environ.get(env.OUTPUT_DIR)
    trial_dir = os.environ.get(env.TRIAL_DIR)
    if given:
        folder = Path(given)
    elif trial_dir:
        folder = Path(trial_dir) / env.OUTPUT_DIR_NAME
    else:
        folder = Path(STANDALONE_OUTPUT_DIR)
    folder = folder.expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder
