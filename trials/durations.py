"""Durations as people write them: the config's ``maxTrialDuration: 2h`` and ``nasctl update duration 30m``.

One reading for every room: a number is seconds; a string is a decimal number and a unit ``s``,
``m``, ``h`` or ``d`` (NNI's units, any case, spaces allowed around them). A command-line argument
is always text, so there a bare number (``90``) also means seconds; in a config or a REST body the
number itself is written, and a string without a unit is refused as a likely mistake. The result
is finite, greater than zero and a float.
"""

from __future__ import annotations

import re
from typing import Any

from trials.numbers import as_float

DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", re.IGNORECASE | re.ASCII)


def parse_duration(value: Any, *, bare_text_is_seconds: bool = False) -> float:
    """Seconds from ``value`` (see the module docstring); ValueError when it is no duration.

    ``bare_text_is_seconds``: a string without a unit counts as seconds (command-line arguments).
    Callers catch the ValueError and name their own field in their own message.
    """
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is None or not (match.group(2) or bare_text_is_seconds):
            raise ValueError(f"not a duration: {value!r}")
        seconds = as_float(float(match.group(1)) * DURATION_UNITS[match.group(2).lower() or "s"])
    else:
        seconds = as_float(value)
    if seconds is None or seconds <= 0:
        raise ValueError(f"not a duration > 0: {value!r}")
    return seconds
