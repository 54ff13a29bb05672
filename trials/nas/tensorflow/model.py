"""The search space of a Keras model, and how classic NAS applies a decision to it.

The walk visits each layer's tracked sub-layers in Keras' order (assignment order in
``__init__``), named by the attribute that holds them; the rules are :mod:`trials.nas.walk`'s.
Registering the Keras :class:`~trials.nas.backends.Backend` here lets
``get_and_apply_next_architecture`` and ``apply_fixed_architecture`` take a Keras model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trials.nas.backends import Backend, register
from trials.nas.tensorflow._keras import keras
from trials.nas.tensorflow.mutables import InputChoice, LayerChoice, Mutable
from trials.nas.walk import Occurrence, ParsedModel, Tree, parse_tree
from trials.searchspace import Decision, InputDecision, LayerDecision


def _attribute_names(layer: Any) -> dict[int, str]:
    names: dict[int, str] = {}
    for attribute, value in vars(layer).items():
        if attribute.startswith("_"):  # Keras' own bookkeeping (``_layers``, ``_tracker``, ...)
            continue
        if isinstance(value, keras.layers.Layer):
            names.setdefault(id(value), attribute)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                names.setdefault(id(item), f"{attribute}.{i}")
        elif isinstance(value, dict):
            for name, item in value.items():
                names.setdefault(id(item), f"{attribute}.{name}")
    return names


def _children(layer: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(layer, LayerChoice):
        return list(zip(layer.names, layer.candidates, strict=True))
    if not isinstance(layer, keras.layers.Layer):
        return []
    names = _attribute_names(layer)
    return [(names.get(id(child), child.name), child) for child in layer._layers]


def _kind(layer: Any) -> str | None:
    return layer.kind if isinstance(layer, Mutable) else None


KERAS_TREE = Tree(_children, _kind)


def parse_model(model: keras.layers.Layer) -> ParsedModel:
    """The Keras model's search space and where each choice sits. Raises ``MutableError``."""
    return parse_tree(model, KERAS_TREE)


def _apply(occurrence: Occurrence, decision: Decision) -> None:
    module = occurrence.module
    if isinstance(module, LayerChoice):
        assert isinstance(decision, LayerDecision)
        module.set_chosen([decision.index])
    elif isinstance(module, InputChoice):
        assert isinstance(decision, InputDecision)
        module.set_chosen(decision.indices)


register(Backend("keras", lambda model: isinstance(model, keras.layers.Layer), parse_model, _apply))
