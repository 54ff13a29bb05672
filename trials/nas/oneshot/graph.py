"""The super-net's graph for the search log (``graph.json``): which module feeds which choice.

Shape (version 1; ``manager/views/searchlog.py`` reads it for ``nasctl view-nas``)::

    {"version": 1,
     "traced": true,                      # false: the forward pass failed, so there are no edges
     "nodes": [
       {"id": "input", "type": "input", "label": "input"},
       {"id": "cells.0", "type": "scope", "label": "DartsCell", "parent": null},
       {"id": "cells.0.preproc0", "type": "module", "label": "ReLUConvBN", "parent": "cells.0"},
       {"id": "cells.0.nodes.0.edges.0", "type": "layer_choice", "label": "normal_n2_p0",
        "key": "normal_n2_p0", "candidates": ["maxpool", "avgpool", ...], "parent": "cells.0.nodes.0"},
       {"id": "cells.0.nodes.0.switch", "type": "input_choice", "label": "normal_n2_switch",
        "key": "normal_n2_switch", "candidates": ["normal_n2_p0", "normal_n2_p1"], "n_chosen": 2,
        "parent": "cells.0.nodes.0"},
       {"id": "output", "type": "output", "label": "output"}],
     "edges": [
       {"source": "input", "target": "stem"},
       {"source": "cells.0.nodes.0.edges.0", "target": "cells.0.nodes.0.switch", "candidate": 0}]}

* ``id`` is the module's dotted path in the model (``input``/``output`` stand for the data).
* ``type``: ``module`` (a part with no choice inside, drawn as one box; ``label`` is its class),
  ``layer_choice`` and ``input_choice`` (one node per placement; ``key`` names the decision,
  shared by every placement of the key, and ``candidates`` lists the names that
  ``weights.jsonl`` weighs, in that order), ``scope`` (a module that holds choices, e.g. a
  cell: a box drawn around its nodes, never an edge end; ``key`` is present when it is a
  ``MutableScope``), ``input`` and ``output``.
* ``parent`` is the enclosing ``scope`` (null at the top level).
* An edge says that data flowed from ``source`` to ``target`` in one forward pass with every
  candidate switched on. ``candidate`` (only on edges into an input choice) is the position of
  that input among the choice's candidates: the exact wiring, where a candidate's name (a key
  shared by several cells, or ``in<i>`` for an input with no key) does not say which node it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from trials.nas.mutables import InputChoice, LayerChoice, MutableScope, _Choice
from trials.nas.oneshot.choices import ChoiceGroup, connect_all

GRAPH_VERSION = 1


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    """The tensors in a (nested) list, tuple or dict."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


