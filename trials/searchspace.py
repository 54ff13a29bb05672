"""The search-space and architecture formats that cross every door (NNI's JSON, typed here).

A search space maps keys to choices::

    {"conv1": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5"]},
     "skip":  {"_type": "input_choice", "_value": {"candidates": ["in0", "in1"], "n_chosen": 1}},
     "lr":    {"_type": "loguniform", "_value": [1e-4, 1e-1]}}

An architecture maps the same keys to decisions::

    {"conv1": {"_value": "conv5x5", "_idx": 1}, "skip": {"_value": ["in1"], "_idx": [1]}, "lr": 0.01}

The index is the truth and the name a check, so equal candidate names never collide. The
short form ``{"conv1": "conv5x5", "skip": ["in1"]}`` is accepted wherever names are unique, and
so is NNI's multi-hot export, one boolean (or float, > 0 chosen) per candidate:
``{"conv1": [false, true], "skip": [false, true]}`` (:func:`architecture_to_multi_hot` writes it).
This module imports neither torch nor numpy: the manager and fast trials use it too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trials.errors import ArchitectureError, SearchSpaceError
from trials.messages import did_you_mean
from trials.numbers import as_float, is_number, is_whole

LAYER_CHOICE = "layer_choice"
INPUT_CHOICE = "input_choice"

#: NNI's hyper-parameter types and the number of arguments each takes.
HYPERPARAMETER_ARITY: dict[str, int] = {
    "choice": -1,
    "randint": 2,
    "uniform": 2,
    "quniform": 3,
    "loguniform": 2,
    "qloguniform": 3,
    "normal": 2,
    "qnormal": 3,
    "lognormal": 2,
    "qlognormal": 3,
}
ALL_TYPES = (LAYER_CHOICE, INPUT_CHOICE, *HYPERPARAMETER_ARITY)


@dataclass(frozen=True)
class LayerChoiceSpec:
    """Pick exactly one of ``candidates``."""

    key: str
    candidates: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"_type": LAYER_CHOICE, "_value": list(self.candidates)}


@dataclass(frozen=True)
class InputChoiceSpec:
    """Pick ``n_chosen`` distinct candidates (any number, none included, when ``n_chosen`` is None)."""

    key: str
    candidates: tuple[str, ...]
    n_chosen: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "_type": INPUT_CHOICE,
            "_value": {"candidates": list(self.candidates), "n_chosen": self.n_chosen},
        }


@dataclass(frozen=True)
class HyperParameterSpec:
    """One of NNI's hyper-parameter types; ``args`` are the options of ``choice`` or the numbers."""

    key: str
    type: str
    args: tuple[Any, ...]

    @property
    def is_finite(self) -> bool:
        return self.type in ("choice", "randint")

    def to_json(self) -> dict[str, Any]:
        return {"_type": self.type, "_value": list(self.args)}


ChoiceSpec = LayerChoiceSpec | InputChoiceSpec | HyperParameterSpec


@dataclass(frozen=True)
class LayerDecision:
    index: int
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"_value": self.name, "_idx": self.index}


@dataclass(frozen=True)
class InputDecision:
    indices: tuple[int, ...]
    names: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"_value": list(self.names), "_idx": list(self.indices)}


Decision = LayerDecision | InputDecision | Any


