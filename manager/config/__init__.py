"""The experiment config: its schema, its validation, and NNI v1 -> v2 translation.

A config arrives as YAML (``nasctl create --config exp.yaml``) or as its JSON body over REST. It is
written in NNI v2's camelCase; NNI v1 keys (``maxTrialNum``, ``trial: {command, codeDir}``,
``tuner: {builtinTunerName}``, ...) are translated so that users' old files keep working.
Every error is one line that names the file, the field, what was wrong and what is allowed, because
the person reading it has to fix the file; an invalid config creates nothing.

The result is a frozen :class:`ExperimentConfig` whose :meth:`ExperimentConfig.to_json` is the
normalized v2 form the daemon stores and :meth:`ExperimentConfig.from_json` reloads.

Modules: ``schema`` (the frozen values and their JSON form), ``parser`` (the v2 fields and their
checks), ``nni_v1`` (the v1 key translation), ``values`` (single-value checks and messages),
``yaml_loader`` (strict YAML).
"""

from manager.config.parser import load_config, parse_config
from manager.config.schema import (
    DEFAULT_TUNER,
    MAX_COUNT,
    ConfigError,
    ExperimentConfig,
    TrainingServiceConfig,
    TunerConfig,
)

__all__ = [
    "DEFAULT_TUNER",
    "MAX_COUNT",
    "ConfigError",
    "ExperimentConfig",
    "TrainingServiceConfig",
    "TunerConfig",
    "load_config",
    "parse_config",
]
