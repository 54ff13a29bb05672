"""One trial as a typed record, and a table of them for pandas.

The REST API sends camelCase dicts (docs/rest.md); a script or a notebook wants attribute access,
an enum for the status and numbers where NaN came as text. :class:`Trial` is that record; it is
frozen because it is a snapshot of the daemon's answer, not a handle that changes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trials.status import TrialStatus

#: Column prefixes of :func:`trials_dataframe`: ``choice.conv1``, ``metric.loss``.
CHOICE_PREFIX = "choice."
METRIC_PREFIX = "metric."
#: The columns every dataframe starts and ends with, whatever the choices and metrics.
LEADING_COLUMNS = ("id", "sequence_id", "status", "value")
TRAILING_COLUMNS = ("duration", "reason")
#: JSON cannot carry these floats; the REST API sends them as strings.
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@dataclass(frozen=True)
class Trial:
    """One trial as the daemon last reported it.

    ``architecture`` is the JSON a trial applied (``{"conv1": {"_value": "conv5x5", "_idx": 1}}``):
    pass it, or the file :meth:`write_architecture` writes, to ``apply_fixed_architecture`` to
    retrain. ``value`` is the number tuners compare (the ``default`` of a dict metric), ``metrics``
    every key of the final result (``{"default": value}`` for a plain number).
    """

    id: str
    sequence_id: int
    status: TrialStatus
    #: Left out of the hash (a dict cannot be hashed); equality still compares them.
    architecture: Mapping[str, Any] = field(default_factory=dict, hash=False)
    value: float | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict, hash=False)
    duration: float | None = None
    reason: str | None = None
    exit_code: int | None = None
    trial_dir: Path | None = None

    @classmethod
    def from_rest(cls, obj: Mapping[str, Any]) -> Trial:
        """The record of a REST ``Trial`` object."""
        value = _number(obj.get("finalMetric"))
        data = obj.get("finalMetricData")
        if isinstance(data, Mapping):
            metrics = {str(k): _number(v) for k, v in data.items()}
        else:
            metrics = {} if value is None else {"default": value}
        trial_dir = obj.get("trialDir")
        return cls(
            id=str(obj["id"]),
            sequence_id=int(obj.get("sequenceId") or 0),
            status=TrialStatus(obj["status"]),
            architecture=dict(obj.get("parameters") or {}),
            value=value,
            metrics=metrics,
            duration=_number(obj.get("duration")),
            reason=obj.get("reason"),
            exit_code=obj.get("exitCode"),
            trial_dir=Path(trial_dir) if trial_dir else None,
        )

    @property
    def choices(self) -> dict[str, Any]:
        """The short form ``{"conv1": "conv5x5", "skip": ["in1"]}``: each decision's chosen value."""
        return {key: _chosen(value) for key, value in self.architecture.items()}

    def write_architecture(self, path: str | Path) -> Path:
        """Write :attr:`architecture` as JSON (what ``retrain.py --arch FILE`` reads); returns the path."""
        path = Path(path)
        path.write_text(json.dumps(dict(self.architecture), indent=2, sort_keys=True) + "\n")
        return path


def trial_rows(trials: Iterable[Trial]) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and one row per trial of :func:`trials_dataframe`, without pandas.

    Columns: ``id sequence_id status value``, ``choice.<key>`` per decision, ``metric.<name>`` per
    key of the final metric dicts other than ``default`` (that one is ``value``), ``duration
    reason``. A list decision (an input choice) becomes a tuple, so a column can be grouped by.
    """
    trials = list(trials)
    choice_keys: dict[str, None] = {}
    metric_keys: dict[str, None] = {}
    for trial in trials:
        choice_keys.update(dict.fromkeys(trial.architecture))
        metric_keys.update(dict.fromkeys(k for k in trial.metrics if k != "default"))
    columns = [
        *LEADING_COLUMNS,
        *(CHOICE_PREFIX + key for key in choice_keys),
        *(METRIC_PREFIX + key for key in metric_keys),
        *TRAILING_COLUMNS,
    ]
    rows = []
    for trial in trials:
        choices = trial.choices
        row: dict[str, Any] = {
            "id": trial.id,
            "sequence_id": trial.sequence_id,
            "status": trial.status.value,
            "value": trial.value,
        }
        row.update({CHOICE_PREFIX + key: _hashable(choices.get(key)) for key in choice_keys})
        row.update({METRIC_PREFIX + key: trial.metrics.get(key) for key in metric_keys})
        row.update(duration=trial.duration, reason=trial.reason)
        rows.append(row)
    return columns, rows


def trials_dataframe(trials: Iterable[Trial]) -> Any:
    """A ``pandas.DataFrame`` of :func:`trial_rows`; an ImportError in one line without pandas."""
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "trials_dataframe needs pandas: pip install pandas (or pip install 'nasctl[notebook]')"
        ) from None
    columns, rows = trial_rows(trials)
    return pandas.DataFrame(rows, columns=columns)


def _number(value: Any) -> Any:
    """A metric as a float (NaN and infinities arrive as text); anything else stays as it came."""
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _chosen(value: Any) -> Any:
    if isinstance(value, Mapping) and ("_value" in value or "_idx" in value):
        return value.get("_value", value.get("_idx"))
    return value


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value
