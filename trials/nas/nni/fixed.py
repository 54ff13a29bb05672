"""``nni.nas.pytorch.fixed``: fix a model to one architecture for retraining."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from trials.nas.classic import apply_fixed_architecture as _apply


def apply_fixed_architecture(
    model: nn.Module, fixed_arc: str | Path | Mapping[str, Any], verbose: bool = True
) -> dict[str, Any]:
    """NNI's signature over :func:`trials.nas.apply_fixed_architecture`: ``fixed_arc`` is a dict
    or a JSON file in NNI's multi-hot form or nasctl's; returns the architecture in nasctl's full
    form. ``verbose`` prints the chosen candidates to stderr, as NNI logged them."""
    architecture = _apply(model, fixed_arc)
    if verbose:
        chosen = ", ".join(f"{key}={value['_value']}" for key, value in architecture.items())
        print(f"fixed architecture: {chosen}", file=sys.stderr)
    return architecture
