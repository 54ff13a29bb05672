"""What ``nasctl.Experiment(config)`` accepts, turned into what the daemon takes: a dict and a folder.

Three forms: a YAML path (relative paths in it resolve against its folder, as for ``nasctl create
--config``), a dict with the YAML's content (against the current folder, or ``base_dir=``), or the
manager's parsed ``ExperimentConfig`` (its paths are already absolute). The daemon validates the
result; nothing here imports the manager unless the caller already holds its config object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasctl.api.errors import InvalidConfig

#: Training-service keys kept even at their default value (the others are left out then).
_KEEP_ALWAYS = ("platform",)


@dataclass(frozen=True)
class ConfigSource:
    """The config as sent: its dict, the folder its relative paths resolve against, where it came from."""

    config: dict[str, Any]
    base_dir: Path
    origin: str


def read_config(config: Any, base_dir: str | os.PathLike[str] | None = None) -> ConfigSource:
    """The dict and base folder of ``config`` (a YAML path, a dict, or an ``ExperimentConfig``)."""
    if isinstance(config, (str, os.PathLike)):
        path = Path(config).expanduser()
        return ConfigSource(_load_yaml(path), Path(base_dir or path.resolve().parent).resolve(), str(path))
    if isinstance(config, Mapping):
        if not all(isinstance(key, str) for key in config):
            raise InvalidConfig("config: every key must be a string (the YAML's camelCase field names)")
        return ConfigSource(dict(config), Path(base_dir or Path.cwd()).resolve(), "config")
    if type(config).__name__ == "ExperimentConfig" and callable(getattr(config, "to_json", None)):
        return ConfigSource(_from_parsed(config), Path(base_dir or Path.cwd()).resolve(), "config")
    raise TypeError(
        "config must be a YAML path, a dict with the YAML's content or a manager.config.ExperimentConfig, "
        f"got {type(config).__name__}"
    )


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such config file") from None
    except OSError as exc:
        raise InvalidConfig(f"{path}: cannot read ({exc.strerror})") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InvalidConfig(f"{path}: not valid YAML{where}") from None
    if not isinstance(loaded, dict):
        raise InvalidConfig(f"{path}: must hold a mapping of config fields, got {type(loaded).__name__}")
    return loaded


def _from_parsed(config: Any) -> dict[str, Any]:
    """The stored form of a parsed config, without what the parser would refuse to read back.

    ``to_json`` writes every field, defaults and nulls included; the parser refuses nulls and
    Ray-only keys on ``platform: local`` even at their defaults, so both are left out.
    """
    from manager.config import ExperimentConfig

    defaults = ExperimentConfig(trial_command="-", trial_code_directory=Path(".")).to_json()
    stored = _without_nulls(config.to_json())
    for key in ("trialCpuNumber", "trialGpuNumber"):
        if key in stored and stored[key] == defaults[key]:
            del stored[key]
    service = stored.get("trainingService") or {}
    stored["trainingService"] = {
        key: value
        for key, value in service.items()
        if key in _KEEP_ALWAYS or value != defaults["trainingService"].get(key)
    }
    return stored


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    return value
