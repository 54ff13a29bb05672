"""What counts as a number in a config, a search space, a REST body or a metric record.

These values come from JSON or YAML, so they are Python ``bool``, ``int`` or ``float`` (or
something else entirely). One answer for every room:

* ``bool`` is never a number, although Python makes it an ``int`` (``true`` is no count of 1).
* NaN and the infinities are not numbers here: no limit, bound or count can be one.
* An ``int`` of any size is a number, and a whole one: Python's ints are exact and finite, so
  ``10**400`` is simply too big for whatever range the caller checks next (and says so), never a
  crash. Where the value must become a float (search-space bounds, durations, times), ask
  :func:`as_float`, which refuses an int too large for one instead of raising OverflowError.
"""

from __future__ import annotations

import math
from typing import Any


def is_number(value: Any) -> bool:
    """An int (any size) or a finite float; never a bool, NaN or an infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def is_whole(value: Any) -> bool:
    """A number with no fraction: any int, or a finite float such as ``3.0``."""
    return is_number(value) and (isinstance(value, int) or value.is_integer())


def as_float(value: Any) -> float | None:
    """``value`` as a finite float; None when it is not a number or an int too large for a float."""
    if not is_number(value):
        return None
    try:
        return float(value)
    except OverflowError:
        return None
