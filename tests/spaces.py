"""Small search spaces for the tuners' tests, written as NNI's JSON."""

from __future__ import annotations

from typing import Any

from trials.searchspace import SearchSpace


def space(obj: dict[str, Any]) -> SearchSpace:
    return SearchSpace.from_json(obj)


def layer(*names: str) -> dict[str, Any]:
    return {"_type": "layer_choice", "_value": list(names)}


def inputs(n: int, n_chosen: int | None, names: list[str] | None = None) -> dict[str, Any]:
    """An input choice over ``names`` (default ``in0``..``in<n-1>``)."""
    candidates = names if names is not None else [f"in{i}" for i in range(n)]
    return {"_type": "input_choice", "_value": {"candidates": candidates, "n_chosen": n_chosen}}
