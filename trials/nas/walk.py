"""Reading the search space out of a model, for every framework (no torch, no TensorFlow here).

:func:`parse_tree` walks a model in registration order (depth first, the order of assignment in
``__init__``), gives auto-keyed mutables their final keys, checks the rules NNI users rely on (no
nested choices, ``choose_from`` names only keys seen before, mutables that share a key agree on
their candidates) and returns the typed :class:`~trials.searchspace.SearchSpace` and where each
choice sits. The framework hands it a :class:`Tree`: how to list a node's children and which
nodes are mutables (their class's ``kind``, see :mod:`trials.nas.declarations`).

Final keys: auto-keyed mutables are numbered ``<Class><N>`` in walk order, one counter for both
classes, skipping numbers an explicit key uses. A mutable keeps the key it got at construction
(:mod:`trials.nas.keys`) when that is already this number, which is the case for choices built in
``__init__`` in the order they are registered; so a key read there is final. Otherwise the parse
renames it, and warns when the old key had been read (code keyed by it would miss).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from trials.errors import MutableError
from trials.nas.declarations import INPUT, LAYER, NO_KEY, SCOPE
from trials.nas.keys import built_during_init_of
from trials.searchspace import InputChoiceSpec, LayerChoiceSpec, SearchSpace


@dataclass(frozen=True)
class Tree:
    """How to walk one framework's models: ``children(node)`` lists (attribute, child) pairs in
    registration order; ``kind(node)`` is LAYER, INPUT, SCOPE or None (not a mutable)."""

    children: Callable[[Any], Iterable[tuple[str, Any]]]
    kind: Callable[[Any], str | None]


@dataclass
class Occurrence:
    """One place a choice sits in the model: ``parent``'s child ``attribute`` is ``module``."""

    module: Any
    parent: Any
    attribute: str
    path: str


@dataclass
class ParsedModel:
    space: SearchSpace
    occurrences: list[Occurrence] = field(default_factory=list)

    def by_key(self, key: str) -> list[Occurrence]:
        return [occ for occ in self.occurrences if occ.module._key == key]


def _walk(model: Any, tree: Tree) -> list[tuple[Any, Any, str, str]]:
    """Pre-order (mutable, parent, attribute, dotted path), each placement once; nesting refused."""
    found: list[tuple[Any, Any, str, str]] = []
    seen_placements: set[tuple[int, str]] = set()

    def visit(module: Any, prefix: str, inside: Any) -> None:
        for name, child in tree.children(module):
            if child is None or (id(module), name) in seen_placements:
                continue
            seen_placements.add((id(module), name))
            path = f"{prefix}.{name}" if prefix else name
            kind = tree.kind(child)
            if kind is not None:
                if inside is not None and kind != SCOPE:
                    raise MutableError(
                        f"{type(child).__name__} {child._key!r} at {path} is nested inside "
                        f"{type(inside).__name__} {inside._key!r}; nested choices are not supported"
                    )
                found.append((child, module, name, path))
            visit(child, path, child if kind in (LAYER, INPUT) else inside)

    own_kind = tree.kind(model)
    if own_kind in (LAYER, INPUT):
        found.append((model, None, "", ""))
    visit(model, "", model if own_kind in (LAYER, INPUT) else None)
    return found


@dataclass(frozen=True)
class _Renames:
    """Old (construction or provisional) keys -> final keys, for ``choose_from`` entries.

    Models built separately number from 1 each, so a name is looked up first among the mutables
    numbered with the reader, then anywhere if it is unambiguous; an explicit key means itself.
    """

    explicit: frozenset[str]
    by_numbering: dict[tuple[int, str], str]
    anywhere: dict[str, set[str]]

    def resolve(self, reader: Any, name: str) -> str:
        if name in self.explicit:
            return name
        if reader._numbering is not None and (reader._numbering, name) in self.by_numbering:
            return self.by_numbering[reader._numbering, name]
        finals = self.anywhere.get(name, set())
        return next(iter(finals)) if len(finals) == 1 else name


