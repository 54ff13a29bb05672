"""Which framework a model belongs to, so classic NAS serves PyTorch and Keras models alike.

A framework's model walk registers a :class:`Backend` when it is imported (``trials.nas.model``
for PyTorch, ``trials.nas.tensorflow.model`` for Keras). A model exists only once its framework
is loaded, so the lookup imports the walk of a framework already in ``sys.modules`` and never a
framework itself: no TensorFlow for a torch model, no torch for a Keras one.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trials.nas.walk import Occurrence, ParsedModel
from trials.searchspace import Decision


@dataclass(frozen=True)
class Backend:
    """``owns(model)``: whether this framework's walk applies; ``parse``: its search space;
    ``apply``: fix one placement of a choice to a decision."""

    name: str
    owns: Callable[[Any], bool]
    parse: Callable[[Any], ParsedModel]
    apply: Callable[[Occurrence, Decision], None]


_registered: dict[str, Backend] = {}
#: The module a framework's models are built with -> the walk that registers its backend.
_WALKS = {"torch": "trials.nas.model", "keras": "trials.nas.tensorflow.model"}


def register(backend: Backend) -> None:
    _registered[backend.name] = backend


def backend_for(model: Any) -> Backend:
    """The backend whose framework ``model`` belongs to; TypeError naming what is accepted."""
    for framework, walk in _WALKS.items():
        if framework in sys.modules:
            importlib.import_module(walk)
    for backend in _registered.values():
        if backend.owns(model):
            return backend
    raise TypeError(
        f"model must be a torch nn.Module or a Keras layer/model (trials.nas.tensorflow), got {type(model).__name__}"
    )