@dataclass(frozen=True)
class SearchSpace:
    """An ordered, validated search space. Build it with :meth:`from_json` or from a model."""

    choices: tuple[ChoiceSpec, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for choice in self.choices:
            if choice.key in seen:
                raise SearchSpaceError(f"search space: key {choice.key!r} appears twice")
            seen.add(choice.key)

    # -- mapping-like access -------------------------------------------------------------
    def __iter__(self) -> Iterator[ChoiceSpec]:
        return iter(self.choices)

    def __len__(self) -> int:
        return len(self.choices)

    def __contains__(self, key: object) -> bool:
        return any(choice.key == key for choice in self.choices)

    def __getitem__(self, key: str) -> ChoiceSpec:
        for choice in self.choices:
            if choice.key == key:
                return choice
        raise KeyError(key)

    def keys(self) -> list[str]:
        return [choice.key for choice in self.choices]

    @property
    def nas_choices(self) -> tuple[LayerChoiceSpec | InputChoiceSpec, ...]:
        return tuple(c for c in self.choices if isinstance(c, (LayerChoiceSpec, InputChoiceSpec)))

    def size(self) -> int | None:
        """Number of distinct architectures, or None when a continuous type makes it infinite."""
        total = 1
        for choice in self.choices:
            size = _choice_size(choice)
            if size is None:
                return None
            total *= size
        return total

    # -- JSON --------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, obj: Any, source: str = "search space") -> SearchSpace:
        """Validate NNI's JSON form; every error names ``source`` and the key."""
        if not isinstance(obj, Mapping):
            raise SearchSpaceError(f"{source}: must be a JSON object of key -> choice, got {_kind(obj)}")
        if not obj:
            raise SearchSpaceError(f"{source}: is empty; it needs at least one choice")
        return cls(tuple(_parse_choice(str(key), entry, source) for key, entry in obj.items()))

    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise SearchSpaceError(f"{path}: cannot read search space file ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise SearchSpaceError(f"{path}: not a text file (a search space is UTF-8 JSON)") from None
        return cls.from_json(loads_strict(text, str(path), SearchSpaceError), source=str(path))

    def to_json(self) -> dict[str, Any]:
        return {choice.key: choice.to_json() for choice in self.choices}

    def dumps(self) -> str:
        """The canonical text: keys sorted, indent 2, as NNI's ss_gen writes it."""
        return json.dumps(self.to_json(), sort_keys=True, indent=2) + "\n"

    def dump(self, path: str | Path) -> None:
        Path(path).write_text(self.dumps())

    # -- architectures ---------------------------------------------------------------------
    def parse_architecture(self, arch: Any, source: str = "architecture") -> dict[str, Decision]:
        """Check ``arch`` against this space and return one typed decision per key.

        Keys must match exactly; values may be the full ``{_value, _idx}`` form, the short
        form (a name, an index, or a list of them) or NNI's multi-hot list (one boolean or float
        per candidate). Raises :class:`ArchitectureError`.
        """
        if not isinstance(arch, Mapping):
            raise ArchitectureError(f"{source}: must be a JSON object of key -> decision, got {_kind(arch)}")
        known = self.keys()
        unknown = [key for key in arch if key not in self]
        if unknown:
            key = unknown[0]
            raise ArchitectureError(
                f"{source}: unknown key {key!r}{did_you_mean(key, known)}; the keys are {', '.join(known)}"
            )
        missing = [key for key in known if key not in arch]
        if missing:
            raise ArchitectureError(f"{source}: no decision for key(s) {', '.join(missing)}")
        return {choice.key: _parse_decision(choice, arch[choice.key], source) for choice in self.choices}

    def default_architecture(self) -> dict[str, Decision]:
        """First candidate of every layer choice, first ``n_chosen`` (or all) inputs."""
        decisions: dict[str, Decision] = {}
        for choice in self.choices:
            if isinstance(choice, LayerChoiceSpec):
                decisions[choice.key] = LayerDecision(0, choice.candidates[0])
            elif isinstance(choice, InputChoiceSpec):
                n = len(choice.candidates) if choice.n_chosen is None else choice.n_chosen
                decisions[choice.key] = InputDecision(tuple(range(n)), choice.candidates[:n])
            else:
                decisions[choice.key] = _default_hyperparameter(choice)
        return decisions


def loads_strict(text: str, source: str, error: type[ValueError]) -> Any:
    """``json.loads`` that refuses an object with a key twice (plain JSON keeps the last silently)."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise error(f"{source}: key {key!r} appears twice")
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise error(f"{source}: not valid JSON (line {exc.lineno}: {exc.msg})") from None


def architecture_to_json(decisions: Mapping[str, Decision]) -> dict[str, Any]:
    """The full ``{_value, _idx}`` form of typed decisions (hyper-parameters stay plain values)."""
    return {
        key: value.to_json() if isinstance(value, (LayerDecision, InputDecision)) else value
        for key, value in decisions.items()
    }


def architecture_to_multi_hot(space: SearchSpace, decisions: Mapping[str, Decision]) -> dict[str, Any]:
    """NNI's export form: one boolean per candidate for each layer/input choice key of ``space``.

    ``decisions`` holds typed decisions (or any form :meth:`SearchSpace.parse_architecture`
    reads); keys that are not layer or input choices of ``space`` (hyper-parameters) pass through.
    """
    nas = {choice.key: choice for choice in space.nas_choices}
    multi_hot: dict[str, Any] = {}
    for key, value in decisions.items():
        choice = nas.get(key)
        if choice is None:
            if isinstance(value, (LayerDecision, InputDecision)):
                raise ArchitectureError(f"decisions: {key!r} is not a layer or input choice of the space")
            multi_hot[key] = value
            continue
        if isinstance(value, (LayerDecision, InputDecision)):
            value = value.to_json()
        decision = _parse_decision(choice, value, "decisions")
        chosen = {decision.index} if isinstance(decision, LayerDecision) else set(decision.indices)
        multi_hot[key] = [i in chosen for i in range(len(choice.candidates))]
    return multi_hot


def is_nas_decision(value: Any) -> bool:
    """True for a value in the full architecture form (a dict holding ``_idx`` or ``_value``)."""
    return isinstance(value, Mapping) and ("_idx" in value or "_value" in value)


# -- parsing helpers ---------------------------------------------------------------------------


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _parse_choice(key: str, entry: Any, source: str) -> ChoiceSpec:
    where = f"{source}: {key!r}"
    if not isinstance(entry, Mapping):
        raise SearchSpaceError(f"{where}: must be an object with _type and _value, got {_kind(entry)}")
    extra = [k for k in entry if k not in ("_type", "_value")]
    if extra:
        raise SearchSpaceError(f"{where}: unknown field {extra[0]!r}; allowed are _type and _value")
    if "_type" not in entry or "_value" not in entry:
        raise SearchSpaceError(f"{where}: needs both _type and _value")
    kind, value = entry["_type"], entry["_value"]
    if kind not in ALL_TYPES:
        hint = did_you_mean(str(kind), ALL_TYPES)
        raise SearchSpaceError(f"{where}: unknown _type {kind!r}{hint}; allowed are {', '.join(ALL_TYPES)}")
    if kind == LAYER_CHOICE:
        return LayerChoiceSpec(key, _candidate_names(value, f"{where}: _value"))
    if kind == INPUT_CHOICE:
        return _parse_input_choice(key, value, where)
    return _parse_hyperparameter(key, kind, value, where)


def _candidate_names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise SearchSpaceError(f"{where}: must be a non-empty list of candidate names, got {_kind(value)}")
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        raise SearchSpaceError(f"{where}: candidate names must be strings, got {bad[0]!r}")
    return tuple(value)


def _parse_input_choice(key: str, value: Any, where: str) -> InputChoiceSpec:
    if not isinstance(value, Mapping):
        raise SearchSpaceError(f"{where}: _value must be an object with candidates and n_chosen")
    extra = [k for k in value if k not in ("candidates", "n_chosen")]
    if extra:
        raise SearchSpaceError(
            f"{where}: unknown field {extra[0]!r} in _value; allowed are candidates, n_chosen"
        )
    candidates = _candidate_names(value.get("candidates"), f"{where}: candidates")
    n_chosen = value.get("n_chosen")
    if n_chosen is not None and (
        not isinstance(n_chosen, int) or isinstance(n_chosen, bool) or not 0 <= n_chosen <= len(candidates)
    ):
        raise SearchSpaceError(
            f"{where}: n_chosen must be null or a whole number from 0 to {len(candidates)}, got {n_chosen!r}"
        )
    return InputChoiceSpec(key, candidates, n_chosen)


def _parse_hyperparameter(key: str, kind: str, value: Any, where: str) -> HyperParameterSpec:
    if not isinstance(value, list) or not value:
        raise SearchSpaceError(f"{where}: _value of {kind} must be a non-empty list, got {_kind(value)}")
    if kind == "choice":
        return HyperParameterSpec(key, kind, tuple(value))
    arity = HYPERPARAMETER_ARITY[kind]
    if len(value) != arity or not all(as_float(v) is not None for v in value):
        raise SearchSpaceError(f"{where}: _value of {kind} must be {arity} finite numbers, got {value!r}")
    if kind in ("randint", "uniform", "quniform", "loguniform", "qloguniform") and not value[0] < value[1]:
        raise SearchSpaceError(f"{where}: {kind} needs low < high, got {value!r}")
    if kind == "randint" and not all(is_whole(v) for v in value):
        raise SearchSpaceError(f"{where}: randint bounds must be whole numbers, got {value!r}")
    if kind in ("loguniform", "qloguniform") and value[0] <= 0:
        raise SearchSpaceError(f"{where}: {kind} needs 0 < low, got {value!r}")
    if kind in ("normal", "qnormal", "lognormal", "qlognormal") and value[1] <= 0:
        raise SearchSpaceError(f"{where}: {kind} needs sigma > 0, got {value!r}")
    if arity == 3 and value[2] <= 0:
        raise SearchSpaceError(f"{where}: {kind} needs q > 0, got {value!r}")
    return HyperParameterSpec(key, kind, tuple(value))


def _choice_size(choice: ChoiceSpec) -> int | None:
    if isinstance(choice, LayerChoiceSpec):
        return len(choice.candidates)
    if isinstance(choice, InputChoiceSpec):
        n = len(choice.candidates)
        return 2**n if choice.n_chosen is None else math.comb(n, choice.n_chosen)
    if choice.type == "choice":
        return len(choice.args)
    if choice.type == "randint":
        return int(choice.args[1]) - int(choice.args[0])
    return None


def _default_hyperparameter(choice: HyperParameterSpec) -> Any:
    if choice.type == "choice":
        return choice.args[0]
    if choice.type == "randint":
        return int(choice.args[0])
    if choice.type in ("normal", "qnormal"):
        return choice.args[0]
    if choice.type in ("lognormal", "qlognormal"):
        return math.exp(choice.args[0])
    return choice.args[0]


def _lookup(choice: LayerChoiceSpec | InputChoiceSpec, item: Any, where: str) -> int:
    """Index of one candidate given by index or by (unique) name."""
    n = len(choice.candidates)
    if isinstance(item, bool):
        raise ArchitectureError(
            f"{where}: expected a candidate name or index, got {item!r}; {_forms(choice)}"
        )
    if isinstance(item, int):
        if not 0 <= item < n:
            raise ArchitectureError(f"{where}: index {item} out of range 0..{n - 1}")
        return item
    if isinstance(item, str):
        matches = [i for i, name in enumerate(choice.candidates) if name == item]
        if not matches:
            allowed = ", ".join(repr(c) for c in choice.candidates)
            raise ArchitectureError(
                f"{where}: unknown candidate {item!r}{did_you_mean(item, choice.candidates)}; allowed: {allowed}"
            )
        if len(matches) > 1:
            raise ArchitectureError(f"{where}: candidate name {item!r} is ambiguous; give _idx")
        return matches[0]
    raise ArchitectureError(
        f"{where}: expected a candidate name or index, got {_kind(item)}; {_forms(choice)}"
    )


def _forms(choice: LayerChoiceSpec | InputChoiceSpec) -> str:
    """The decision forms a choice accepts, for error messages."""
    n = len(choice.candidates)
    if isinstance(choice, LayerChoiceSpec):
        return (
            'accepted: a candidate name, an index, {"_value": name, "_idx": index}, '
            f"or NNI's multi-hot list of {n} booleans (or floats) with one true entry"
        )
    return (
        'accepted: a candidate name or index, a list of names or indices, {"_value": [names], '
        f'"_idx": [indices]}}, or NNI\'s multi-hot list of {n} booleans (or floats)'
    )


def _is_multi_hot(choice: LayerChoiceSpec | InputChoiceSpec, value: list[Any], where: str) -> bool:
    """True for NNI's multi-hot list (all booleans or all floats); a list mixing them is refused."""
    kinds = {bool if isinstance(v, bool) else float if isinstance(v, float) else object for v in value}
    if kinds <= {object}:
        return False
    if len(kinds) > 1:
        raise ArchitectureError(
            f"{where}: {value!r} mixes booleans or floats with other values; {_forms(choice)}"
        )
    return True


def _multi_hot_decision(
    choice: LayerChoiceSpec | InputChoiceSpec, value: list[Any], source: str
) -> LayerDecision | InputDecision:
    """Read NNI's multi-hot list: the true (or > 0) entries are the chosen candidates."""
    kind = "LayerChoice" if isinstance(choice, LayerChoiceSpec) else "InputChoice"
    where = f"{source}: {kind} {choice.key!r}: NNI's multi-hot form"
    n = len(choice.candidates)
    if len(value) != n:
        raise ArchitectureError(
            f"{where} needs {n} entries (one per candidate: {', '.join(choice.candidates)}), "
            f"got {len(value)}; {_forms(choice)}"
        )
    chosen = tuple(i for i, v in enumerate(value) if v > 0)
    names = tuple(choice.candidates[i] for i in chosen)
    if isinstance(choice, LayerChoiceSpec):
        if len(chosen) != 1:
            picked = f" ({', '.join(names)})" if names else ""
            raise ArchitectureError(
                f"{where} needs exactly one true entry, got {len(chosen)}{picked}; {_forms(choice)}"
            )
        return LayerDecision(chosen[0], names[0])
    if choice.n_chosen is not None and len(chosen) != choice.n_chosen:
        entries = "entry" if choice.n_chosen == 1 else "entries"
        raise ArchitectureError(
            f"{where} needs exactly {choice.n_chosen} true {entries} (n_chosen), got {len(chosen)}; "
            f"{_forms(choice)}"
        )
    return InputDecision(chosen, names)


def _parse_decision(choice: ChoiceSpec, value: Any, source: str) -> Decision:
    where = f"{source}: {choice.key!r}"
    if isinstance(choice, HyperParameterSpec):
        return _check_hyperparameter(choice, value, where)
    if isinstance(value, list) and _is_multi_hot(choice, value, where):
        return _multi_hot_decision(choice, value, source)
    if isinstance(value, Mapping):
        extra = [k for k in value if k not in ("_value", "_idx")]
        if extra or not value:
            raise ArchitectureError(f"{where}: expected _value and/or _idx, got field(s) {list(value)}")
        idx, name = value.get("_idx"), value.get("_value")
    else:
        idx, name = None, value
    if isinstance(choice, LayerChoiceSpec):
        return _layer_decision(choice, idx, name, where)
    return _input_decision(choice, idx, name, where)


def _layer_decision(choice: LayerChoiceSpec, idx: Any, name: Any, where: str) -> LayerDecision:
    if isinstance(idx, list) or isinstance(name, list):
        raise ArchitectureError(
            f"{where}: a layer choice takes exactly one candidate, got a list; {_forms(choice)}"
        )
    index = _lookup(choice, idx if idx is not None else name, where)
    if idx is not None and name is not None and choice.candidates[index] != name:
        raise ArchitectureError(
            f"{where}: _idx {index} is {choice.candidates[index]!r} but _value says {name!r}"
        )
    return LayerDecision(index, choice.candidates[index])


def _input_decision(choice: InputChoiceSpec, idx: Any, names: Any, where: str) -> InputDecision:
    if isinstance(names, (str, int)) and not isinstance(names, bool):
        names = [names]
    if isinstance(idx, int) and not isinstance(idx, bool):
        idx = [idx]
    for label, items in (("_idx", idx), ("_value", names)):
        if items is not None and not isinstance(items, list):
            raise ArchitectureError(
                f"{where}: {label} of an input choice must be a list, got {_kind(items)}; {_forms(choice)}"
            )
    if idx is None and names is None:
        raise ArchitectureError(f"{where}: got null; {_forms(choice)}")
    indices = [_lookup(choice, item, where) for item in (idx if idx is not None else names)]
    if len(set(indices)) != len(indices):
        raise ArchitectureError(f"{where}: a candidate is chosen twice in {indices}")
    if names is not None and idx is not None and [choice.candidates[i] for i in indices] != list(names):
        raise ArchitectureError(f"{where}: _idx {indices} does not match _value {names}")
    if choice.n_chosen is not None and len(indices) != choice.n_chosen:
        raise ArchitectureError(
            f"{where}: must choose exactly {choice.n_chosen} input(s), got {len(indices)}"
        )
    return InputDecision(tuple(indices), tuple(choice.candidates[i] for i in indices))


def _check_hyperparameter(choice: HyperParameterSpec, value: Any, where: str) -> Any:
    if choice.type == "choice":
        if value not in choice.args:
            raise ArchitectureError(f"{where}: {value!r} is not one of {list(choice.args)}")
        return value
    if not is_number(value):
        raise ArchitectureError(
            f"{where}: {choice.type} takes a finite number, got {repr(value) if isinstance(value, float) else _kind(value)}"
        )
    if choice.type == "randint" and not (is_whole(value) and choice.args[0] <= value < choice.args[1]):
        raise ArchitectureError(
            f"{where}: randint takes a whole number in [{choice.args[0]}, {choice.args[1]})"
        )
    if choice.type in ("uniform", "quniform", "loguniform", "qloguniform") and not (
        choice.args[0] <= value <= choice.args[1]
    ):
        raise ArchitectureError(
            f"{where}: {choice.type} takes a number in [{choice.args[0]}, {choice.args[1]}]"
        )
    return value
