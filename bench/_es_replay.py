"""Replay a learning-curve table through a real tuner and a real assessor, on a simulated clock.

A search proposes architectures with a tuner built by the registry (the ``CheckedTuner`` the
daemon drives); each trial "trains" by reading its architecture's curve for one training seed
from the table: after each epoch (which takes the table's seconds for that epoch) it reports
that epoch's accuracy, and the assessor (built by ``create_assessor``, or any factory of
:class:`~manager.assessors.base.Assessor`) judges the history so far, as the daemon would.
A Bad verdict ends the trial at once: its remaining epochs cost nothing, it never reports a
final result, and the tuner and the assessor hear ``trial_end(..., False)``. A Bad verdict on the
last epoch comes too late to save anything (the final result is reported with the last epoch),
so that trial completes. ``concurrency`` workers run trials side by side; one event queue of
epoch ends orders everything, so the assessor sees results interleaved as they would arrive.

New trials start while the training time spent so far is under ``budget`` seconds and the tuner
has architectures left. What is kept per trial (start, end, epochs run, completed or stopped)
lets the caller ask what the search had found after any amount of training time.
"""

from __future__ import annotations

import heapq
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from manager.assessors.base import Assessor, AssessResult  # noqa: E402
from manager.assessors.registry import create_assessor  # noqa: E402
from manager.config import TunerConfig  # noqa: E402
from manager.tuners.base import NoMoreTrials  # noqa: E402
from manager.tuners.registry import create_tuner  # noqa: E402
from trials.searchspace import SearchSpace  # noqa: E402

__all__ = ["Curve", "CurveTable", "Search", "TrialRun", "arch_key", "load_curves", "named_assessor", "replay"]

#: The format written by ``bench/make_digits_curves.py``.
FORMAT = "nasctl.digits-curves/1"


@dataclass(frozen=True)
class Curve:
    """One training run: accuracy after each epoch, and the seconds each epoch took."""

    accuracy: tuple[float, ...]
    seconds: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.accuracy or len(self.accuracy) != len(self.seconds):
            raise ValueError("Curve: accuracy and seconds must be non-empty and of the same length")


@dataclass(frozen=True)
class CurveTable:
    """Every architecture of a finite space, each with one curve per training seed."""

    space: SearchSpace
    #: arch_key(short-form architecture) -> curves, one per training seed (same seeds for all)
    curves: Mapping[str, tuple[Curve, ...]]

    @property
    def seeds(self) -> int:
        return len(next(iter(self.curves.values())))

    def best_final(self, seed: int) -> float:
        """The best final accuracy of any architecture for training seed ``seed``: the target."""
        return max(runs[seed].accuracy[-1] for runs in self.curves.values())

    def full_seconds(self, seed: int) -> float:
        """What training every architecture to the end once takes (seed ``seed``)."""
        return sum(sum(runs[seed].seconds) for runs in self.curves.values())


def arch_key(arch: Mapping[str, Any]) -> str:
    """A short-form architecture (``{"conv1": "conv3x3", "skip": []}``) as a stable string."""
    return json.dumps(dict(arch), sort_keys=True, separators=(",", ":"))


def load_curves(path: str | Path) -> CurveTable:
    """The table ``bench/make_digits_curves.py`` wrote; ValueError names what is wrong."""
    obj = json.loads(Path(path).read_text())
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(f"{path}: not a curve table (format {FORMAT!r} expected)")
    curves = {
        arch_key(row["arch"]): tuple(Curve(tuple(r["accuracy"]), tuple(r["seconds"])) for r in row["runs"])
        for row in obj["architectures"]
    }
    return CurveTable(SearchSpace.from_json(obj["search_space"], str(path)), curves)


@dataclass(frozen=True)
class TrialRun:
    """One trial of a search, in launch order; times are on the simulated clock."""

    arch: str
    start: float
    end: float
    epochs: int  # epochs trained (all of them unless stopped)
    completed: bool  # False: stopped by the assessor, no final result
    final: float  # the last accuracy it reported


