"""What the routes that change things read from a request body: a JSON object, and the limits a
PATCH changes; each with the schema the OpenAPI document shows for it."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from manager.config import MAX_COUNT
from manager.config.json_schema import config_schema
from manager.http.errors import ApiError
from manager.http.openapi import integer
from trials.durations import parse_duration
from trials.messages import did_you_mean
from trials.numbers import is_whole

PATCHABLE = ("trialConcurrency", "maxTrialNumber", "maxExperimentDuration")
CREATE_FIELDS = ("config", "baseDir")
#: An absolute folder (POSIX): what ``baseDir`` must look like.
ABSOLUTE_PATH = "^/"
#: A duration the API takes as text: a number > 0 and a unit (the config file takes more spellings).
DURATION_TEXT = r"^([1-9][0-9]{0,8}(\.[0-9]{1,6})?|0\.[0-9]{0,5}[1-9])[smhdSMHD]$"

#: The body of ``POST /experiments`` (what :func:`parse_create` accepts before the config's own checks).
CREATE_BODY: dict[str, Any] = {
    "type": "object",
    "required": list(CREATE_FIELDS),
    "additionalProperties": False,
    "properties": {
        "config": config_schema(),
        "baseDir": {
            "type": "string",
            "pattern": ABSOLUTE_PATH,
            "description": "absolute folder that relative paths start from",
        },
    },
}

#: The body of ``PATCH /experiments/{id}`` (what :func:`parse_patch` accepts).
PATCH_BODY: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "trialConcurrency": integer(1, MAX_COUNT),
        "maxTrialNumber": {"anyOf": [integer(1, MAX_COUNT), {"type": "null"}]},
        "maxExperimentDuration": {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": DURATION_TEXT},
                {"type": "null"},
            ]
        },
    },
}


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object; a 400 when it is not one."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"body: not valid JSON ({exc})", "body") from None
    except RecursionError:
        raise ApiError(400, "body: nested too deeply", "body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body: must be a JSON object", "body")
    return body


def parse_create(body: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The config and the absolute base folder of a create body (:data:`CREATE_BODY`); ApiError(400)."""
    for key in body:
        if key not in CREATE_FIELDS:
            raise ApiError(
                400,
                f"body: unknown field {key!r}{did_you_mean(key, CREATE_FIELDS)}; allowed: config, baseDir",
                key,
            )
    if "config" not in body:
        raise ApiError(400, "body: missing 'config' (the experiment YAML as a JSON object)", "config")
    config = body["config"]
    if not isinstance(config, dict):
        raise ApiError(
            400, f"body: 'config' must be the experiment YAML as a JSON object, got {show(config)}", "config"
        )
    base_dir = body.get("baseDir")
    if not isinstance(base_dir, str) or not re.match(ABSOLUTE_PATH, base_dir):
        raise ApiError(
            400,
            f"baseDir: must be an absolute path (the folder of the YAML), got {show(base_dir)}",
            "baseDir",
        )
    return config, base_dir


def parse_patch(body: Mapping[str, Any]) -> dict[str, Any]:
    """The limits a PATCH body changes (store field -> value); ApiError(400) naming a bad field."""
    if not body:
        raise ApiError(400, f"body: nothing to change; give any of {', '.join(PATCHABLE)}", "body")
    changes: dict[str, Any] = {}
    for key, value in body.items():
        if key not in PATCHABLE:
            raise ApiError(
                400,
                f"unknown field {key!r}{did_you_mean(key, PATCHABLE)}; allowed: {', '.join(PATCHABLE)}",
                key,
            )
        if key == "trialConcurrency":
            if not is_whole(value) or not 1 <= value <= MAX_COUNT:
                raise ApiError(
                    400,
                    f"trialConcurrency: must be a whole number from 1 to {MAX_COUNT}, got {show(value)}",
                    key,
                )
            changes["trial_concurrency"] = int(value)
        elif key == "maxTrialNumber":
            if value is not None and (not is_whole(value) or not 1 <= value <= MAX_COUNT):
                raise ApiError(
                    400,
                    f"maxTrialNumber: must be a whole number from 1 to {MAX_COUNT} or null (no limit), "
                    f"got {show(value)}",
                    key,
                )
            changes["max_trial_number"] = None if value is None else int(value)
        else:
            try:
                if isinstance(value, str) and not re.fullmatch(DURATION_TEXT, value):
                    raise ValueError(value)
                seconds = None if value is None else parse_duration(value)
            except ValueError:
                raise ApiError(
                    400,
                    "maxExperimentDuration: must be seconds > 0, a string like '30m' or '2h', or null "
                    f"(no limit), got {show(value)}",
                    key,
                ) from None
            changes["max_experiment_duration"] = seconds
    return changes


def show(value: Any) -> str:
    """A JSON value as an error message quotes it (at most 60 characters)."""
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(value)
    return text if len(text) <= 60 else text[:60] + "..."
