"""Reading the search space out of an annotated PyTorch model, and fixing one of its choices.

:func:`parse_model` walks the model in module-registration order (depth first, the order of
assignment in ``__init__``); the rules (final keys, nesting, ``choose_from``, shared keys) are
those of :mod:`trials.nas.walk`, which every framework shares.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn

from trials.nas.backends import Backend, register
from trials.nas.mutables import InputChoice, LayerChoice, Mutable
from trials.nas.walk import Occurrence, ParsedModel, Tree, parse_tree
from trials.searchspace import Decision, InputDecision, LayerDecision

__all__ = ["Occurrence", "ParsedModel", "parse_model"]


def _children(module: nn.Module) -> Iterable[tuple[str, Any]]:
    return module._modules.items()


def _kind(module: Any) -> str | None:
    return module.kind if isinstance(module, Mutable) else None


TORCH_TREE = Tree(_children, _kind)


def parse_model(model: nn.Module) -> ParsedModel:
    """The model's search space and where each choice sits. Raises :class:`MutableError`."""
    return parse_tree(model, TORCH_TREE)


def _apply(occurrence: Occurrence, decision: Decision) -> None:
    """A single-candidate LayerChoice is replaced by the chosen module (see apply_fixed_architecture)."""
    module = occurrence.module
    if isinstance(module, LayerChoice):
        assert isinstance(decision, LayerDecision)
        if module.return_mask or module.reduction == "none":
            module.set_chosen([decision.index])  # the caller expects the (out, mask) or list shape
        else:
            setattr(occurrence.parent, occurrence.attribute, module[decision.index])
    elif isinstance(module, InputChoice):
        assert isinstance(decision, InputDecision)
        module.set_chosen(decision.indices)


register(Backend("torch", lambda model: isinstance(model, nn.Module), parse_model, _apply))
