"""The Assessor contract, run over every built-in assessor (and a user's NNI-style one) as the daemon builds it.

Each test states one promise of :class:`manager.assessors.base.Assessor` that the experiment loop
relies on. An assessor is built by the registry from its name (or class) and ``classArgs``, so
what is tested is what the daemon holds. A new built-in joins by adding its row to
:data:`ASSESSORS`. Each rule itself is tested with hand-made curves in
``tests/test_assessor_*.py``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from manager.assessors.base import Assessor, AssessorError, AssessResult
from manager.assessors.registry import create_assessor
from manager.config import TunerConfig

CUSTOM = Path(__file__).resolve().parents[1] / "data" / "custom_assessor"


@dataclass(frozen=True)
class Row:
    """An assessor as a config names it: a built-in's name, or a custom class from the test folder."""

    label: str
    class_args: dict[str, Any] = field(default_factory=dict)
    class_name: str | None = None
    #: Whether it keeps state in a nasctl checkpoint with a format field.
    formatted_checkpoint: bool = True

    def build(self, mode: str = "maximize") -> Assessor:
        args = {**self.class_args, "optimize_mode": mode}
        if self.class_name is None:
            return create_assessor(TunerConfig(name=self.label, class_args=args))
        config = TunerConfig(name=None, class_args=args, code_directory=CUSTOM, class_name=self.class_name)
        return create_assessor(config)


ASSESSORS = [
    Row("Medianstop"),
    Row("Curvefitting", {"epoch_num": 20, "start_step": 3}),
    Row("ASHA", {"grace_period": 1, "reduction_factor": 2}),
    Row("NNI-style", {"ratio": 0.5}, class_name="my_assessor.ThresholdAssessor", formatted_checkpoint=False),
]
MODES = ["maximize", "minimize"]


@pytest.fixture(params=ASSESSORS, ids=[row.label for row in ASSESSORS])
def row(request: pytest.FixtureRequest) -> Iterator[Row]:
    yield request.param


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def curve(top: float, steps: int = 10, mode: str = "maximize") -> list[float]:
    """A learning curve rising to about ``top`` (falling, mirrored, to ``-top`` when minimizing)."""
    sign = 1.0 if mode == "maximize" else -1.0
    return [sign * top * (1 - math.exp(-0.4 * t)) for t in range(1, steps + 1)]


def run(assessor: Assessor, trial_id: str, values: list[float], success: bool = True) -> list[AssessResult]:
    """One trial as the daemon reports it: a verdict per result until Bad, then its end."""
    verdicts = []
    for step in range(1, len(values) + 1):
        verdict = assessor.assess_trial(trial_id, values[:step])
        verdicts.append(verdict)
        if verdict is AssessResult.Bad:
            success = False
            break
    assessor.trial_end(trial_id, success)
    return verdicts


def complete(assessor: Assessor, tops: list[float], mode: str) -> None:
    for i, top in enumerate(tops):
        run(assessor, f"done{i}", curve(top, mode=mode))


def scenario(assessor: Assessor, mode: str, pause: Callable[[Assessor], Assessor] = lambda a: a) -> list[Any]:
    """Good trials, a poor one, trials running side by side; ``pause`` may swap the assessor midway."""
    log: list[Any] = []
    complete(assessor, [0.8, 0.9, 0.85, 0.7], mode)
    log += run(assessor, "poor", curve(0.1, mode=mode))
    side = {"a": curve(0.88, mode=mode), "b": curve(0.2, mode=mode), "c": curve(0.6, mode=mode)}
    for step in range(1, 5):
        log += [assessor.assess_trial(t, values[:step]) for t, values in side.items()]
    assessor = pause(assessor)
    alive = dict(side)
    for step in range(5, 11):
        for trial_id, values in list(alive.items()):
            verdict = assessor.assess_trial(trial_id, values[:step])
            log.append(verdict)
            if verdict is AssessResult.Bad:
                log.append(assessor.reason(trial_id))
                assessor.trial_end(trial_id, False)
                del alive[trial_id]
    for trial_id in alive:
        assessor.trial_end(trial_id, True)
    log += run(assessor, "late", curve(0.3, mode=mode))
    return log


def restart(row: Row, mode: str) -> Callable[[Assessor], Assessor]:
    """What a restarted daemon does: a new assessor loads the JSON-stored checkpoint."""

    def swap(old: Assessor) -> Assessor:
        state = old.save_checkpoint()
        fresh = row.build(mode)
        if state is not None:
            fresh.load_checkpoint(json.loads(json.dumps(state, allow_nan=False)))
        return fresh

    return swap


# -- verdicts -------------------------------------------------------------------------------------


def test_every_verdict_is_an_assess_result(row: Row, mode: str) -> None:
    log = scenario(row.build(mode), mode)
    verdicts = [v for v in log if not isinstance(v, str)]
    assert verdicts and all(isinstance(v, AssessResult) for v in verdicts)


