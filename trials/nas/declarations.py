"""The rules of a choice's arguments, shared by the PyTorch and the Keras mutables (no framework here).

Each check raises the one error both APIs give, naming the choice and what is allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trials.errors import MutableError

REDUCTIONS = ("sum", "mean", "concat", "none")
NO_KEY = ""

#: what ``kind`` a mutable class declares: the parse and the appliers read it instead of a class
LAYER, INPUT, SCOPE = "layer", "input", "scope"


def check_reduction(owner: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise MutableError(f"{owner}: reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")


def check_scope_key(key: Any) -> None:
    if key is None:
        raise MutableError("MutableScope needs a key")


def check_candidate_name(where: str, name: Any, taken: Sequence[str]) -> None:
    """A LayerChoice candidate's name: a non-empty string without '.', not used twice."""
    if not isinstance(name, str) or not name or "." in name:
        raise MutableError(f"{where}: candidate name {name!r} must be a non-empty string without '.'")
    if name in taken:
        raise MutableError(f"{where}: candidate name {name!r} appears twice")


def nested_choice_error(
    where: str, name: str, inner_kind: str, inner_key: str, inner_path: str
) -> MutableError:
    return MutableError(
        f"{where}: candidate {name!r} contains {inner_kind} {inner_key!r}"
        f"{' at ' + inner_path if inner_path else ''}; nested choices are not supported"
    )


def input_choice_args(
    where: str, n_candidates: int | None, choose_from: Sequence[str] | None, n_chosen: int | None
) -> tuple[int, list[str]]:
    """``(n_candidates, choose_from)`` filled in from each other, checked against ``n_chosen``."""
    if n_candidates is None and choose_from is None:
        raise MutableError(f"{where}: give n_candidates or choose_from")
    if choose_from is None:
        choose_from = [NO_KEY] * int(n_candidates or 0)
    choose_from = [str(c) for c in choose_from]
    if n_candidates is None:
        n_candidates = len(choose_from)
    if n_candidates <= 0:
        raise MutableError(f"{where}: n_candidates must be at least 1, got {n_candidates}")
    if n_candidates != len(choose_from):
        raise MutableError(
            f"{where}: n_candidates={n_candidates} but choose_from has {len(choose_from)} entries"
        )
    if n_chosen is not None and not 0 <= n_chosen <= n_candidates:
        raise MutableError(f"{where}: n_chosen must be None or 0..{n_candidates}, got {n_chosen}")
    return n_candidates, choose_from


def candidate_names(choose_from: Sequence[str]) -> list[str]:
    """Names in the search space: the ``choose_from`` keys, ``in<i>`` for inputs with no key."""
    taken = set(choose_from)
    names = []
    for i, source in enumerate(choose_from):
        name = source
        if source == NO_KEY:
            name = f"in{i}"
            while name in taken:
                name += "_"
            taken.add(name)
        names.append(name)
    return names


def mask_size_error(where: str, expected: int, shape: tuple[int, ...]) -> MutableError:
    return MutableError(f"{where}: mask needs {expected} entries, got shape {shape}")


def no_architecture_error(where: str) -> RuntimeError:
    return RuntimeError(
        f"{where} has no architecture yet: call "
        "get_and_apply_next_architecture(model) or apply_fixed_architecture(model, arch) "
        "before the forward pass"
    )


def inputs_in_order(where: str, choose_from: Sequence[str], inputs: Any) -> list[Any]:
    """An InputChoice's inputs as a list in ``choose_from`` order (given as a list or a dict)."""
    if isinstance(inputs, dict) or hasattr(inputs, "keys"):
        missing = [k for k in choose_from if k not in inputs]
        if missing:
            raise MutableError(f"{where}: inputs dict lacks key(s) {missing}")
        inputs = [inputs[k] for k in choose_from]
    inputs = list(inputs)
    if len(inputs) != len(choose_from):
        raise MutableError(f"{where}: expected {len(choose_from)} inputs, got {len(inputs)}")
    return inputs
