"""maxConsecutiveFailures: an experiment whose trials keep failing ends in ERROR and says why.

The loop runs unchanged on the simulated cluster of tests/test_loop_states.py; each trial's
behaviour comes from the letters of its command, one per sequence id (F fails, S succeeds,
H hangs until it is killed), so the order trials end in is the test's to choose.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL_SPACE
from test_loop_states import Lab, scenario_with

from manager.config import ConfigError, ExperimentConfig, parse_config
from manager.config.schema import DEFAULT_MAX_CONSECUTIVE_FAILURES
from manager.loop.active_trial import TrialEnd
from manager.loop.failure_streak import FailureStreak
from manager.training.base import TrialSpec
from manager.training.simulated import Report, TrialScript
from trials.status import ExperimentStatus, TrialStatus

FAILS = "exit code 3: boom"


def lettered(spec: TrialSpec, parameter: Mapping[str, Any]) -> TrialScript:
    """``F``/``S``/``H`` by sequence id (the last letter repeats); an optional second word: seconds."""
    letters, *rest = spec.command.split()
    duration = float(rest[0]) if rest else 10.0
    letter = letters[min(spec.sequence_id, len(letters) - 1)]
    if letter == "S":
        return TrialScript.succeeding(0.5, duration=duration)
    if letter == "H":
        return TrialScript((Report(1.0, 0.1),), duration=None)
    return TrialScript((Report(1.0, 0.1),), duration=duration, exit_code=3, stderr="Traceback\nboom\n")


scenario = scenario_with(lettered)  # SMALL_SPACE has 6 architectures: at most 6 trials


def statuses(lab: Lab, experiment_id: str) -> list[TrialStatus]:
    return [t.status for t in lab.trials(experiment_id)]


# -- the loop ---------------------------------------------------------------------------------


@scenario
async def test_the_limit_of_failed_trials_in_a_row_ends_the_experiment_in_error_saying_why(lab: Lab) -> None:
    exp = await lab.create("F", maxTrialNumber=20, maxConsecutiveFailures=3)
    assert await lab.finished(exp) is ExperimentStatus.ERROR
    assert statuses(lab, exp) == [TrialStatus.FAILED] * 3
    message = f"stopped after 3 consecutive failed trials (maxConsecutiveFailures: 3); the last: {FAILS}"
    assert lab.manager.get(exp).error == message


@scenario
async def test_without_the_key_five_failures_in_a_row_end_the_experiment(lab: Lab) -> None:
    exp = await lab.create("F", maxTrialNumber=20)
    assert await lab.finished(exp) is ExperimentStatus.ERROR
    assert statuses(lab, exp) == [TrialStatus.FAILED] * 5


@scenario
async def test_a_trial_that_succeeds_starts_the_count_again(lab: Lab) -> None:
    exp = await lab.create("FFSFF", maxTrialNumber=5, maxConsecutiveFailures=3)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert statuses(lab, exp).count(TrialStatus.FAILED) == 4


@scenario
async def test_zero_turns_the_limit_off(lab: Lab) -> None:
    exp = await lab.create("F", maxTrialNumber=6, maxConsecutiveFailures=0)
    assert await lab.finished(exp) is ExperimentStatus.DONE
    assert statuses(lab, exp) == [TrialStatus.FAILED] * 6


@scenario
async def test_trials_still_running_at_the_stop_are_cancelled_and_give_their_places_back(lab: Lab) -> None:
    exp = await lab.create("FFH 5", maxTrialNumber=10, trialConcurrency=3, maxConsecutiveFailures=2)
    assert await lab.finished(exp) is ExperimentStatus.ERROR
    trials = lab.trials(exp)
    hanging = trials[2]
    assert hanging.status is TrialStatus.SYS_CANCELED
    assert hanging.reason is not None and hanging.reason.startswith(
        "stopped after 2 consecutive failed trials"
    )
    assert lab.cluster.running == []
    record = lab.manager.get(exp)
    assert record.budget_used == sum(t.status is TrialStatus.FAILED for t in trials)


@scenario
async def test_a_resume_counts_from_zero(lab: Lab) -> None:
    exp = await lab.create("F", maxTrialNumber=20, maxConsecutiveFailures=2)
    assert await lab.finished(exp) is ExperimentStatus.ERROR
    await lab.manager.resume(exp)
    assert await lab.finished(exp) is ExperimentStatus.ERROR
    assert statuses(lab, exp) == [TrialStatus.FAILED] * 4  # two more, not one


# -- what counts ------------------------------------------------------------------------------


def test_cancelled_trials_neither_count_nor_break_the_streak() -> None:
    streak = FailureStreak(2)
    assert streak.ended(TrialEnd(TrialStatus.FAILED, "exit code 1")) is None
    assert streak.ended(TrialEnd(TrialStatus.USER_CANCELED, "canceled by user")) is None
    assert streak.ended(TrialEnd(TrialStatus.SYS_CANCELED, "experiment stopped")) is None
    stop = streak.ended(TrialEnd(TrialStatus.FAILED, "exit code 1"))
    assert stop is not None and stop.final is ExperimentStatus.ERROR


def test_an_early_stopped_trial_breaks_the_streak() -> None:
    streak = FailureStreak(2)
    streak.ended(TrialEnd(TrialStatus.FAILED, "exit code 1"))
    streak.ended(TrialEnd(TrialStatus.EARLY_STOPPED, "assessor"))
    assert streak.ended(TrialEnd(TrialStatus.FAILED, "exit code 1")) is None


def test_a_trial_whose_machine_was_lost_does_not_count() -> None:
    streak = FailureStreak(2)
    streak.ended(TrialEnd(TrialStatus.FAILED, "exit code 1"))
    assert streak.ended(TrialEnd(TrialStatus.FAILED, "node 10.0.0.7 died"), counted=False) is None
    assert streak.count == 1


def test_without_a_limit_no_streak_stops_the_experiment() -> None:
    streak = FailureStreak(None)
    assert all(streak.ended(TrialEnd(TrialStatus.FAILED, None)) is None for _ in range(100))


# -- the config key ---------------------------------------------------------------------------


def config(tmp_path: Path, **keys: Any) -> ExperimentConfig:
    return parse_config({"trialCommand": "x", "searchSpace": SMALL_SPACE, **keys}, tmp_path, "exp.yaml")


@pytest.mark.parametrize(("value", "limit"), [(None, None), (0, None), (1, 1), (12, 12), (3.0, 3)])
def test_max_consecutive_failures_reads_a_count_or_off(tmp_path: Path, value: Any, limit: int | None) -> None:
    assert config(tmp_path, maxConsecutiveFailures=value).max_consecutive_failures == limit


def test_max_consecutive_failures_defaults_to_five(tmp_path: Path) -> None:
    assert config(tmp_path).max_consecutive_failures == 5


@pytest.mark.parametrize("value", [-1, 2.5, "5", True, [5], 2**31])
def test_a_bad_max_consecutive_failures_names_the_key_and_what_is_allowed(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        config(tmp_path, maxConsecutiveFailures=value)
    assert str(info.value).startswith(
        "exp.yaml: maxConsecutiveFailures: must be a whole number from 1 to 2147483647 (failed trials in a "
        "row that end the experiment), or 0 or null to never stop for failures, got "
    )


@pytest.mark.parametrize("value", [None, 0, 7])
def test_max_consecutive_failures_survives_the_stored_form(tmp_path: Path, value: Any) -> None:
    parsed = config(tmp_path, maxConsecutiveFailures=value)
    assert ExperimentConfig.from_json(parsed.to_json()) == parsed
    written = parsed.to_json()["maxConsecutiveFailures"]  # what an exported config says
    assert config(tmp_path, maxConsecutiveFailures=written) == parsed


def test_a_config_stored_before_the_key_existed_gets_the_default(tmp_path: Path) -> None:
    stored = config(tmp_path).to_json()
    del stored["maxConsecutiveFailures"]
    assert ExperimentConfig.from_json(stored).max_consecutive_failures == DEFAULT_MAX_CONSECUTIVE_FAILURES
