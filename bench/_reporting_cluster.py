"""A simulated cluster whose trials report every clock second, cheaply enough for 10,000 trials.

:class:`~manager.training.simulated.SimulatedCluster` keeps a trial's reports as a tuple and plays
each trial on its own task: an hour of one report per second is 3,600 objects per trial and one
timer per report, which at 10,000 trials would weigh on the very process being measured. Here
one ticker task writes every live trial's due reports into its metric channel (the same JSON
lines a real trial writes), and each trial's task only waits for its end. The ticker counts the
CPU it spends, so the bench can take the cluster's share off the daemon's.

A trial's final accuracy comes from its architecture (a stable hash of its parameters); its
intermediate results climb towards it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from manager.clock import Clock
from manager.training.base import TrialExit, TrialProcess, TrialSpec
from manager.training.simulated import SimulatedCluster, TrialScript, _Trial
from trials.metrics import FINAL, PERIODICAL

#: Clock seconds over which the intermediate results climb most of the way to the final one.
CLIMB_SECONDS = 600.0
#: The ticker wakes at most this often (real seconds); a faster clock writes more lines per tick.
MIN_TICK_SECONDS = 0.05


def accuracy_of(parameter: Mapping[str, Any]) -> float:
    """A stable accuracy in [0.5, 0.95) for one architecture."""
    digest = hashlib.sha256(json.dumps(parameter.get("parameters"), sort_keys=True).encode()).digest()
    return 0.5 + 0.45 * int.from_bytes(digest[:4], "big") / 2**32


@dataclass
class _Reporter:
    trial: _Trial
    started: float  # clock seconds
    accuracy: float
    sent: int = 0


class ReportingCluster(SimulatedCluster):
    """Trials that report every ``every`` clock seconds for ``duration`` clock seconds, then end."""

    def __init__(self, clock: Clock, every: float, duration: float) -> None:
        super().__init__(clock, self._script)
        self.every = every
        self.duration = duration
        self.periodic = max(0, math.ceil(duration / every) - 1)  # reports before the final one
        self.written = 0  # records written into channels (periodic and final)
        self.ticker_cpu = 0.0  # thread CPU seconds the ticker spent writing them
        self._reporters: dict[str, _Reporter] = {}

    @property
    def running(self) -> list[str]:
        return list(self._reporters)

    def _script(self, spec: TrialSpec, parameter: Mapping[str, Any]) -> TrialScript:
        return TrialScript((), duration=self.duration)

    def start(self, spec: TrialSpec, parameter: Mapping[str, Any]) -> TrialProcess:
        process = super().start(spec, parameter)
        trial = self.get(spec.trial_id)
        assert trial is not None
        self._reporters[spec.trial_id] = _Reporter(trial, self.clock.monotonic(), accuracy_of(parameter))
        return process

    def kill(self, trial: _Trial) -> None:
        self._reporters.pop(trial.spec.trial_id, None)
        super().kill(trial)

    async def _play(self, trial: _Trial) -> None:
        await asyncio.sleep(self.clock.real_seconds(self.duration))
        reporter = self._reporters.pop(trial.spec.trial_id, None)
        if reporter is not None:
            begin = time.thread_time()
            self._write(reporter, self.periodic)
            record = {"type": FINAL, "sequence": 0, "value": reporter.accuracy, "time": time.time()}
            trial.channel += (json.dumps(record) + "\n").encode()
            self.written += 1
            self.ticker_cpu += time.thread_time() - begin
        self._end(trial, TrialExit.from_returncode(0))

    async def tick(self) -> None:
        """Write every live trial's due reports, forever (cancel the task to stop it)."""
        period = max(self.clock.real_seconds(self.every), MIN_TICK_SECONDS)
        while True:
            await asyncio.sleep(period)
            begin = time.thread_time()
            now = self.clock.monotonic()
            for reporter in list(self._reporters.values()):
                self._write(reporter, min(self.periodic, int((now - reporter.started) / self.every)))
            self.ticker_cpu += time.thread_time() - begin

    def _write(self, reporter: _Reporter, due: int) -> None:
        if due <= reporter.sent:
            return
        wall = time.time()
        lines = []
        for sequence in range(reporter.sent, due):
            value = reporter.accuracy * (1 - math.exp(-(sequence + 1) * self.every / CLIMB_SECONDS))
            lines.append(
                f'{{"type":"{PERIODICAL}","sequence":{sequence},"value":{value:.6f},"time":{wall:.3f}}}\n'
            )
        reporter.trial.channel += "".join(lines).encode()
        self.written += due - reporter.sent
        reporter.sent = due
