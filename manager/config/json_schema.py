"""The experiment config as a JSON Schema: what the OpenAPI document shows for ``POST /experiments``.

It is built from the parser's own key tables and limits (:mod:`manager.config.parser`,
:mod:`manager.config.nni_v1`, the tuner, assessor and platform registries), so a key or a name
added there shows here. It describes each value on its own (type, range, the names allowed) and
refuses unknown keys, as the parser does; it never refuses a config the parser accepts (the
OpenAPI contract test sends configs that break it and expects a 400 for every one).

What no schema says is left to the parser, which answers 400 naming the field: that files and
folders exist, keys that exclude or need each other (``searchSpace`` or ``searchSpaceFile``,
Ray-only keys, ``constraints`` without ``objectives``), the values inside a search space, and each
tuner's and assessor's own ``classArgs``. :data:`BEYOND_SCHEMA` says so in the document.
"""

from __future__ import annotations

from typing import Any

from manager.assessors.registry import builtin_assessor_names
from manager.config import nni_v1
from manager.config.parser import (
    ALGORITHM_V2,
    FALSE_ONLY,
    IGNORED,
    INCLUDE_INTERMEDIATE,
    LOG_LEVELS,
    MAX_FAILURES,
    MODULE_NAME,
    PLACEMENT_STRATEGIES,
    PRELOAD,
    SERVICE_KEYS,
    V2_KEYS,
)
from manager.config.schema import MAX_COUNT
from manager.training.registry import platforms
from manager.tuners.registry import builtin_names
from trials.metrics import OPTIMIZE_MODES
from trials.searchspace import ALL_TYPES

#: The description of the config in the document: what a 400 may still say about a config that fits.
BEYOND_SCHEMA = (
    "The experiment YAML as JSON (NNI v2 keys; NNI v1 keys are translated). A config that fits this "
    "schema can still be refused (400, naming the field) for what a schema does not say: files and "
    "folders that must exist, keys that exclude or need each other, the values inside a search space, "
    "and each tuner's and assessor's classArgs."
)

_NULL: dict[str, Any] = {"type": "null"}
_ANY: dict[str, Any] = {}
_BOOLEAN: dict[str, Any] = {"type": "boolean"}
_STRING: dict[str, Any] = {"type": "string"}
#: A string with something besides white space (paths, commands, class names).
_TEXT: dict[str, Any] = {"type": "string", "pattern": r"\S"}
#: A Python module name, as trialPreload lists them.
_MODULE = f"^{MODULE_NAME.pattern}$"
_WS = r"[ \t\n\r\f\v]*"  # what the duration reader skips (ASCII white space only)
#: A duration string: a number and a unit (s, m, h, d, any case); trials.durations reads it.
_DURATION_TEXT = rf"^{_WS}[0-9]+(\.[0-9]+)?{_WS}[smhdSMHD]{_WS}$"
_DURATION: dict[str, Any] = {
    "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "pattern": _DURATION_TEXT}],
    "description": "seconds, or a string like '30m', '2h', '1d'",
}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null: the parser reads a null value as "not given" (its default)."""
    return {"anyOf": [schema, _NULL]}


def _count(minimum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": MAX_COUNT}


def _names(values: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def _section(properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A mapping with exactly these keys, each optional and each nullable."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {key: _nullable(value) for key, value in properties.items()},
    }


def _search_space() -> dict[str, Any]:
    entry = {
        "type": "object",
        "required": ["_type", "_value"],
        "properties": {"_type": _names(ALL_TYPES), "_value": _ANY},
    }
    return {"type": "object", "additionalProperties": entry}


def _algorithm(names: tuple[str, ...], v1_names: dict[str, str], ignored: tuple[str, ...]) -> dict[str, Any]:
    """A tuner or assessor section: a built-in ``name`` or a user's ``className``."""
    values = {
        "name": _names(names),
        "className": _TEXT,
        "codeDirectory": _TEXT,
        "classFileName": _TEXT,
        "classArgs": {"type": "object", "properties": {"optimize_mode": _names(OPTIMIZE_MODES)}},
    }
    properties = {key: values[key] for key in ALGORITHM_V2}
    for v1_key, v2_key in v1_names.items():
        properties[v1_key] = values[v2_key]
    properties.update(dict.fromkeys(ignored, _ANY))
    return _section(properties)


