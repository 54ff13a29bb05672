"""One experiment's assessor: the thread it runs in, the verdicts it gives, and its checkpoints.

An assessor is called from one thread only (the Assessor contract promises it), so a slow
``assess_trial`` delays a verdict but never the daemon's event loop. The loop only says "trial X
has new intermediate results" (:meth:`AssessorSession.results_stored`); the assessor's thread
then reads that trial's stored history and calls ``assess_trial`` once per result it has not
judged yet, oldest first, stopping at the first Bad. Reading the stored history (rather than
passing values along) makes each call idempotent and lets a trial adopted after a restart be
judged on everything it reported.

Checkpoints (docs/architecture.md, "The loop"): after every ``trial_end`` and every Bad verdict
the assessor's ``save_checkpoint`` is stored with the experiment together with how many results
of each trial it had judged and which trials' ends it had heard. A restarted daemon loads it and
replays what came after: each trial with results it has not judged is assessed once on its whole
history, and each ended trial it has not heard of gets its ``trial_end``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from manager.assessors.base import Assessor, AssessResult
from manager.assessors.registry import create_assessor
from manager.config import TunerConfig
from manager.store import StorageError, Store, TrialRecord
from trials.metrics import PERIODICAL, metric_default
from trials.status import TrialStatus

log = logging.getLogger(__name__)

#: Records an error of the experiment: (message, traceback or None, trial id or None).
ErrorSink = Callable[[str, "str | None", "str | None"], Awaitable[None]]


@dataclass(frozen=True)
class Verdict:
    """A Bad verdict: the trial to stop, why, and at how many intermediate results."""

    trial_id: str
    reason: str
    step: int


#: Hears a Bad verdict on the event loop (the runner stops the trial).
BadSink = Callable[[Verdict], Awaitable[None]]


class AssessorSession:
    """The assessor of one experiment, driven from the daemon's event loop."""

    def __init__(
        self,
        experiment_id: str,
        store: Store,
        config: TunerConfig,
        on_error: ErrorSink,
        on_storage_failure: Callable[[StorageError], None],
    ) -> None:
        self.experiment_id = experiment_id
        self.store = store
        self.config = config
        self.assessor: Assessor | None = None
        self._on_error = on_error
        self._on_storage_failure = on_storage_failure
        self._executor: ThreadPoolExecutor | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._queued: set[str] = set()  # trials with an assessment queued and not started
        # read and written only in the assessor's thread (and before it starts)
        self._assessed: dict[str, int] = {}  # trial id -> results judged
        self._ended: set[str] = set()
        self._bad: dict[str, int] = {}  # trial id -> the step it was judged Bad at
        self._warned: set[str] = set()

    # -- the thread -----------------------------------------------------------------------------
    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"assessor-{self.experiment_id}"
            )
        return self._executor

    def release_thread(self, cancel: bool = False) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=cancel)
            self._executor = None

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -- start ----------------------------------------------------------------------------------
    async def start(self) -> list[Verdict]:
        """Build the assessor (once per daemon), restore its checkpoint and replay what it missed.

        Returns the Bad verdicts the replay gave for trials still WAITING or RUNNING.
        """
        if self.assessor is not None:
            return []
        assessor = await self._call(create_assessor, self.config)
        saved = await asyncio.to_thread(self.store.load_assessor_checkpoint, self.experiment_id)
        trials = await asyncio.to_thread(self.store.all_trials, self.experiment_id)
        self.assessor = assessor
        verdicts, replayed, problems = await self._call(self._restore, saved, trials)
        for message, details, trial_id in problems:
            await self._on_error(message, details, trial_id)
        if replayed:
            await self.checkpoint()
        return verdicts

    def _restore(
        self, saved: dict[str, Any] | None, trials: list[TrialRecord]
    ) -> tuple[list[Verdict], bool, list[tuple[str, str, str]]]:
        """In the thread: load the checkpoint, then replay the results and ends it does not know."""
        assert self.assessor is not None
        problems: list[tuple[str, str, str]] = []
        if saved is not None:
            self.assessor.load_checkpoint(saved["state"])
            self._assessed = {k: int(v) for k, v in saved.get("assessed", {}).items()}
            self._ended = set(saved.get("ended", ()))
            self._bad = {k: int(v) for k, v in saved.get("bad", {}).items()}
        verdicts: list[Verdict] = []
        replayed = False
        for trial in sorted(trials, key=lambda t: t.sequence_id):
            if trial.id in self._ended:
                continue
            if trial.id in self._bad and not trial.status.is_terminal:  # the crash came before the stop
                verdicts.append(Verdict(trial.id, self._reason(trial.id), self._bad[trial.id]))
            history = self._history(trial.id)
            if trial.id not in self._bad and len(history) > self._assessed.get(trial.id, 0):
                replayed = True
                self._assessed[trial.id] = len(history)
                try:
                    bad = self.assessor.assess_trial(trial.id, history) is AssessResult.Bad
                except Exception as exc:
                    if (problem := self._problem(trial.id, "assess_trial", exc)) is not None:
                        problems.append(problem)
                    bad = False
                if bad and not trial.status.is_terminal:
                    self._bad[trial.id] = len(history)
                    verdicts.append(Verdict(trial.id, self._reason(trial.id), len(history)))
            if trial.status.is_terminal:
                replayed = True
                self._end(trial.id, trial.status is TrialStatus.SUCCEEDED, problems)
        return verdicts, replayed, problems

    # -- what the assessor hears ----------------------------------------------------------------
    def results_stored(self, trial_id: str, on_bad: BadSink) -> None:
        """New intermediate results of ``trial_id`` are in the store: judge them (queued at once)."""
        if self.assessor is None or trial_id in self._queued:
            return
        self._queued.add(trial_id)

        async def run() -> None:
            verdict, problem = await self._call(self._assess, trial_id)
            if problem is not None:
                with contextlib.suppress(StorageError):
                    await self._on_error(*problem)
            if verdict is not None:
                await self.checkpoint()
                await on_bad(verdict)

        self._spawn(run())

    def _assess(self, trial_id: str) -> tuple[Verdict | None, tuple[str, str, str] | None]:
        """In the thread: one ``assess_trial`` per result not judged yet, up to the first Bad."""
        self._queued.discard(trial_id)
        assert self.assessor is not None
        if trial_id in self._bad or trial_id in self._ended:
            return None, None
        history = self._history(trial_id)
        for step in range(self._assessed.get(trial_id, 0) + 1, len(history) + 1):
            self._assessed[trial_id] = step
            try:
                verdict = self.assessor.assess_trial(trial_id, history[:step])
            except Exception as exc:  # the trial goes on; said once per trial
                return None, self._problem(trial_id, "assess_trial", exc)
            if verdict is AssessResult.Bad:
                self._bad[trial_id] = step
                return Verdict(trial_id, self._reason(trial_id), step), None
        return None, None

    def trial_end(self, trial_id: str, success: bool) -> None:
        """A trial ended: the assessor hears it once, then its state is checkpointed."""
        if self.assessor is None:
            return

        async def run() -> None:
            problems: list[tuple[str, str, str]] = []
            await self._call(self._end, trial_id, success, problems)
            for problem in problems:
                with contextlib.suppress(StorageError):
                    await self._on_error(*problem)
            await self.checkpoint()

        self._spawn(run())

    def _end(self, trial_id: str, success: bool, problems: list[tuple[str, str, str]]) -> None:
        assert self.assessor is not None
        if trial_id in self._ended:
            return
        self._ended.add(trial_id)
        try:
            self.assessor.trial_end(trial_id, success)
        except Exception as exc:
            if (problem := self._problem(trial_id, "trial_end", exc)) is not None:
                problems.append(problem)

    def stop_step(self, trial_id: str) -> int | None:
        """The number of results at which ``trial_id`` was judged Bad (None: it was not)."""
        return self._bad.get(trial_id)

    async def value_at_stop(self, trial_id: str) -> float | None:
        """The last intermediate result the assessor judged before it stopped ``trial_id``."""
        step = self._bad.get(trial_id)
        if step is None:
            return None
        history = await asyncio.to_thread(self._history, trial_id)
        return history[step - 1] if len(history) >= step else None

    def _history(self, trial_id: str) -> list[float]:
        return [metric_default(m.value) for m in self.store.trial_metrics(trial_id, PERIODICAL)]

    def _reason(self, trial_id: str) -> str:
        assert self.assessor is not None
        try:
            return str(self.assessor.reason(trial_id))
        except Exception:
            return type(self.assessor).__name__

    def _problem(self, trial_id: str, what: str, exc: Exception) -> tuple[str, str, str] | None:
        """The error to record, once per trial (later ones are only logged)."""
        message = f"assessor {what} failed for trial {trial_id}: {exc}; the trial goes on"
        if trial_id in self._warned:
            log.warning("experiment %s: %s", self.experiment_id, message)
            return None
        self._warned.add(trial_id)
        return message, traceback.format_exc(), trial_id

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every queued verdict and trial end has been handled (and checkpointed)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- checkpoints ----------------------------------------------------------------------------
    async def checkpoint(self) -> None:
        """Store the assessor's state with what it has judged (a refusing database ends the experiment)."""
        try:
            saved = await self._call(self._snapshot)
            if saved is not None:
                await self.store.call(self.store.save_assessor_checkpoint, self.experiment_id, saved)
        except StorageError as exc:
            self._on_storage_failure(exc)
        except Exception as exc:
            with contextlib.suppress(StorageError):
                await self._on_error(f"assessor checkpoint could not be saved: {exc}", None, None)

    def _snapshot(self) -> dict[str, Any] | None:
        """In the thread, so the state and the bookkeeping agree."""
        assert self.assessor is not None
        state = self.assessor.save_checkpoint()
        if state is None:
            return None
        return {
            "state": state,
            "assessed": dict(self._assessed),
            "ended": sorted(self._ended),
            "bad": dict(self._bad),
        }
