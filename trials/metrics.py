"""The metric record: the words a trial writes and the daemon reads, and how one record is read.

A trial appends one JSON object a line to its metrics channel (:mod:`trials.reporting` writes
it); the daemon parses each line with :func:`parse_metric_line`. Both sides, and the store, the
REST API and the tuners, take the record kinds, the number a metric stands for
(:func:`metric_default`) and the optimize modes from here, so they cannot drift apart.
Nothing here imports torch.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from trials.numbers import as_float

#: An intermediate result (one per epoch, say): assessors and charts read these.
PERIODICAL = "PERIODICAL"
#: The trial's result, the one tuners learn from.
FINAL = "FINAL"
METRIC_KINDS = (PERIODICAL, FINAL)

#: How a tuner reads a metric: larger is better, or smaller is.
OPTIMIZE_MODES = ("maximize", "minimize")


class MetricReport(NamedTuple):
    """One record a trial reported: ``value`` as reported, ``default_value`` the number tuners use.

    A NamedTuple rather than a frozen dataclass: every trial imports this module (for the record
    kinds), and ``dataclasses`` pulls in ``inspect``, 10 ms or more on each trial's start.
    """

    kind: str  # PERIODICAL or FINAL
    sequence: int
    value: float | int | dict[str, Any]
    default_value: float
    time_ms: int

    @property
    def is_final(self) -> bool:
        return self.kind == FINAL


def parse_metric_line(line: bytes | str) -> MetricReport:
    """One record of a metrics channel; ValueError with a reason a person can read."""
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a JSON record ({exc})") from None
    if not isinstance(record, dict):
        raise ValueError("a record must be a JSON object")
    kind = record.get("type")
    if kind not in METRIC_KINDS:
        raise ValueError(f"type must be {PERIODICAL} or {FINAL}, got {kind!r}")
    sequence = record.get("sequence", 0)
    if not isinstance(sequence, int) or isinstance(sequence, bool):
        raise ValueError(f"sequence must be a whole number, got {sequence!r}")
    value = record.get("value")
    default = metric_default(value)
    when = record.get("time")
    seconds = as_float(when)
    if seconds is None:
        raise ValueError(f"time must be seconds since the epoch, got {_short(when)}")
    return MetricReport(kind, sequence, value, default, int(seconds * 1000))


def metric_default(value: Any) -> float:
    """The number of a metric: itself, or the ``default`` of a dict metric; ValueError otherwise.

    NaN and the infinities are kept (a diverged trial reports them, and they are its result);
    an int too large for a float is refused rather than raising OverflowError.
    """
    if isinstance(value, dict):
        if "default" not in value:
            raise ValueError(f"a dict metric needs a 'default' key, got keys {sorted(value)}")
        value = value["default"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"metric must be a number or a dict with a numeric 'default', got {value!r}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"metric must fit a float, got {_short(value)}") from None


def _short(value: Any) -> str:
    """``repr`` of a value, except that a huge int is described rather than printed in full."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    return repr(value)
