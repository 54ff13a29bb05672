"""What the routes that change things read from a request body: a JSON object, and the limits a
PATCH changes; each with the schema the OpenAPI document shows for it."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from manager.config import MAX_COUNT
from manager.http.errors import ApiError
from manager.http.openapi import integer
from trials.durations import parse_duration
from trials.messages import did_you_mean
from trials.numbers import is_whole

PATCHABLE = ("trialConcurrency", "maxTrialNumber", "maxExperimentDuration")

#: The body of ``POST /experiments``.
CREATE_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["config", "baseDir"],
    "properties": {
        "config": {"type": "object", "description": "the experiment YAML as JSON"},
        "baseDir": {
            "type": "string",
            "description": "absolute folder that relative paths start from",
        },
    },
}

#: The body of ``PATCH /experiments/{id}`` (what :func:`parse_patch` accepts).
PATCH_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "trialConcurrency": integer(1, MAX_COUNT),
        "maxTrialNumber": {"anyOf": [integer(1, MAX_COUNT), {"type": "null"}]},
        "maxExperimentDuration": {
            "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}, {"type": "null"}]
        },
    },
}


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object; a 422 when it is not one."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(422, f"body: not valid JSON ({exc})") from None
    except RecursionError:
        raise ApiError(422, "body: nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(422, "body: must be a JSON object")
    return body


def parse_patch(body: Mapping[str, Any]) -> dict[str, Any]:
    """The limits a PATCH body changes (store field -> value); ApiError(400) naming a bad field."""
    if not body:
        raise ApiError(400, f"body: nothing to change; give any of {', '.join(PATCHABLE)}")
    changes: dict[str, Any] = {}
    for key, value in body.items():
        if key not in PATCHABLE:
            raise ApiError(
                400, f"unknown field {key!r}{did_you_mean(key, PATCHABLE)}; allowed: {', '.join(PATCHABLE)}"
            )
        if key == "trialConcurrency":
            if not is_whole(value) or not 1 <= value <= MAX_COUNT:
                raise ApiError(
                    400, f"trialConcurrency: must be a whole number from 1 to {MAX_COUNT}, got {show(value)}"
                )
            changes["trial_concurrency"] = int(value)
        elif key == "maxTrialNumber":
            if value is not None and (not is_whole(value) or not 1 <= value <= MAX_COUNT):
                raise ApiError(
                    400,
                    f"maxTrialNumber: must be a whole number from 1 to {MAX_COUNT} or null (no limit), "
                    f"got {show(value)}",
                )
            changes["max_trial_number"] = None if value is None else int(value)
        else:
            try:
                seconds = None if value is None else parse_duration(value)
            except ValueError:
                raise ApiError(
                    400,
                    "maxExperimentDuration: must be seconds > 0, a string like '30m' or '2h', or null "
                    f"(no limit), got {show(value)}",
                ) from None
            changes["max_experiment_duration"] = seconds
    return changes


def show(value: Any) -> str:
    """A JSON value as an error message quotes it (at most 60 characters)."""
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(value)
    return text if len(text) <= 60 else text[:60] + "..."
