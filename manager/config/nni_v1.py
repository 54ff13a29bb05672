"""NNI v1 config keys, translated to their v2 spelling so that users' old files keep working.

v1 wrote ``maxTrialNum``, ``maxExecDuration``, ``searchSpacePath``, ``trainingServicePlatform``,
``trial: {command, codeDir, gpuNum}``, ``localConfig: {...}``, ``tuner: {builtinTunerName,
codeDir}`` and ``assessor: {builtinAssessorName, codeDir}``. Each value is handed on under its v2 key but keeps the label the user wrote, so a
message names the key that is in the file (``trial.command: must be a non-empty string``).
Keys v1 had that nasctl does not need are ignored; those that would mean something nasctl does
not do are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from manager.config.values import ValueReader, describe

#: Top-level keys renamed to their v2 spelling.
RENAMES = {
    "maxTrialNum": "maxTrialNumber",
    "maxExecDuration": "maxExperimentDuration",
    "searchSpacePath": "searchSpaceFile",
}
#: ``trial:`` section -> v2 top-level keys.
TRIAL = {"command": "trialCommand", "codeDir": "trialCodeDirectory", "gpuNum": "trialGpuNumber"}
TRIAL_KEYS = (*TRIAL, "nasMode")
#: ``localConfig:`` -> v2 ``trainingService`` keys.
LOCAL = {
    "gpuIndices": "gpuIndices",
    "maxTrialNumPerGpu": "maxTrialNumberPerGpu",
    "useActiveGpu": "useActiveGpu",
}
#: ``tuner:`` keys renamed to their v2 spelling, and those ignored.
TUNER_RENAMES = {"builtinTunerName": "name", "codeDir": "codeDirectory"}
TUNER_IGNORED = ("gpuIndices", "checkpointDir")
#: ``assessor:`` keys renamed to their v2 spelling, and those ignored.
ASSESSOR_RENAMES = {"builtinAssessorName": "name", "codeDir": "codeDirectory"}
ASSESSOR_IGNORED = ("gpuIndices", "checkpointDir")
#: v1-only keys accepted and ignored -> the kind of value checked (so a typo in a value still shows).
IGNORED = {
    "authorName": "string",
    "description": "string",
    "logDir": "string",
    "logCollection": "logCollection",
    "versionCheck": "bool",
    "multiThread": "bool",
}
#: v1-only keys that mean something nasctl does not do; silently ignoring them would mislead.
UNSUPPORTED = {
    "machineList": "remote machines are not supported; use trainingService platform local",
    "remoteConfig": "remote machines are not supported; use trainingService platform local",
    "paiConfig": "OpenPAI is not supported; use trainingService platform local",
    "kubeflowConfig": "Kubeflow is not supported; use trainingService platform local",
    "frameworkcontrollerConfig": "FrameworkController is not supported; use platform local",
    "amlConfig": "AML is not supported; use trainingService platform local",
    "dltsConfig": "DLTS is not supported; use trainingService platform local",
}
#: v1 ``trainingServicePlatform`` values of clusters nasctl does not drive -> why, for the message.
UNSUPPORTED_PLATFORMS = {
    "remote": "remote machines (SSH)",
    "pai": "OpenPAI",
    "paiYarn": "OpenPAI on YARN",
    "kubeflow": "Kubeflow",
    "frameworkcontroller": "FrameworkController",
    "dlts": "DLTS",
    "aml": "Azure Machine Learning",
}
#: The top-level keys :func:`translate` turns into v2 fields.
TRANSLATED = (*RENAMES, "trial", "localConfig", "trainingServicePlatform")

#: Receives one v2 field: (v2 key, the label the user wrote, value).
Put = Callable[[str, str, Any], None]


def translate(reader: ValueReader, key: str, value: Any, put_field: Put, put_service: Put) -> None:
    """Hand on the v2 fields that the v1 top-level ``key`` (one of :data:`TRANSLATED`) stands for.

    Top-level fields go to ``put_field``, ``trainingService`` ones to ``put_service``.
    """
    if key in RENAMES:
        put_field(RENAMES[key], key, value)
    elif key == "trainingServicePlatform":
        if isinstance(value, str) and value in UNSUPPORTED_PLATFORMS:
            raise reader.fail(
                key,
                f"{UNSUPPORTED_PLATFORMS[value]} ({value}) is not supported; nasctl runs trials on local or ray",
            )
        put_service("platform", key, value)
    elif value is None:
        return
    elif key == "trial":
        trial = reader.mapping(value, "trial")
        reader.check_keys(trial, TRIAL_KEYS, TRIAL_KEYS, "trial")
        for sub, item in trial.items():
            if sub == "nasMode":
                if item not in (None, "classic_mode"):
                    raise reader.fail(
                        "trial.nasMode", f"only classic_mode is supported, got {describe(item)}"
                    )
                continue
            put_field(TRIAL[sub], f"trial.{sub}", item)
    elif key == "localConfig":
        local = reader.mapping(value, "localConfig")
        reader.check_keys(local, tuple(LOCAL), tuple(LOCAL), "localConfig")
        for sub, item in local.items():
            put_service(LOCAL[sub], f"localConfig.{sub}", item)
    else:
        raise ValueError(f"{key!r} is not an NNI v1 key that translates")
