"""Which framework a model belongs to, so classic NAS serves PyTorch and Keras models alike.

A framework's model API registers a :class:`Backend` when it is imported (``trials.nas.mutables``
for PyTorch, ``trials.nas.tensorflow`` for Keras); a model using its choices was built after that
import, so the lookup never has to import a framework itself (no TensorFlow for a torch model).
"""

from __future__ import annotations

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


def register(backend: Backend) -> None:
    _registered[backend.name] = backend


def backend_for(model: Any) -> Backend:
    """The backend whose framework ``model`` belongs to; TypeError naming what is accepted."""
    for backend in _registered.values():
        if backend.owns(model):
            return backend
    raise TypeError(
        f"model must be a torch nn.Module or a Keras layer/model (trials.nas.tensorflow), got {type(model).__name__}"
    )