@pytest.mark.parametrize("first", [0.0, -1e9, 1e9, math.nan, math.inf])
def test_a_single_trial_alone_is_never_stopped_at_its_first_result(row: Row, mode: str, first: float) -> None:
    assert row.build(mode).assess_trial("only", [first]) is AssessResult.Good


def test_a_trial_better_than_every_completed_one_is_never_stopped(row: Row, mode: str) -> None:
    assessor = row.build(mode)
    complete(assessor, [0.5, 0.3, 0.6, 0.4, 0.55], mode)
    sign = 1.0 if mode == "maximize" else -1.0
    star = [sign * (0.7 + 0.01 * t) for t in range(1, 13)]  # better than any value they ever had
    assert run(assessor, "star", star) == [AssessResult.Good] * 12


def test_a_poor_trial_is_stopped_with_a_one_line_reason_naming_the_assessor(row: Row, mode: str) -> None:
    assessor = row.build(mode)
    complete(assessor, [0.8, 0.9, 0.85, 0.7], mode)
    verdicts = run(assessor, "poor", curve(0.1, mode=mode))
    assert verdicts[-1] is AssessResult.Bad
    reason = assessor.reason("poor")
    assert reason and "\n" not in reason
    if row.class_name is None:
        assert reason.startswith(f"{row.label}: ")


# -- checkpoints ----------------------------------------------------------------------------------


def test_a_checkpoint_round_trip_gives_the_same_verdicts_afterwards(row: Row, mode: str) -> None:
    assert scenario(row.build(mode), mode, restart(row, mode)) == scenario(row.build(mode), mode)


def test_a_fresh_assessor_checkpoint_is_json(row: Row) -> None:
    state = row.build().save_checkpoint()
    assert state is None or json.loads(json.dumps(state, allow_nan=False)) == state


@pytest.mark.parametrize(
    "state", [[], {}, {"format": "nasctl.Other/1"}, {"format": "nasctl.Medianstop/9"}], ids=str
)
def test_a_checkpoint_of_another_format_is_refused_and_changes_nothing(row: Row, state: Any) -> None:
    if not row.formatted_checkpoint:
        pytest.skip("a user's checkpoint is the user's")
    assessor, twin = row.build(), row.build()
    complete(assessor, [0.8, 0.9], "maximize")
    complete(twin, [0.8, 0.9], "maximize")
    with pytest.raises(AssessorError) as info:
        assessor.load_checkpoint(state)
    assert "\n" not in str(info.value)
    assert scenario(assessor, "maximize") == scenario(twin, "maximize")


def test_a_damaged_checkpoint_is_refused_and_changes_nothing(row: Row) -> None:
    if not row.formatted_checkpoint:
        pytest.skip("a user's checkpoint is the user's")
    source = row.build()
    scenario(source, "maximize")
    state = json.loads(json.dumps(source.save_checkpoint()))
    assessor, twin = row.build(), row.build()
    complete(assessor, [0.8, 0.9], "maximize")
    complete(twin, [0.8, 0.9], "maximize")
    for key in [k for k in state if k != "format"]:
        for damaged in ({k: v for k, v in state.items() if k != key}, {**state, key: "junk"}):
            with pytest.raises(AssessorError):
                assessor.load_checkpoint(damaged)
    assert scenario(assessor, "maximize") == scenario(twin, "maximize")


# -- robustness -----------------------------------------------------------------------------------


def test_trial_end_for_unknown_trials_is_harmless(row: Row, mode: str) -> None:
    assessor = row.build(mode)
    assessor.trial_end("never-seen", True)
    assessor.trial_end("never-seen-either", False)
    assert scenario(assessor, mode) == scenario(row.build(mode), mode)


def test_nan_and_infinite_values_are_judged_without_crashing(row: Row, mode: str) -> None:
    assessor = row.build(mode)
    run(assessor, "diverged", [0.1, math.nan, math.inf, -math.inf, math.nan])
    complete(assessor, [0.8, 0.9], mode)
    sick = [0.2, 0.3, math.nan, 0.5, math.inf, 0.6, -math.inf, math.nan, 0.7, 0.75]
    verdicts = run(assessor, "sick", sick)
    assert all(isinstance(v, AssessResult) for v in verdicts)
    assert scenario(assessor, mode)
    if row.formatted_checkpoint:  # ours stores a diverged value as null: strict JSON
        state = assessor.save_checkpoint()
        assert json.loads(json.dumps(state, allow_nan=False)) == state


def test_a_trial_of_only_nan_values_is_never_kept_over_a_good_one(row: Row, mode: str) -> None:
    assessor = row.build(mode)
    complete(assessor, [0.8, 0.9, 0.85, 0.7], mode)
    assert AssessResult.Bad in run(assessor, "nan", [math.nan] * 10)
