"""PPOTuner: a learned policy, batches at any concurrency, failures that still complete a batch.

What every built-in promises (valid proposals, seeds, checkpoints, imports, failures) is
tested once in tests/contracts/test_tuner.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from spaces import inputs, layer, space

from manager.config import TunerConfig
from manager.tuners.base import NoMoreTrials, TunerError
from manager.tuners.ppo import PPOTuner
from manager.tuners.registry import check_tuner_config
from trials.searchspace import SearchSpace

REPO = Path(__file__).resolve().parents[1]


#: 4 keys of 4 candidates: 256 architectures; the planted optimum is TARGET.
PLANTED = space({f"k{i}": layer("a", "b", "c", "d") for i in range(4)})
TARGET = (3, 1, 0, 2)


def ppo(search_space: SearchSpace, **kwargs: Any) -> PPOTuner:
    kwargs.setdefault("optimize_mode", "maximize")
    kwargs.setdefault("seed", 0)
    tuner = PPOTuner(**kwargs)
    tuner.update_search_space(search_space)
    return tuner


def matches(arch: dict[str, Any]) -> float:
    return float(sum(arch[f"k{i}"]["_idx"] == t for i, t in enumerate(TARGET)))


def run(
    tuner: PPOTuner, trials: int, objective: Callable[[dict[str, Any]], float] = matches, start: int = 0
) -> list[dict[str, Any]]:
    archs = []
    for i in range(start, start + trials):
        arch = tuner.generate_parameters(i)
        archs.append(arch)
        tuner.receive_trial_result(i, arch, objective(arch))
        tuner.trial_end(i, True)
    return archs


def freeze(arch: dict[str, Any]) -> str:
    return json.dumps(arch, sort_keys=True)


# -- the search ----------------------------------------------------------------------------------


def test_learns_a_planted_optimum_within_a_bounded_number_of_trials() -> None:
    found_at = []
    for seed in range(5):
        tuner = ppo(PLANTED, seed=seed)
        for i in range(PLANTED.size() or 0):
            arch = tuner.generate_parameters(i)
            tuner.receive_trial_result(i, arch, matches(arch))
            if matches(arch) == 4:
                found_at.append(i + 1)
                break
    # in a random order the optimum of 256 comes after 128.5 trials on average
    assert max(found_at) <= 128 and sum(found_at) / len(found_at) <= 64, found_at


def test_minimize_on_negated_results_proposes_exactly_what_maximize_does() -> None:
    maximized = run(ppo(PLANTED, seed=3), 30)
    minimized = run(ppo(PLANTED, seed=3, optimize_mode="minimize"), 30, lambda a: -matches(a))
    assert minimized == maximized


def test_equal_candidate_names_are_told_apart_by_index() -> None:
    tuner = ppo(space({"skip": inputs(2, 1, names=["", ""])}))
    chosen = {tuple(a["skip"]["_idx"]) for a in run(tuner, 2, lambda a: 0.0)}
    assert chosen == {(0,), (1,)}


def test_a_space_with_nothing_to_decide_has_one_architecture() -> None:
    tuner = ppo(space({"skip": inputs(3, 0)}))
    assert tuner.generate_parameters(0) == {"skip": {"_value": [], "_idx": []}}
    tuner.receive_trial_result(0, {"skip": []}, 1.0)
    with pytest.raises(NoMoreTrials):
        tuner.generate_parameters(1)


# -- concurrency and failures --------------------------------------------------------------------


def test_keeps_every_slot_busy_above_trials_per_update() -> None:
    tuner = ppo(PLANTED, trials_per_update=4, minibatch_size=2)
    pending = [tuner.generate_parameters(i) for i in range(12)]  # no TunerBusy, no barrier
    assert len({freeze(a) for a in pending}) == 12
    for i, arch in enumerate(pending[:4]):
        tuner.receive_trial_result(i, arch, matches(arch))
    assert tuner.updates == 1  # the first four finished trials made a batch; eight still run
    tuner.generate_parameters(12)


@pytest.mark.parametrize(
    "finish",
    [
        pytest.param(lambda t, i, a: t.trial_end(i, False), id="failed-or-cancelled"),
        pytest.param(lambda t, i, a: t.trial_end(i, True), id="succeeded-without-final-result"),
        pytest.param(lambda t, i, a: t.receive_trial_result(i, a, math.nan), id="nan-result"),
    ],
)
def test_a_trial_without_a_usable_result_still_completes_the_batch(
    finish: Callable[[PPOTuner, int, dict[str, Any]], None],
) -> None:
    tuner = ppo(PLANTED, trials_per_update=3, minibatch_size=1)
    archs = [tuner.generate_parameters(i) for i in range(3)]
    tuner.receive_trial_result(0, archs[0], 1.0)
    tuner.receive_trial_result(1, archs[1], 2.0)
    assert tuner.updates == 0
    finish(tuner, 2, archs[2])
    assert tuner.updates == 1


def test_a_result_after_a_trial_end_is_not_counted_twice() -> None:
    tuner = ppo(PLANTED, trials_per_update=2, minibatch_size=1)
    archs = [tuner.generate_parameters(i) for i in range(3)]
    tuner.trial_end(0, False)
    tuner.receive_trial_result(0, archs[0], 3.0)  # late: replaces the failure's reward in the batch
    assert tuner.updates == 0
    tuner.receive_trial_result(1, archs[1], 1.0)
    tuner.trial_end(1, True)
    assert tuner.updates == 1


# -- checkpoints and imports ---------------------------------------------------------------------


def test_a_checkpoint_for_another_space_is_refused() -> None:
    state = ppo(PLANTED).save_checkpoint()
    with pytest.raises(TunerError, match="another search space"):
        ppo(space({"a": layer("x", "y")})).load_checkpoint(state)


# -- configuration -------------------------------------------------------------------------------


def test_a_continuous_space_is_refused_at_create_with_nothing_created(daemon: Any, fast_config: Any) -> None:
    config = fast_config(
        searchSpace={"conv": layer("a", "b"), "drop": {"_type": "uniform", "_value": [0, 1]}},
        tuner={"name": "PPO", "classArgs": {"optimize_mode": "maximize"}},
    )
    response = daemon.client.post("/experiments", json={"config": config, "baseDir": "/"})
    assert response.status_code == 400
    assert "'drop'" in response.json()["detail"] and "PPO" in response.json()["detail"]
    assert daemon.client.get("/experiments").json() == []


def test_optimize_mode_is_required_and_options_are_checked() -> None:
    with pytest.raises(TunerError, match=r"classArgs\.optimize_mode: missing"):
        check_tuner_config(TunerConfig(name="PPOTuner", class_args={}))
    with pytest.raises(TunerError, match=r"classArgs\.lr: must be a number > 0"):
        check_tuner_config(TunerConfig(name="PPO", class_args={"optimize_mode": "maximize", "lr": 0}))
    with pytest.raises(TunerError, match=r"classArgs\.minibatch_size"):
        check_tuner_config(
            TunerConfig(
                name="PPO",
                class_args={"optimize_mode": "maximize", "trials_per_update": 2, "minibatch_size": 4},
            )
        )
    check_tuner_config(TunerConfig(name="PPO", class_args={"optimize_mode": "minimize", "gamma": 1}))


def test_torch_is_not_imported_to_check_a_config() -> None:
    code = (
        "import sys\n"
        "from manager.config import TunerConfig\n"
        "from manager.tuners.registry import check_tuner_config\n"
        "check_tuner_config(TunerConfig(name='PPO', class_args={'optimize_mode': 'maximize'}))\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
