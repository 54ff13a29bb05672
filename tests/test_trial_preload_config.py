"""``trialPreload``: which modules a warm launcher imports once for every trial, and its mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from manager.config import ConfigError, ExperimentConfig, parse_config


def parse(obj: dict[str, Any], base: Path) -> ExperimentConfig:
    return parse_config({"trialCommand": "python3 model.py", **obj}, base, source="exp.yaml")


@pytest.mark.parametrize(
    ("value", "modules"),
    [
        (True, ("torch",)),
        (False, ()),
        ([], ()),
        (["torch", "numpy", "torch"], ("torch", "numpy")),
        (["a.b"], ("a.b",)),
    ],
)
def test_trial_preload_names_the_modules_true_meaning_torch(
    tmp_path: Path, value: Any, modules: tuple
) -> None:
    config = parse({"trialPreload": value}, tmp_path)
    assert config.trial_preload == modules
    assert config.training_service.trial_preload == modules  # what the local service's factory sees


def test_without_trial_preload_trials_launch_cold(tmp_path: Path) -> None:
    assert parse({}, tmp_path).training_service.trial_preload == ()


def test_trial_preload_survives_the_stored_form_and_is_absent_when_off(tmp_path: Path) -> None:
    config = parse({"trialPreload": True}, tmp_path)
    again = ExperimentConfig.from_json(config.to_json())
    assert (again, again.training_service.trial_preload) == (config, ("torch",))
    assert "trialPreload" not in parse({}, tmp_path).to_json()


@pytest.mark.parametrize("value", ["torch", [1], ["torch numpy"], ["-m"], {"torch": True}])
def test_a_bad_trial_preload_says_what_is_allowed(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        parse({"trialPreload": value}, tmp_path)
    assert str(info.value).startswith(
        "exp.yaml: trialPreload: must be true (preload torch), false, or a list of module names such as "
        "[torch, numpy], got "
    )


def test_trial_preload_is_refused_off_the_local_platform(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse({"trialPreload": True, "trainingService": {"platform": "ray"}}, tmp_path)
    assert str(info.value) == (
        "exp.yaml: trialPreload: only for platform local (trials forked on this machine), but platform is ray"
    )
