"""What the built-in assessors share: class-argument checks, the "worse than worst" rule, checkpoints.

Values are compared in the experiment's ``optimize_mode``; a NaN or infinite value (a diverged
trial) counts as the worst value possible, so it never crashes a rule and never saves a trial.
In a checkpoint such a value is stored as ``null`` (strict JSON has no infinity).

A checkpoint is a JSON object whose ``format`` field is ``"nasctl.<Assessor>/<version>"``;
:func:`open_checkpoint` refuses another one in one line, and :func:`reading` turns a missing
or malformed field into one :class:`AssessorError`, so loading is all or nothing.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from manager.assessors.base import AssessorError
from trials.metrics import OPTIMIZE_MODES

PREFIX = "nasctl."


def check_optimize_mode(mode: Any) -> None:
    if mode not in OPTIMIZE_MODES:
        raise AssessorError(f"assessor.classArgs.optimize_mode: must be maximize or minimize, got {mode!r}")


def check_int(name: str, value: Any, minimum: int) -> None:
    """``value`` is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AssessorError(f"assessor.classArgs.{name}: must be an integer >= {minimum}, got {value!r}")


def worst(mode: str) -> float:
    return -math.inf if mode == "maximize" else math.inf


def clean(values: Iterable[Any], mode: str) -> list[float]:
    """``values`` as floats, each NaN, infinite or non-number one replaced by the worst value."""
    out = []
    for value in values:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        out.append(number if math.isfinite(number) else worst(mode))
    return out


def better(a: float, b: float, mode: str) -> bool:
    """``a`` is strictly better than ``b``."""
    return a > b if mode == "maximize" else a < b


def best(values: Iterable[float], mode: str) -> float:
    """The best of ``values`` (the worst value when there are none)."""
    pick = max if mode == "maximize" else min
    return pick(values, default=worst(mode))


def fmt(value: float) -> str:
    """A value for a reason: four significant digits."""
    return f"{value:.4g}"


def values_to_json(values: Iterable[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]


def values_from_json(obj: Any, mode: str) -> list[float]:
    if not isinstance(obj, list):
        raise TypeError(f"expected a list of numbers, got {type(obj).__name__}")
    return [worst(mode) if v is None else float(v) for v in obj]


def envelope(kind: str, version: int, **fields: Any) -> dict[str, Any]:
    """A checkpoint: the ``format`` field first, then ``fields``."""
    return {"format": f"{PREFIX}{kind}/{version}", **fields}


def open_checkpoint(kind: str, version: int, state: Any) -> Mapping[str, Any]:
    """``state`` if it is ``kind``'s checkpoint of ``version``; else one AssessorError naming the problem."""
    tag = f"{PREFIX}{kind}/{version}"
    if not isinstance(state, Mapping):
        problem = f"not a JSON object but {type(state).__name__}"
    elif state.get("format") == tag:
        return state
    elif "format" not in state:
        problem = "no format field"
    else:
        problem = f"format {state['format']!r}"
    raise AssessorError(f"{kind}: cannot load the checkpoint: {problem} ({tag} expected)")


@contextlib.contextmanager
def reading(kind: str) -> Iterator[None]:
    """Reading a checkpoint's fields: a missing or malformed one is a damaged checkpoint."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AssessorError(f"{kind}: damaged checkpoint ({exc!r})") from None