@dataclass(frozen=True)
class Search:
    """One replayed search."""

    trials: tuple[TrialRun, ...]

    @property
    def clock(self) -> float:
        """Wall time on the simulated clock: when the last trial ended (the max over workers)."""
        return max((t.end for t in self.trials), default=0.0)

    @property
    def spent(self) -> float:
        """Training time spent, summed over trials (core-seconds)."""
        return sum(t.end - t.start for t in self.trials)

    def spent_at(self, time: float) -> float:
        """Training time spent by clock time ``time`` (running trials count what they have run)."""
        return sum(min(max(time - t.start, 0.0), t.end - t.start) for t in self.trials)

    def found(self) -> list[tuple[float, float, float]]:
        """(clock, training time spent, best final accuracy so far) at each improvement."""
        steps: list[tuple[float, float, float]] = []
        for trial in sorted((t for t in self.trials if t.completed), key=lambda t: t.end):
            if not steps or trial.final > steps[-1][2]:
                steps.append((trial.end, self.spent_at(trial.end), trial.final))
        return steps

    def best_within(self, spent: float) -> float | None:
        """The best final accuracy found within ``spent`` seconds of training; None: nothing yet."""
        found = [acc for _, used, acc in self.found() if used <= spent + 1e-9]
        return found[-1] if found else None

    def reached(self, target: float) -> tuple[float, float] | None:
        """(clock, spent) when a final accuracy of at least ``target`` was first found; None: never."""
        for clock, used, acc in self.found():
            if acc >= target - 1e-9:
                return clock, used
        return None


AssessorFactory = Callable[[], Assessor]


def named_assessor(name: str, class_args: Mapping[str, Any] | None = None) -> AssessorFactory:
    """A factory of the built-in ``name`` through the registry, as the daemon builds it."""
    config = TunerConfig(name=name, class_args=dict(class_args or {}))
    return lambda: create_assessor(config)


def replay(
    table: CurveTable,
    seed: int,
    *,
    tuner: str = "Random",
    search_seed: int = 0,
    assessor: AssessorFactory | None = None,
    concurrency: int = 1,
    budget: float | None = None,
) -> Search:
    """One search on training seed ``seed`` of ``table``; see the module docstring.

    ``budget``: training seconds after which no new trial starts (default: the table's full cost).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency: must be at least 1, got {concurrency}")
    if not 0 <= seed < table.seeds:
        raise ValueError(f"seed: the table has training seeds 0..{table.seeds - 1}, got {seed}")
    limit = table.full_seconds(seed) if budget is None else budget
    proposer = create_tuner(
        TunerConfig(name=tuner, class_args={"seed": search_seed, "optimize_mode": "maximize"})
    )
    proposer.update_search_space(table.space)
    judge = assessor() if assessor is not None else None
    # (epoch end time, launch number, epoch index); one entry per running trial
    events: list[tuple[float, int, int]] = []
    launched: list[dict[str, Any]] = []
    clock = 0.0
    exhausted = False

    def launch() -> bool:
        nonlocal exhausted
        if exhausted or _spent(launched, clock) >= limit:
            return False
        try:
            parameters = proposer.generate_parameters(len(launched))
        except NoMoreTrials:
            exhausted = True
            return False
        key = arch_key({name: value["_value"] for name, value in parameters.items()})
        if key not in table.curves:
            raise ValueError(f"{tuner} proposed {key}, which the table does not hold")
        curve = table.curves[key][seed]
        trial = {"id": len(launched), "key": key, "params": parameters, "curve": curve, "start": clock}
        launched.append(trial)
        heapq.heappush(events, (clock + curve.seconds[0], trial["id"], 0))
        return True

    for _ in range(concurrency):
        if not launch():
            break
    while events:
        clock, trial_id, epoch = heapq.heappop(events)
        trial = launched[trial_id]
        curve: Curve = trial["curve"]
        last = epoch == len(curve.accuracy) - 1
        verdict = AssessResult.Good
        if judge is not None:
            verdict = judge.assess_trial(str(trial_id), list(curve.accuracy[: epoch + 1]))
        if last or verdict is AssessResult.Bad:
            completed = last  # a Bad verdict on the last epoch comes too late to save anything
            trial.update(end=clock, epochs=epoch + 1, completed=completed, final=curve.accuracy[epoch])
            if completed:
                proposer.receive_trial_result(trial_id, trial["params"], curve.accuracy[epoch])
            proposer.trial_end(trial_id, completed)
            if judge is not None:
                judge.trial_end(str(trial_id), completed)
            launch()
        else:
            heapq.heappush(events, (clock + curve.seconds[epoch + 1], trial_id, epoch + 1))
    return Search(
        tuple(
            TrialRun(t["key"], t["start"], t["end"], t["epochs"], t["completed"], t["final"])
            for t in launched
        )
    )


def _spent(launched: Sequence[Mapping[str, Any]], clock: float) -> float:
    """Training time spent by ``clock``, counting running trials up to it."""
    return sum(min(clock, t.get("end", clock)) - t["start"] for t in launched)
