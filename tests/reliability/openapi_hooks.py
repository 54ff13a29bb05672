"""Schemathesis hooks of the OpenAPI contract test: bodies of ``POST /experiments`` made harmless.

The generator writes configs that fit the document, and a config that fits may be created and
run. So before a create body is sent, every value that would act on this machine is swapped for
a harmless value of the same validity (a valid value for a valid one, an invalid one left as it
is, so a body the schema refuses stays refused): the trial command becomes ``true``, folders
become the test's own, a custom tuner's module one that does not exist, modules to preload none,
Ray the local platform, and budgets and concurrency at most 2. A body with no search space and no command gets a tiny
valid one of each, so that some creates succeed and the stateful phase can follow the links from
a new experiment. ``NASCTL_CONTRACT_BASE_DIR`` names the folder the experiments start from.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis

from manager.config.parser import MODULE_NAME

CREATE_PATH = "/api/v1/experiments"
#: The most trials and the most at once a generated experiment may run.
CAP = 2
SPACE = {"op": {"_type": "choice", "_value": ["a", "b"]}}
ABSENT_MODULE = "nasctl_contract_absent.Tuner"
PATH_KEYS = ("trialCodeDirectory", "searchSpaceFile", "searchSpacePath", "modelFile")
COUNT_KEYS = ("maxTrialNumber", "maxTrialNum", "trialConcurrency")
SPACE_KEYS = ("searchSpace", "searchSpaceFile", "searchSpacePath", "modelFile")


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _harmless_config(config: dict[str, Any]) -> None:
    if _text(config.get("trialCommand")):
        config["trialCommand"] = "true"
    trial = config.get("trial")
    if isinstance(trial, dict):
        if _text(trial.get("command")):
            trial["command"] = "true"
        if _text(trial.get("codeDir")):
            trial["codeDir"] = "."
    for key in PATH_KEYS:
        if _text(config.get(key)):
            config[key] = "." if key == "trialCodeDirectory" else "absent.json"
    for key in COUNT_KEYS:
        if _count(config.get(key)):
            config[key] = min(config[key], CAP)
    if _count(config.get("trialGpuNumber")):
        config["trialGpuNumber"] = 0
    preload = config.get("trialPreload")
    if isinstance(preload, list) and all(isinstance(m, str) and MODULE_NAME.fullmatch(m) for m in preload):
        config["trialPreload"] = []  # no server importing the modules the generator named
    for section in ("tuner", "assessor"):
        algorithm = config.get(section)
        if isinstance(algorithm, dict):
            if _text(algorithm.get("className")):
                algorithm["className"] = ABSENT_MODULE
            for key in ("codeDirectory", "codeDir"):
                if _text(algorithm.get(key)):
                    algorithm[key] = "."
    service = config.get("trainingService")
    if isinstance(service, dict) and service.get("platform") == "ray":
        service["platform"] = "local"
    if config.get("trainingServicePlatform") == "ray":
        config["trainingServicePlatform"] = "local"
    if not any(key in config for key in ("trialCommand", "trial")):
        config["trialCommand"] = "true"
    if not any(key in config for key in SPACE_KEYS):
        config["searchSpace"] = SPACE
    if not any(config.get(key) is not None for key in ("maxTrialNumber", "maxTrialNum")):
        config.pop("maxTrialNum", None)
        config["maxTrialNumber"] = CAP


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: Any) -> Any:
    """Every case of every phase passes here (a body hook would miss the coverage phase)."""
    operation = context.operation
    if operation is None or operation.method.upper() != "POST" or operation.path != CREATE_PATH:
        return case
    body = case.body
    if isinstance(body, dict):
        if _text(body.get("baseDir")) and body["baseDir"].startswith("/"):
            body["baseDir"] = os.environ["NASCTL_CONTRACT_BASE_DIR"]
        if isinstance(body.get("config"), dict):
            _harmless_config(body["config"])
    return case
