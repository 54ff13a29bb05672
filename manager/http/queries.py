"""What every route reads from the address: query parameters and the experiment or trial it names.

Query parameters are parsed here rather than by FastAPI so that their errors read like the
config's (a 400 naming the parameter and what is allowed) and so that an empty value
(``?status=``, which some clients send for "unset") means "not given". The API's routes, the
dashboard's views and ``nasctl view-nas`` all parse with these. A route declares its parameters
as :class:`IntQuery` / :class:`ChoiceQuery` constants, reads them with ``.read(request)`` and
documents them with :func:`manager.http.openapi.documented`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from manager.http.errors import ApiError
from manager.http.openapi import enum, integer
from manager.store import ExperimentRecord, Store, TrialRecord
from trials.messages import did_you_mean

#: The largest integer a database column (SQLite's INTEGER) holds: larger ids or offsets are a 400.
MAX_SQL_INT = 2**63 - 1
#: The most trials (or best trials) one answer holds.
MAX_PAGE = 1000
#: What a whole-number parameter may look like: ASCII digits, a minus sign at most.
DIGITS = re.compile(r"-?[0-9]+")


def query(request: Request, name: str) -> str | None:
    """The parameter's text; None when absent or empty."""
    value = request.query_params.get(name)
    return value if value not in (None, "") else None


def int_query(request: Request, name: str, default: int, low: int, high: int | None = None) -> int:
    """A whole number in [low, high] (no upper bound but the database's when ``high`` is None)."""
    text = query(request, name)
    if text is None:
        return default
    allowed = f"a whole number from {low} to {high}" if high is not None else f"a whole number >= {low}"
    if not DIGITS.fullmatch(text):  # int() would also take " 5", "+5", "1_0" and other scripts' digits
        raise ApiError(400, f"{name}: must be {allowed}, got {text!r}", name)
    value = int(text)
    if value < low or (high is not None and value > high):
        raise ApiError(400, f"{name}: must be {allowed}, got {value}", name)
    if value > MAX_SQL_INT:  # the database cannot even compare with it
        raise ApiError(400, f"{name}: must be a whole number from {low} to {MAX_SQL_INT}, got {value}", name)
    return value


def choice_query(request: Request, name: str, options: tuple[str, ...], default: str | None) -> str | None:
    """One of ``options``; a 400 that lists them (and the nearest one) otherwise."""
    text = query(request, name)
    if text is None:
        return default
    if text not in options:
        raise ApiError(
            400,
            f"{name}: unknown value {text!r}{did_you_mean(text, options)}; allowed: {', '.join(options)}",
            name,
        )
    return text


@dataclass(frozen=True)
class IntQuery:
    """A whole-number query parameter: how to read it and how the OpenAPI document shows it."""

    name: str
    default: int
    low: int
    high: int | None = None

    def read(self, request: Request) -> int:
        return int_query(request, self.name, self.default, self.low, self.high)

    def schema(self) -> dict[str, Any]:
        return integer(self.low, MAX_SQL_INT if self.high is None else self.high)


@dataclass(frozen=True)
class ChoiceQuery:
    """A query parameter that takes one of a few words."""

    name: str
    options: tuple[str, ...]
    default: str | None = None

    def read(self, request: Request) -> str | None:
        return choice_query(request, self.name, self.options, self.default)

    def schema(self) -> dict[str, Any]:
        return enum(self.options)


def experiment_or_404(store: Store, experiment_id: str) -> ExperimentRecord:
    record = store.get_experiment(experiment_id)
    if record is None:
        raise ApiError(404, f"experiment {experiment_id!r} not found")
    return record


def trial_or_404(store: Store, experiment_id: str, trial_id: str) -> TrialRecord:
    experiment_or_404(store, experiment_id)
    trial = store.get_trial(experiment_id, trial_id)
    if trial is None:
        raise ApiError(404, f"trial {trial_id!r} not found in experiment {experiment_id}")
    return trial
