"""Reading the search space out of an annotated PyTorch model.

:func:`parse_model` walks the model in module-registration order (depth first, the order of
assignment in ``__init__``); the rules (final keys, nesting, ``choose_from``, shared keys) are
those of :mod:`trials.nas.walk`, which every framework shares.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn

from trials.nas.mutables import Mutable
from trials.nas.walk import Occurrence, ParsedModel, Tree, parse_tree

__all__ = ["Occurrence", "ParsedModel", "parse_model"]


def _children(module: nn.Module) -> Iterable[tuple[str, Any]]:
    return module._modules.items()


def _kind(module: Any) -> str | None:
    return module.kind if isinstance(module, Mutable) else None


TORCH_TREE = Tree(_children, _kind)


def parse_model(model: nn.Module) -> ParsedModel:
    """The model's search space and where each choice sits. Raises :class:`MutableError`."""
    return parse_tree(model, TORCH_TREE)
