"""Replay NAS-Bench-201 through the exact Tuner interface the manager uses, with no processes.

A tuner is built by the registry (``create_tuner``, so it is the ``CheckedTuner`` the daemon
drives) and asked for architectures; each one "trains" by table lookup
(``examples/nb201/table.py``): it observes the accuracy of one seed drawn from ``(search seed,
parameter id)`` and takes that seed's training time on a simulated clock. ``concurrency``
trials run at once; results come back in the order the clock says, so at concurrency > 1 they
arrive out of order, and a tuner that raises ``TunerBusy`` waits for the next one. The tuner
hears, per finished trial, ``receive_trial_result`` and then ``trial_end``, as from the daemon.

The curve is what a user would take home: after the n-th result, the cell with the best
*observed* accuracy so far, judged by its mean over seeds.

Any table with the :class:`ReplayTable` interface replays the same way: :func:`load_replay_table`
gives NAS-Bench-201's (wrapped in :class:`Nb201`; a bare :class:`Table` is wrapped too) or, for
``digits``, the digits example's (``bench/_digits_table.py``). ``call_seconds`` keeps the time of each ``generate_parameters``
call, the one a free GPU slot waits on.
"""

from __future__ import annotations

import heapq
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "examples" / "nb201"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from nb201_table import Observation, Table, cell_code, load_table, search_space  # noqa: E402

from manager.config import TunerConfig  # noqa: E402
from manager.tuners.base import NoMoreTrials, TunerBusy  # noqa: E402
from manager.tuners.registry import create_tuner  # noqa: E402
from trials.searchspace import SearchSpace  # noqa: E402

__all__ = [
    "Nb201",
    "Observation",
    "Replay",
    "ReplayTable",
    "Table",
    "load_replay_table",
    "load_table",
    "replay",
]


class ReplayTable(Protocol):
    """What :func:`replay` reads from a table."""

    label: str

    @property
    def optimum(self) -> float: ...

    @property
    def size(self) -> int: ...

    def search_space(self) -> SearchSpace: ...

    def code(self, parameters: Mapping[str, Any]) -> str: ...

    def observe(self, code: str, noise_seed: int, parameter_id: int) -> Any: ...

    def mean(self, code: str) -> float: ...


@dataclass(frozen=True)
class Nb201:
    """A NAS-Bench-201 table as the replay reads it (``examples/nb201/nb201_table.py`` underneath)."""

    table: Table

    @property
    def label(self) -> str:
        return f"NAS-Bench-201 {self.table.dataset} (validation accuracy)"

    @property
    def optimum(self) -> float:
        return self.table.optimum

    @property
    def size(self) -> int:
        return len(self.table.rows)

    def search_space(self) -> SearchSpace:
        return SearchSpace.from_json(search_space())

    def code(self, parameters: Mapping[str, Any]) -> str:
        return cell_code(parameters)

    def observe(self, code: str, noise_seed: int, parameter_id: int) -> Any:
        return self.table.observe(code, noise_seed, parameter_id)

    def mean(self, code: str) -> float:
        return self.table.mean(code)


@cache
def load_replay_table(dataset: str = "cifar10") -> ReplayTable:
    """NAS-Bench-201's table of ``dataset`` (``load_table`` gives it unwrapped), or the digits example's."""
    if dataset == "digits":
        from _digits_table import load_digits_table

        return load_digits_table()
    return Nb201(load_table(dataset))


@dataclass(frozen=True)
class Replay:
    """One search: ``curve[n - 1]`` is the judged accuracy of the incumbent after n results."""

    curve: tuple[float, ...]
    best_code: str
    simulated_seconds: float
    tuner_seconds: float  # wall time spent inside the tuner's methods
    #: (parameter id, cell code, observed accuracy) per result, in the order the results came
    observed: tuple[tuple[int, str, float], ...] = ()
    #: seconds of each ``generate_parameters`` call, in order
    call_seconds: tuple[float, ...] = ()


def replay(
    tuner_name: str,
    class_args: dict[str, Any],
    table: ReplayTable | Table,
    trials: int,
    concurrency: int,
    noise_seed: int,
) -> Replay:
    """Run ``trials`` trials of ``tuner_name`` on ``table`` at ``concurrency``; see the module docstring."""
    if isinstance(table, Table):
        table = Nb201(table)
    started = time.perf_counter()
    tuner = create_tuner(TunerConfig(name=tuner_name, class_args=class_args))
    tuner.update_search_space(table.search_space())
    in_tuner = time.perf_counter() - started
    running: list[tuple[float, int, dict[str, Any], str, float]] = []
    clock = 0.0
    launched = 0
    exhausted = busy = False
    best_observed = -float("inf")
    best_code = ""
    curve: list[float] = []
    observed: list[tuple[int, str, float]] = []
    calls: list[float] = []
    while len(curve) < trials:
        while not exhausted and not busy and launched < trials and len(running) < concurrency:
            started = time.perf_counter()
            try:
                parameters = tuner.generate_parameters(launched)
            except NoMoreTrials:
                exhausted = True
                break
            except TunerBusy:
                busy = True
                break
            finally:
                calls.append(time.perf_counter() - started)
                in_tuner += calls[-1]
            code = table.code(parameters)
            seen = table.observe(code, noise_seed, launched)
            heapq.heappush(running, (clock + seen.train_time, launched, parameters, code, seen.accuracy))
            launched += 1
        if not running:
            if busy:
                raise RuntimeError(f"{tuner_name} is busy but no trial is running")
            break
        clock, parameter_id, parameters, code, accuracy = heapq.heappop(running)
        started = time.perf_counter()
        tuner.receive_trial_result(parameter_id, parameters, accuracy)
        tuner.trial_end(parameter_id, True)
        in_tuner += time.perf_counter() - started
        busy = False
        observed.append((parameter_id, code, accuracy))
        if accuracy > best_observed:
            best_observed, best_code = accuracy, code
        curve.append(table.mean(best_code))
    return Replay(tuple(curve), best_code, clock, in_tuner, tuple(observed), tuple(calls))
