"""A training service whose trials run on a simulated clock and report scripted metrics.

Syne Tune's simulator backend is the model: the experiment loop runs unchanged, but a trial is
a script (reports at clock times, then an exit) instead of a process, and the clock may run
thousands of times faster than real time (:class:`~manager.clock.Clock`). So the loop's
state machine, limits, concurrency changes, failures, stop/resume and the tuner's hand-offs are
tested in milliseconds, with the same store and the same metric channel format as real trials.

A :class:`SimulatedCluster` plays the machine: its trials outlive the service (the daemon) that
started them, so a test can drop a manager mid-run (a crash), start another on the same cluster
and store, and watch recovery adopt or settle the trials. It also keeps what a test wants to
check: the order of launches and the most trials that ever ran at once.

Tests hand this service to the manager themselves; it is not a platform a config can name.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from manager.clock import Clock
from manager.training.base import (
    FoundLaunch,
    LaunchState,
    MetricsChunk,
    TrainingService,
    TrialExit,
    TrialProcess,
    TrialSpec,
)
from manager.training.metric_channel import READ_CHUNK_BYTES, parse_metrics
from trials import env
from trials.metrics import FINAL, PERIODICAL


@dataclass(frozen=True)
class Report:
    """One result a simulated trial reports ``at`` clock seconds after it started."""

    at: float
    value: float | dict[str, Any]
    final: bool = False


@dataclass(frozen=True)
class TrialScript:
    """What one simulated trial does: its reports, then how it ends.

    ``duration`` None: it runs until it is killed. ``start_error``: ``submit`` fails with it
    (a command that cannot start). ``stderr``: what it leaves in its stderr file on exit.
    ``lost``: at the end its machine dies instead (a Ray node), with this reason.
    """

    reports: tuple[Report, ...] = ()
    duration: float | None = 1.0
    exit_code: int = 0
    signal: int | None = None
    stderr: str = ""
    start_error: str | None = None
    lost: str | None = None

    @classmethod
    def succeeding(
        cls, final: float, intermediate: Sequence[float] = (), duration: float = 1.0
    ) -> TrialScript:
        """Intermediate results spread over ``duration``, the final one at its end, exit 0."""
        step = duration / (len(intermediate) + 1)
        reports = [Report(step * (i + 1), value) for i, value in enumerate(intermediate)]
        return cls((*reports, Report(duration, final, final=True)), duration)


#: Decides each trial's script from its spec and its packed parameter (as the trial would).
Script = Callable[[TrialSpec, Mapping[str, Any]], TrialScript]


@dataclass
class _Trial:
    spec: TrialSpec
    script: TrialScript
    process: TrialProcess
    channel: bytearray = field(default_factory=bytearray)
    exit: asyncio.Future[TrialExit] | None = None
    player: asyncio.Task[None] | None = None


class SimulatedCluster:
    """The simulated machine: the trials that run, whichever service started them."""

    def __init__(self, clock: Clock, script: Script) -> None:
        self.clock = clock
        self.script = script
        self.launches: list[str] = []  # trial ids in the order they started
        self.peak_running = 0
        self._trials: dict[str, _Trial] = {}
        self._pids = itertools.count(1000)

    @property
    def running(self) -> list[str]:
        return [trial_id for trial_id, trial in self._trials.items() if not self._ended(trial)]

    def start(self, spec: TrialSpec, parameter: Mapping[str, Any]) -> TrialProcess:
        script = self.script(spec, parameter)
        if script.start_error is not None:
            raise OSError(script.start_error)
        spec.trial_dir.mkdir(parents=True, exist_ok=True)
        (spec.trial_dir / env.PARAMETER_FILE_NAME).write_text(json.dumps(dict(parameter)))
        process = TrialProcess(spec.trial_id, next(self._pids), time.time())
        trial = _Trial(spec, script, process, exit=asyncio.get_running_loop().create_future())
        self._trials[spec.trial_id] = trial
        trial.player = asyncio.create_task(self._play(trial), name=f"simulated-{spec.trial_id}")
        self.launches.append(spec.trial_id)
        self.peak_running = max(self.peak_running, len(self.running))
        return process

    def find(self, process: TrialProcess) -> _Trial | None:
        """The live trial behind ``process`` (the same pid: a reused one never matches)."""
        trial = self._trials.get(process.trial_id)
        if trial is None or trial.process != process or self._ended(trial):
            return None
        return trial

    def get(self, trial_id: str) -> _Trial | None:
        return self._trials.get(trial_id)

    def kill(self, trial: _Trial) -> None:
        """SIGTERM: the script stops where it is."""
        if trial.player is not None:
            trial.player.cancel()
        self._end(trial, TrialExit.from_returncode(-signal.SIGTERM))

    async def _play(self, trial: _Trial) -> None:
        script, clock = trial.script, self.clock
        elapsed = 0.0
        sequence = 0
        for report in sorted(script.reports, key=lambda r: r.at):
            await asyncio.sleep(clock.real_seconds(max(0.0, report.at - elapsed)))
            elapsed = max(elapsed, report.at)
            kind = FINAL if report.final else PERIODICAL
            record = {
                "type": kind,
                "sequence": 0 if report.final else sequence,
                "value": report.value,
                "time": time.time(),
            }
            trial.channel += (json.dumps(record, allow_nan=True) + "\n").encode()
            sequence += not report.final
        if script.duration is None:
            await asyncio.Event().wait()  # runs until killed
        await asyncio.sleep(clock.real_seconds(max(0.0, script.duration - elapsed)))
        (trial.spec.trial_dir / env.STDERR_FILE_NAME).write_text(script.stderr)
        if script.lost is not None:
            self._end(trial, TrialExit(None, None, script.lost, lost=True))
        elif script.signal is not None:
            self._end(trial, TrialExit.from_returncode(-script.signal))
        else:
            self._end(trial, TrialExit.from_returncode(script.exit_code))

    @staticmethod
    def _end(trial: _Trial, exit_: TrialExit) -> None:
        if trial.exit is not None and not trial.exit.done():
            trial.exit.set_result(exit_)

    @staticmethod
    def _ended(trial: _Trial) -> bool:
        return trial.exit is None or trial.exit.done()


class SimulatedTrainingService(TrainingService):
    """A daemon's view of a :class:`SimulatedCluster` (see the module docstring)."""

    def __init__(self, cluster: SimulatedCluster) -> None:
        self.cluster = cluster
        self._watched: dict[str, bool] = {}  # trial id -> started by this service (exit observed)

    async def submit(self, spec: TrialSpec, parameter: Mapping[str, Any]) -> TrialProcess:
        if spec.trial_id in self._watched:
            raise RuntimeError(f"trial {spec.trial_id} is already running")
        process = self.cluster.start(spec, parameter)
        self._watched[spec.trial_id] = True
        return process

    async def wait(self, trial_id: str) -> TrialExit:
        trial = self.cluster.get(trial_id)
        assert trial is not None and trial.exit is not None
        exit_ = await asyncio.shield(trial.exit)
        observed = self._watched.pop(trial_id, True)
        return exit_ if observed else TrialExit.unobserved()

    async def kill(self, trial_id: str, grace: float | None = None) -> None:
        trial = self.cluster.get(trial_id)
        if trial is None or trial.exit is None:
            return
        self.cluster.kill(trial)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(trial.exit)

    def read_metrics(self, spec: TrialSpec, offset: int, final: bool = False) -> MetricsChunk:
        trial = self.cluster.get(spec.trial_id)
        if trial is None:
            return MetricsChunk((), (), offset)
        return parse_metrics(bytes(trial.channel[offset : offset + READ_CHUNK_BYTES + 1]), offset, final)

    async def is_alive(self, spec: TrialSpec, process: TrialProcess) -> bool:
        return self.cluster.find(process) is not None

    async def adopt(self, spec: TrialSpec, process: TrialProcess) -> bool:
        if self.cluster.find(process) is None:
            return False
        self._watched[spec.trial_id] = False  # not our child: its exit status is unknown to us
        return True

    async def find_launch(self, spec: TrialSpec) -> FoundLaunch:
        trial = self.cluster.get(spec.trial_id)  # the machine remembers what it started
        if trial is None:
            return FoundLaunch(LaunchState.NOT_STARTED)
        state = LaunchState.ENDED if self.cluster.find(trial.process) is None else LaunchState.RUNNING
        return FoundLaunch(state, trial.process)

    async def kill_stale(self, spec: TrialSpec, process: TrialProcess) -> bool:
        trial = self.cluster.find(process)
        if trial is None:
            return False
        self.cluster.kill(trial)
        return True

    async def close(self) -> None:
        for trial_id in list(self._watched):
            await self.kill(trial_id)