def _assign_keys(model: Any, mutables: list[Any]) -> _Renames:
    """Give auto-keyed mutables ``<Class><N>`` in walk order; returns how old keys map to final ones.

    A key that was read before this parse and changes here is reported in one warning.
    """
    explicit = frozenset(m._key for m in mutables if not m.auto_key)
    renames = _Renames(explicit, {}, {})
    changed_after_read: list[str] = []
    counter = 0
    for mutable in dict.fromkeys(mutables):  # each instance once, in order
        was_read = mutable.__dict__.get("_key_read", False)  # reads since the last parse
        mutable.__dict__["_key_read"] = False
        if not mutable.auto_key:
            continue
        counter += 1
        while f"{type(mutable).__name__}{counter}" in explicit:
            counter += 1
        final = f"{type(mutable).__name__}{counter}"
        for old in {mutable.provisional_key, mutable._key}:
            renames.anywhere.setdefault(old, set()).add(final)
            if mutable._numbering is not None:
                renames.by_numbering[mutable._numbering, old] = final
        if mutable._key != final and was_read:
            changed_after_read.append(f"{mutable._key} -> {final} ({_why_renamed(model, mutable)})")
        mutable.__dict__["_key"] = final
    if changed_after_read:
        warnings.warn(
            "parse_model renamed key(s) that were read before the parse: "
            + "; ".join(changed_after_read)
            + ". Code that stored the old key (a table keyed by choice.key) will not find it; "
            "build choices in __init__ in the order they are registered, or give them explicit keys",
            stacklevel=4,
        )
    return renames


def _why_renamed(model: Any, mutable: Any) -> str:
    if mutable._built_in is None:
        return "built outside any module's __init__, so its key was provisional"
    if not built_during_init_of(mutable, model):
        return f"numbered while building {mutable._built_in}, not the parsed {type(model).__name__}"
    return (
        f"{type(model).__name__} built its choices in another order than it registers them, built "
        "some it does not register, or a later explicit key took the number"
    )


def parse_tree(model: Any, tree: Tree) -> ParsedModel:
    """The model's search space and where each choice sits. Raises :class:`MutableError`."""
    walked = _walk(model, tree)
    renames = _assign_keys(model, [m for m, *_ in walked])
    specs: dict[str, LayerChoiceSpec | InputChoiceSpec] = {}
    owners: dict[str, Any] = {}
    seen_keys: set[str] = set()
    occurrences: list[Occurrence] = []
    for mutable, parent, attribute, path in walked:
        kind = tree.kind(mutable)
        if kind == INPUT:
            mutable.choose_from = [renames.resolve(mutable, src) for src in mutable.choose_from]
            for source in mutable.choose_from:
                if source != NO_KEY and source not in seen_keys:
                    raise MutableError(
                        f"InputChoice {mutable._key!r} at {path}: choose_from names {source!r}, which is not "
                        "the key of a mutable or scope registered before it"
                    )
        seen_keys.add(mutable._key)
        if kind == SCOPE:
            continue
        spec = _spec(mutable, kind)
        previous = specs.get(mutable._key)
        if previous is None:
            specs[mutable._key], owners[mutable._key] = spec, mutable
        elif previous != spec:
            raise MutableError(
                f"key {mutable._key!r} is shared by {type(owners[mutable._key]).__name__} and "
                f"{type(mutable).__name__} at {path}, which disagree ({_describe(previous)} vs "
                f"{_describe(spec)}); mutables sharing a key must have the same candidates"
            )
        if parent is not None:
            occurrences.append(Occurrence(mutable, parent, attribute, path))
    if not specs:
        raise MutableError("the model has no LayerChoice or InputChoice, so there is nothing to search")
    return ParsedModel(SearchSpace(tuple(specs.values())), occurrences)


def _spec(mutable: Any, kind: str | None) -> LayerChoiceSpec | InputChoiceSpec:
    if kind == LAYER:
        return LayerChoiceSpec(mutable._key, tuple(mutable.names))
    return InputChoiceSpec(mutable._key, tuple(mutable.candidate_names), mutable.n_chosen)


def _describe(spec: LayerChoiceSpec | InputChoiceSpec) -> str:
    if isinstance(spec, LayerChoiceSpec):
        return f"layer choice of {list(spec.candidates)}"
    return f"input choice of {list(spec.candidates)} choosing {spec.n_chosen}"