class _Lineage(TorchFunctionMode):
    """Carries "which node produced this" through every torch operation of the forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: dict[int, frozenset[str]] = {}
        self.keep: list[torch.Tensor] = []  # ids stay unique while the tensors live

    def of(self, value: Any) -> frozenset[str]:
        found: set[str] = set()
        for tensor in _tensors(value):
            found |= self.sources.get(id(tensor), frozenset())
        return frozenset(found)

    def mark(self, value: Any, sources: frozenset[str]) -> None:
        for tensor in _tensors(value):
            self.sources[id(tensor)] = sources
            self.keep.append(tensor)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        sources = self.of(args) | self.of(kwargs or {})
        if sources:
            self.mark(out, sources)
        return out


def _structure(model: nn.Module) -> tuple[dict[str, nn.Module], set[str]]:
    """Modules by path (candidates of a choice left out) and the paths that hold a choice."""
    modules: dict[str, nn.Module] = {}
    holders: set[str] = set()

    def visit(module: nn.Module, path: str) -> bool:
        holds = False
        for name, child in module._modules.items():
            child_path = f"{path}.{name}" if path else name
            if child is None or child_path in modules:
                continue
            modules[child_path] = child
            if isinstance(child, _Choice):
                holds = True  # its candidates are listed by the choice node, not drawn
            elif visit(child, child_path):
                holds = True
        if holds and path:
            holders.add(path)
        return holds

    visit(model, "")
    return modules, holders


def _parent(path: str) -> str | None:
    return path.rsplit(".", 1)[0] if "." in path else None


def build_graph(model: nn.Module, groups: Sequence[ChoiceGroup], example: Any) -> dict[str, Any]:
    """Trace one forward pass of ``example`` with every candidate on; see the module docstring.

    The choices' masks are left switched on; a trainer sets its own before the next step.
    """
    modules, holders = _structure(model)
    leaves = [p for p in modules if p not in holders]  # choices, and modules without choices
    called: set[str] = set()
    raw_edges: set[tuple[str, str, int | None]] = set()
    lineage = _Lineage()

    def pre_hook(path: str):  # type: ignore[no-untyped-def]
        def hook(module: nn.Module, args: tuple) -> None:
            called.add(path)
            if isinstance(module, InputChoice) and args and isinstance(args[0], (list, tuple, dict)):
                items = list(args[0].values()) if isinstance(args[0], dict) else list(args[0])
                for index, item in enumerate(items):
                    for source in lineage.of(item):
                        raw_edges.add((source, path, index))
                return
            for source in lineage.of(args):
                raw_edges.add((source, path, None))

        return hook

    def post_hook(path: str):  # type: ignore[no-untyped-def]
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            lineage.mark(output, frozenset({path}))

        return hook

    def holder_hook(path: str):  # type: ignore[no-untyped-def]
        def hook(module: nn.Module, args: tuple) -> None:
            called.add(path)

        return hook

    handles = [modules[p].register_forward_pre_hook(holder_hook(p)) for p in holders]
    for path in leaves:
        handles.append(modules[path].register_forward_pre_hook(pre_hook(path)))
        handles.append(modules[path].register_forward_hook(post_hook(path)))
    traced = True
    was_training = model.training
    try:
        connect_all(groups, _device_of(model))
        model.eval()
        with torch.no_grad(), lineage:
            lineage.mark(example, frozenset({"input"}))
            output = model(example)
            for source in lineage.of(output):
                raw_edges.add((source, "output", None))
    except Exception:  # an untraceable super-net still gets its nodes
        traced = False
        raw_edges.clear()
        called = set(modules)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)

    def representative(path: str) -> str:
        """The outermost called module without choices that contains ``path``."""
        best, parent = path, _parent(path)
        while parent is not None and parent not in holders:
            if parent in called:
                best = parent
            parent = _parent(parent)
        return best

    def group_of(path: str) -> str | None:
        """The nearest enclosing module that holds choices and was called (not a bare list)."""
        parent = _parent(path)
        while parent is not None and not (parent in holders and parent in called):
            parent = _parent(parent)
        return parent

    shown = [p for p in leaves if isinstance(modules[p], _Choice) or (p in called and representative(p) == p)]
    compound = {g for g in map(group_of, shown) if g is not None}
    for g in list(compound):
        outer = group_of(g)
        while outer is not None:
            compound.add(outer)
            outer = group_of(outer)

    nodes: list[dict[str, Any]] = [{"id": "input", "type": "input", "label": "input"}]
    shown_set = set(shown)
    for path, module in modules.items():
        if path in compound:
            node: dict[str, Any] = {"id": path, "type": "scope", "label": type(module).__name__}
            if isinstance(module, MutableScope):
                node["key"] = module.key
            node["parent"] = group_of(path)
            nodes.append(node)
        elif path in shown_set:
            nodes.append(_node(path, module, group_of(path)))
    nodes.append({"id": "output", "type": "output", "label": "output"})

    edges: list[dict[str, Any]] = []
    seen: set[tuple[str, str, int | None]] = set()
    for source, target, index in sorted(raw_edges, key=lambda e: (e[0], e[1], -1 if e[2] is None else e[2])):
        s = source if source == "input" else representative(source)
        t = target if target == "output" else representative(target)
        if s == t or (s, t, index) in seen:
            continue
        seen.add((s, t, index))
        edge: dict[str, Any] = {"source": s, "target": t}
        if index is not None:
            edge["candidate"] = index
        edges.append(edge)
    return {"version": GRAPH_VERSION, "traced": traced, "nodes": nodes, "edges": edges}


def _node(path: str, module: nn.Module, parent: str | None) -> dict[str, Any]:
    if isinstance(module, LayerChoice):
        return {
            "id": path,
            "type": "layer_choice",
            "label": module.key,
            "key": module.key,
            "candidates": list(module.names),
            "parent": parent,
        }
    if isinstance(module, InputChoice):
        return {
            "id": path,
            "type": "input_choice",
            "label": module.key,
            "key": module.key,
            "candidates": list(module.candidate_names),
            "n_chosen": module.n_chosen,
            "parent": parent,
        }
    return {"id": path, "type": "module", "label": type(module).__name__, "parent": parent}


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")
