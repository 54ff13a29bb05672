"""The ids the store hands out: short, random, readable."""

from __future__ import annotations

import secrets
import string

_ID_ALPHABET = string.ascii_lowercase + string.digits
_TRIAL_ID_FIRST = string.ascii_letters
_TRIAL_ID_REST = string.ascii_letters + string.digits


def new_experiment_id() -> str:
    """Eight lowercase letters and digits."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def new_trial_id() -> str:
    """NNI's shape: five characters, a letter first."""
    return secrets.choice(_TRIAL_ID_FIRST) + "".join(secrets.choice(_TRIAL_ID_REST) for _ in range(4))
