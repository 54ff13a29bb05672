"""Reading the search space out of an annotated model.

:func:`parse_model` walks the model in module-registration order (depth first, the order of
assignment in ``__init__``), gives auto-keyed mutables their final keys, checks the rules NNI
users rely on (no nested choices, ``choose_from`` names only keys seen before, mutables that
share a key agree on their candidates) and returns the typed :class:`SearchSpace`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from trials.errors import MutableError
from trials.nas.mutables import NO_KEY, InputChoice, LayerChoice, Mutable, MutableScope, _Choice
from trials.searchspace import InputChoiceSpec, LayerChoiceSpec, SearchSpace


@dataclass
class Occurrence:
    """One place a choice module sits in the model: ``getattr(parent, attribute) is module``."""

    module: _Choice
    parent: nn.Module
    attribute: str
    path: str


@dataclass
class ParsedModel:
    space: SearchSpace
    occurrences: list[Occurrence] = field(default_factory=list)

    def by_key(self, key: str) -> list[Occurrence]:
        return [occ for occ in self.occurrences if occ.module.key == key]


def _walk(model: nn.Module) -> list[tuple[Mutable, nn.Module | None, str, str]]:
    """Pre-order (mutable, parent, attribute, dotted path), each placement once; nesting refused."""
    found: list[tuple[Mutable, nn.Module | None, str, str]] = []
    seen_placements: set[tuple[int, str]] = set()

    def visit(module: nn.Module, prefix: str, inside: _Choice | None) -> None:
        for name, child in module._modules.items():
            if child is None or (id(module), name) in seen_placements:
                continue
            seen_placements.add((id(module), name))
            path = f"{prefix}.{name}" if prefix else name
            if isinstance(child, Mutable):
                if inside is not None and isinstance(child, _Choice):
                    raise MutableError(
                        f"{type(child).__name__} {child.key!r} at {path} is nested inside "
                        f"{type(inside).__name__} {inside.key!r}; nested choices are not supported"
                    )
                found.append((child, module, name, path))
            visit(child, path, child if isinstance(child, _Choice) else inside)

    if isinstance(model, _Choice):
        found.append((model, None, "", ""))
    visit(model, "", model if isinstance(model, _Choice) else None)
    return found


def _assign_keys(mutables: list[Mutable]) -> dict[str, str]:
    """Give auto-keyed mutables ``<Class><N>`` in walk order; returns provisional -> final key."""
    explicit = {m.key for m in mutables if not m.auto_key}
    renames: dict[str, str] = {}
    counter = 0
    for mutable in dict.fromkeys(mutables):  # each instance once, in order
        if not mutable.auto_key:
            continue
        counter += 1
        while f"{type(mutable).__name__}{counter}" in explicit:
            counter += 1
        final = f"{type(mutable).__name__}{counter}"
        renames[mutable.provisional_key] = final
        renames[mutable.key] = final
        mutable._key = final
    return renames


def parse_model(model: nn.Module) -> ParsedModel:
    """The model's search space and where each choice sits. Raises :class:`MutableError`."""
    walked = _walk(model)
    renames = _assign_keys([m for m, *_ in walked])
    specs: dict[str, LayerChoiceSpec | InputChoiceSpec] = {}
    owners: dict[str, Mutable] = {}
    seen_keys: set[str] = set()
    occurrences: list[Occurrence] = []
    for mutable, parent, attribute, path in walked:
        if isinstance(mutable, InputChoice):
            mutable.choose_from = [renames.get(src, src) for src in mutable.choose_from]
            for source in mutable.choose_from:
                if source != NO_KEY and source not in seen_keys:
                    raise MutableError(
                        f"InputChoice {mutable.key!r} at {path}: choose_from names {source!r}, which is not "
                        "the key of a mutable or scope registered before it"
                    )
        seen_keys.add(mutable.key)
        if isinstance(mutable, MutableScope):
            continue
        assert isinstance(mutable, _Choice)
        spec = _spec(mutable)
        previous = specs.get(mutable.key)
        if previous is None:
            specs[mutable.key], owners[mutable.key] = spec, mutable
        elif previous != spec:
            raise MutableError(
                f"key {mutable.key!r} is shared by {type(owners[mutable.key]).__name__} and "
                f"{type(mutable).__name__} at {path}, which disagree ({_describe(previous)} vs "
                f"{_describe(spec)}); mutables sharing a key must have the same candidates"
            )
        if parent is not None:
            occurrences.append(Occurrence(mutable, parent, attribute, path))
    if not specs:
        raise MutableError("the model has no LayerChoice or InputChoice, so there is nothing to search")
    return ParsedModel(SearchSpace(tuple(specs.values())), occurrences)


def _spec(mutable: _Choice) -> LayerChoiceSpec | InputChoiceSpec:
    if isinstance(mutable, LayerChoice):
        return LayerChoiceSpec(mutable.key, tuple(mutable.names))
    assert isinstance(mutable, InputChoice)
    return InputChoiceSpec(mutable.key, tuple(mutable.candidate_names), mutable.n_chosen)


def _describe(spec: LayerChoiceSpec | InputChoiceSpec) -> str:
    if isinstance(spec, LayerChoiceSpec):
        return f"layer choice of {list(spec.candidates)}"
    return f"input choice of {list(spec.candidates)} choosing {spec.n_chosen}"
