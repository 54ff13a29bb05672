"""Every config the project ships in configs/ is valid as `nasctl create` checks it."""

from __future__ import annotations

from pathlib import Path

import pytest

from manager.config.parser import load_config
from manager.tuners.registry import check_tuner_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_shipped_config_is_valid(path: Path) -> None:
    config = load_config(path)
    check_tuner_config(config.tuner)
    assert config.trial_code_directory is not None and config.trial_code_directory.is_dir()


def test_the_asha_config_stops_trials_with_asha_on_digits() -> None:
    config = load_config(CONFIGS[0].parent / "digits-asha.yaml")
    assert config.assessor is not None and config.assessor.name == "ASHA"
    assert dict(config.assessor.class_args) == {
        "optimize_mode": "maximize",
        "grace_period": 1,
        "reduction_factor": 2,
    }


@pytest.mark.parametrize("name", ["digits-optuna.yaml", "nb201-optuna.yaml"])
def test_the_optuna_configs_search_with_optuna_seeded(name: str) -> None:
    config = load_config(CONFIGS[0].parent / name)
    assert config.tuner.name == "Optuna" and config.tuner.class_args["seed"] == 0
