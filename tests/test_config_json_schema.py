"""The config's JSON Schema (what the OpenAPI document shows for a create) never refuses a config
the parser accepts, and refuses the single bad values the parser refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from manager.config import ConfigError, parse_config
from manager.config.json_schema import config_schema
from manager.config.yaml_loader import load_yaml_mapping

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [*sorted((ROOT / "configs").glob("*.yaml")), ROOT / "tests/nni_port/config_ppo.yml"]
SPACE = {"op": {"_type": "choice", "_value": ["a", "b"]}}
VALIDATOR = Draft202012Validator(config_schema())


def minimal(**extra: Any) -> dict[str, Any]:
    return {"trialCommand": "python3 trial.py", "searchSpace": SPACE, **extra}


def fits(config: dict[str, Any]) -> bool:
    return VALIDATOR.is_valid(config)


def parses(config: dict[str, Any], base_dir: Path) -> bool:
    try:
        parse_config(config, base_dir)
    except ConfigError:
        return False
    return True


def test_the_schema_is_a_valid_json_schema() -> None:
    Draft202012Validator.check_schema(config_schema())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_fits_the_schema(path: Path) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(load_yaml_mapping(path, str(path)))]
    assert errors == []


ACCEPTED_SPELLINGS = {
    "v1 keys": {
        "trial": {"command": "python3 trial.py", "codeDir": ".", "gpuNum": 0},
        "maxTrialNum": 3,
        "maxExecDuration": "1h",
        "searchSpace": SPACE,
        "localConfig": {"gpuIndices": "0,1", "useActiveGpu": False},
        "trainingServicePlatform": "local",
        "tuner": {"builtinTunerName": "Random", "classArgs": {"optimize_mode": "minimize"}},
        "authorName": "someone",
        "logCollection": "none",
    },
    "nulls mean not given": minimal(
        maxTrialNumber=None, tuner=None, trainingService={"platform": None}, maxConsecutiveFailures=None
    ),
    "durations with spaces and units in any case": minimal(
        maxTrialDuration=" 2 H", maxExperimentDuration=90.5
    ),
    "gpu indices as text, one number or a list": minimal(trainingService={"gpuIndices": " 0 , 2"}),
    "a whole number written as a float": minimal(trialConcurrency=2.0),
    "modules to preload": minimal(trialPreload=["torch", "trials.nas"]),
    "false-only keys as false": minimal(useAnnotation=False, multiPhase=None),
    "objectives with a default mode": minimal(
        objectives=[{"metric": "accuracy"}, {"metric": "ms", "mode": "minimize"}]
    ),
}


@pytest.mark.parametrize("config", ACCEPTED_SPELLINGS.values(), ids=ACCEPTED_SPELLINGS.keys())
def test_a_config_the_parser_accepts_fits_the_schema(config: dict[str, Any], tmp_path: Path) -> None:
    assert parses(config, tmp_path)
    assert fits(config), [e.message for e in VALIDATOR.iter_errors(config)]


REFUSED_VALUES = {
    "an unknown key": minimal(trialConcurency=2),
    "a key nasctl refuses": minimal(advisor={"name": "Hyperband"}),
    "concurrency 0": minimal(trialConcurrency=0),
    "a count past the database's integers": minimal(maxTrialNumber=2**31),
    "an unknown tuner": minimal(tuner={"name": "Annealing"}),
    "an unknown platform": minimal(trainingService={"platform": "remote"}),
    "a v1 platform of a cluster": minimal(trainingServicePlatform="pai"),
    "a duration without a unit": minimal(maxTrialDuration="10"),
    "a negative duration": minimal(maxTrialDuration=-1),
    "an empty command": {"trialCommand": "  ", "searchSpace": SPACE},
    "a search space entry of an unknown type": minimal(searchSpace={"x": {"_type": "pick", "_value": [1]}}),
    "a preload that is no module name": minimal(trialPreload=["torch-cpu"]),
    "an unknown log level": minimal(logLevel="loud"),
    "true for a false-only key": minimal(useAnnotation=True),
    "an objective's unknown mode": minimal(objectives=[{"metric": "a", "mode": "max"}]),
    "a gpu index twice": minimal(trainingService={"gpuIndices": [0, 0]}),
    "a CPU amount too large to count (was a 500)": minimal(
        trialCpuNumber=1.7e308, trainingService={"platform": "ray"}
    ),
    "Ray's CPU as a custom resource": minimal(trainingService={"platform": "ray", "resources": {"CPU": 1}}),
}


@pytest.mark.parametrize("config", REFUSED_VALUES.values(), ids=REFUSED_VALUES.keys())
def test_a_bad_value_the_parser_refuses_the_schema_refuses(config: dict[str, Any], tmp_path: Path) -> None:
    assert not parses(config, tmp_path)
    assert not fits(config)


def test_cross_field_rules_are_left_to_the_parser(tmp_path: Path) -> None:
    both = minimal(searchSpaceFile="space.json")  # searchSpace and searchSpaceFile exclude each other
    assert fits(both) and not parses(both, tmp_path)