def _gpu_indices() -> dict[str, Any]:
    index = {"type": "integer", "minimum": 0}
    return {
        "anyOf": [
            {"type": "array", "items": index, "minItems": 1, "uniqueItems": True},
            index,
            {"type": "string", "pattern": r"^\s*[0-9]+\s*(,\s*[0-9]+\s*)*$"},
        ]
    }


def _training_service() -> dict[str, Any]:
    values = {
        "platform": _names(platforms()),
        "useActiveGpu": _BOOLEAN,
        "maxTrialNumberPerGpu": _count(1),
        "gpuIndices": _gpu_indices(),
        "address": _TEXT,
        "resources": {
            "type": "object",
            "propertyNames": {"pattern": r"\S", "not": {"enum": ["CPU", "GPU"]}},
            "additionalProperties": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_COUNT},
        },
        "placementStrategy": _names(PLACEMENT_STRATEGIES),
        "reuseMode": _BOOLEAN,
    }
    return _section({key: values[key] for key in SERVICE_KEYS})


def _v2_values() -> dict[str, dict[str, Any]]:
    objective = {
        "type": "object",
        "additionalProperties": False,
        "required": ["metric"],
        "properties": {"metric": {"type": "string", "minLength": 1}, "mode": _names(OPTIMIZE_MODES)},
    }
    values = {
        "experimentName": _STRING,
        "searchSpaceFile": _TEXT,
        "searchSpace": _search_space(),
        "modelFile": _TEXT,
        "trialCommand": _TEXT,
        "trialCodeDirectory": _TEXT,
        "trialConcurrency": _count(1),
        "trialGpuNumber": _count(0),
        "trialCpuNumber": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_COUNT},
        "maxTrialNumber": _count(1),
        "maxExperimentDuration": _DURATION,
        "maxTrialDuration": _DURATION,
        MAX_FAILURES: _count(0),
        PRELOAD: {
            "anyOf": [_BOOLEAN, {"type": "array", "items": {"type": "string", "pattern": _MODULE}}],
            "description": "modules a server imports once and forks each python trial from; true: [torch]",
        },
        "tuner": _algorithm(builtin_names(), nni_v1.TUNER_RENAMES, nni_v1.TUNER_IGNORED),
        "assessor": _algorithm(builtin_assessor_names(), nni_v1.ASSESSOR_RENAMES, nni_v1.ASSESSOR_IGNORED),
        "trainingService": _training_service(),
        "objectives": {"type": "array", "minItems": 1, "items": objective},
        "constraints": {"type": "array", "items": _STRING},
    }
    values["tuner"]["properties"][INCLUDE_INTERMEDIATE] = _nullable(_BOOLEAN)
    return {key: values[key] for key in V2_KEYS}


def _v1_values(v2: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """NNI v1's top-level keys, each taking what its v2 key takes."""
    service = v2["trainingService"]["properties"]
    values = {old: v2[new] for old, new in nni_v1.RENAMES.items()}
    trial = {sub: v2[key] for sub, key in nni_v1.TRIAL.items()}
    values["trial"] = _section({**trial, "nasMode": {"const": "classic_mode"}})
    values["localConfig"] = _section({old: service[new]["anyOf"][0] for old, new in nni_v1.LOCAL.items()})
    values["trainingServicePlatform"] = _names(platforms())
    return values


def _ignored_value(kind: str) -> dict[str, Any]:
    """What an accepted-and-ignored key's value is still checked against."""
    return {
        "string": _STRING,
        "bool": _BOOLEAN,
        "level": _names(LOG_LEVELS),
        "logCollection": _names(("http", "none")),
    }.get(kind, _ANY)


def config_schema() -> dict[str, Any]:
    """The JSON Schema of a config (a fresh dict each call: callers may change it)."""
    v2 = _v2_values()
    properties = {key: _nullable(value) for key, value in v2.items()}
    properties[MAX_FAILURES]["description"] = (
        "failed trials in a row that end the experiment; 0 or null: never"
    )
    properties.update({key: _nullable(value) for key, value in _v1_values(v2).items()})
    properties.update({key: _nullable({"const": False}) for key in FALSE_ONLY})
    properties.update({key: _nullable(_ignored_value(kind)) for key, kind in IGNORED.items()})
    return {
        "title": "ExperimentConfig",
        "type": "object",
        "description": BEYOND_SCHEMA,
        "additionalProperties": False,
        "properties": properties,
    }
