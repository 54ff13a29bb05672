"""An experiment YAML read for sending to the daemon, checked first by the manager's own validation.

Checking here (not only in the daemon) names the file in the error and needs no daemon; it is
one of the few places the CLI imports ``manager`` code, and only when a command reads a config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasctl.app import CliError


def load_experiment_config(path: Path) -> tuple[dict[str, Any], Path]:
    """The YAML as a dict and its folder, after the manager's own validation (so errors name the field)."""
    import yaml

    from manager.config import ConfigError, load_config

    if not path.is_file():
        raise CliError(f"{path}: no such file")
    try:
        load_config(path)
    except ConfigError as exc:
        message = str(exc)
        raise CliError(
            message if str(path) in message or path.name in message else f"{path}: {message}"
        ) from None
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:  # load_config read it a moment ago; this is a race
        raise CliError(f"{path}: cannot read ({exc})") from None
    return raw, path.resolve().parent
