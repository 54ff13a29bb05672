"""One experiment's tuner: the one thread it runs in, what it is told, and its checkpoints.

A tuner is only ever called from its session's thread (the Tuner contract promises it), so a
slow ``generate_parameters`` or a PPO update never stalls the daemon's event loop. Results and
trial ends are queued to that thread the moment they are known, so the tuner hears them before
any proposal asked for afterwards.

Checkpoints (docs/architecture.md, "Crash recovery"): the tuner's state is saved in the same
transaction as each new trial (:meth:`TunerSession.propose` returns it with the proposal) and
after each result it learns from. The session remembers which trials' results and ends were
queued since the last stored checkpoint; a checkpoint carries their ids, so a restarted daemon
replays exactly what the checkpoint missed (:meth:`TunerSession.start`), each once.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from manager.config import ExperimentConfig, TunerConfig
from manager.crash_points import crash_point
from manager.store import StorageError, Store, TrialRecord, TunerCheckpoint
from manager.tuners.base import NoMoreTrials, Parameters, Tuner, TunerBusy
from manager.tuners.registry import create_tuner
from trials.metrics import metric_default
from trials.objectives import Objectives
from trials.searchspace import SearchSpace
from trials.status import TrialStatus

T = TypeVar("T")
#: Records an error of the experiment: (message, traceback or None).
ErrorSink = Callable[[str, "str | None"], Awaitable[None]]


class TunerState(enum.Enum):
    """Whether the loop may ask the tuner for another architecture."""

    READY = "ready"
    BUSY = "busy"  # raised TunerBusy: ask again after the next result or trial end
    FAILED = "failed"  # generate_parameters raised or broke its contract: ask again after a trial end
    EXHAUSTED = "exhausted"  # raised NoMoreTrials: never ask again (until a resume builds it anew)


@dataclass(frozen=True)
class Proposal:
    """An architecture and the checkpoint taken right after it (None when none could be saved)."""

    parameters: Parameters
    checkpoint: TunerCheckpoint | None


class TunerSession:
    """The tuner of one experiment, driven from the daemon's event loop."""

    def __init__(
        self,
        experiment_id: str,
        store: Store,
        on_error: ErrorSink,
        on_storage_failure: Callable[[StorageError], None],
        wake: Callable[[], None],
        tuner: Tuner | None = None,
        executor: ThreadPoolExecutor | None = None,
        tuner_has_space: bool = False,
    ) -> None:
        self.experiment_id = experiment_id
        self.store = store
        self.tuner: Tuner | None = tuner
        self.state = TunerState.READY
        self.has_space = tuner is not None and tuner_has_space
        self._on_error = on_error
        self._on_storage_failure = on_storage_failure
        self._wake = wake
        self._executor = executor
        self._notifications: set[asyncio.Task[None]] = set()
        self._checkpoint_warned = False
        # trials whose result / end was queued to the tuner since the last stored checkpoint
        self._unsaved_results: set[str] = set()
        self._unsaved_ends: set[str] = set()
        #: The experiment's objectives (from :meth:`prepare`); None: one objective, floats.
        self.objectives: Objectives | None = None if tuner is None else tuner.objectives

    # -- the thread -----------------------------------------------------------------------------
    @property
    def executor(self) -> ThreadPoolExecutor:
        """The tuner's one thread while the loop runs (a finished experiment holds no thread)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"tuner-{self.experiment_id}"
            )
        return self._executor

    def release_thread(self, cancel: bool = False) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=cancel)
            self._executor = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` in the tuner's thread and await it."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -- start ----------------------------------------------------------------------------------
    @property
    def can_propose(self) -> bool:
        return self.state is TunerState.READY

    def forget(self) -> None:
        """Drop the tuner: the next :meth:`prepare` rebuilds it (a resume after ERROR)."""
        self.tuner = None
        self.has_space = False

    async def prepare(self, config: ExperimentConfig, space: SearchSpace) -> None:
        """A tuner that knows ``space``: the one given at creation, or one rebuilt from the store."""
        self.objectives = config.objectives
        self.state = TunerState.READY if self.state is not TunerState.EXHAUSTED else self.state
        if self.tuner is None:
            await self._start(config.tuner, space)
        elif not self.has_space:
            await self.call(self.tuner.update_search_space, space)
            self.has_space = True

    async def _start(self, config: TunerConfig, space: SearchSpace) -> None:
        """Create the tuner in its thread, give it the space, and restore what it had learned.

        From a checkpoint, the tuner then hears the results and ends that the checkpoint missed
        (those that arrived between the last save and a crash), each exactly once; without one,
        it imports every stored result.
        """
        tuner = await self.call(create_tuner, config, self.objectives)
        await self.call(tuner.update_search_space, space)
        checkpoint = await self.store.call(self.store.load_tuner_checkpoint, self.experiment_id)
        if checkpoint is not None:
            await self.call(tuner.load_checkpoint, checkpoint)
            for trial in await asyncio.to_thread(self.store.tuner_backlog, self.experiment_id):
                value = self.tuner_value(trial.final_metric_data)
                if value is not None and not trial.result_in_checkpoint:
                    await self.call(
                        tuner.receive_trial_result, trial.parameter_id, dict(trial.parameters), value
                    )
                    self._unsaved_results.add(trial.id)
                if trial.status.is_terminal and not trial.end_in_checkpoint:
                    success = trial.status is TrialStatus.SUCCEEDED
                    await self.call(tuner.trial_end, trial.parameter_id, success)
                    self._unsaved_ends.add(trial.id)
        else:
            results = await asyncio.to_thread(self.store.succeeded_results, self.experiment_id)
            values = [(t, self.tuner_value(v)) for t, v in results]
            records = [{"parameter": dict(t.parameters), "value": v} for t, v in values if v is not None]
            if records:
                await self.call(tuner.import_data, records)
        self.tuner = tuner
        self.has_space = True
        self.state = TunerState.READY
        if self._unsaved_results or self._unsaved_ends:
            await self.checkpoint()

    # -- proposals ------------------------------------------------------------------------------
    async def propose(self, parameter_id: int) -> Proposal | None:
        """The tuner's next architecture with the checkpoint right after it; None when it has
        none to give now (:attr:`state` says why, and a failure is recorded)."""
        assert self.tuner is not None
        known = self._take_unsaved()  # what the checkpoint taken after this proposal includes
        parameters: Any = None
        state: Any = None
        problem: tuple[Exception, str] | None = None
        try:
            parameters, state, problem = await self.call(self._generate_then_save, parameter_id)
        except NoMoreTrials:
            self.state = TunerState.EXHAUSTED
        except TunerBusy:
            self.state = TunerState.BUSY
        except Exception as exc:
            self.state = TunerState.FAILED
            await self._on_error(
                f"tuner generate_parameters({parameter_id}) failed: {exc}", traceback.format_exc()
            )
        else:
            if not isinstance(parameters, dict):
                self.state = TunerState.FAILED
                kind = type(parameters).__name__
                await self._on_error(
                    f"tuner generate_parameters({parameter_id}) returned {kind}, not a dict", None
                )
                parameters = None
        if parameters is None or state is None:
            self.unsaved_back(known)
            if problem is not None:
                await self._checkpoint_failed(problem)
            return None if parameters is None else Proposal(parameters, None)
        return Proposal(parameters, TunerCheckpoint(state, known.results, known.ends))

    def _generate_then_save(self, parameter_id: int) -> tuple[Any, Any, tuple[Exception, str] | None]:
        """In the tuner's thread: generate_parameters, then save_checkpoint (a failure is kept)."""
        assert self.tuner is not None
        parameters = self.tuner.generate_parameters(parameter_id)
        try:
            return parameters, self.tuner.save_checkpoint(), None
        except Exception as exc:
            return parameters, None, (exc, traceback.format_exc())

    # -- what the tuner hears -------------------------------------------------------------------
    def tuner_value(self, reported: Any) -> Any:
        """What the tuner gets for a reported final result: its number, or with objectives the
        whole metric dict; None when there is nothing it can take (none, or metrics missing)."""
        if reported is None:
            return None
        if self.objectives is None:
            return metric_default(reported)
        if not isinstance(reported, dict) or self.objectives.missing(reported):
            return None
        return dict(reported)

    def missing_metrics(self, reported: Any) -> str | None:
        """Why a final result cannot count under the objectives (one line), or None when it can."""
        if self.objectives is None or self.tuner_value(reported) is not None:
            return None
        missing = self.objectives.missing(reported if isinstance(reported, dict) else {})
        return f"final result lacks the metrics of objectives/constraints: {', '.join(missing)}"

    def result(self, trial: TrialRecord, reported: Any) -> str | None:
        """A trial's final result as reported (a number or a dict), queued to the tuner at once and
        checkpointed after if the tuner learns from it. Returns why the trial must fail instead:
        with objectives, a result lacking one of their metrics (it never reaches the tuner)."""
        problem = self.missing_metrics(reported)
        value = self.tuner_value(reported)
        if self.tuner is None or value is None:
            return problem
        if self.state is TunerState.BUSY:
            self.state = TunerState.READY
        self._unsaved_results.add(trial.id)
        crash_point("tuner.before_result")
        self._notify(
            "receive_trial_result",
            self.tuner.receive_trial_result,
            trial.parameter_id,
            dict(trial.parameters),
            value,
            checkpoint=self.tuner.learns_from_results,
        )
        return None

    def trial_end(self, trial: TrialRecord, success: bool) -> None:
        """A trial ended: a tuner that was busy or failed may be asked again."""
        if self.state in (TunerState.BUSY, TunerState.FAILED):
            self.state = TunerState.READY
        if self.tuner is None:
            return
        # a success was learned from (and checkpointed) with its result; a failure is news
        self._unsaved_ends.add(trial.id)
        self._notify("trial_end", self.tuner.trial_end, trial.parameter_id, success, checkpoint=not success)

    def _notify(self, what: str, fn: Callable[..., Any], *args: Any, checkpoint: bool) -> None:
        """Tell the tuner something in its thread without waiting; then (optionally) checkpoint it."""
        queued = asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

        async def run() -> None:
            try:
                await queued
            except Exception as exc:
                with contextlib.suppress(StorageError):
                    await self._on_error(f"tuner {what} failed: {exc}", traceback.format_exc())
            else:
                if checkpoint:
                    await self.checkpoint()
            finally:
                self._wake()

        task = asyncio.create_task(run())
        self._notifications.add(task)
        task.add_done_callback(self._notifications.discard)

    async def drain(self) -> None:
        """Wait until the tuner has heard about every result and trial end (and checkpointed)."""
        while self._notifications:
            await asyncio.gather(*list(self._notifications), return_exceptions=True)

    # -- checkpoints ----------------------------------------------------------------------------
    def _take_unsaved(self) -> TunerCheckpoint:
        """The trials a checkpoint queued now will include (everything queued to the tuner before it)."""
        known = TunerCheckpoint(None, tuple(self._unsaved_results), tuple(self._unsaved_ends))
        self._unsaved_results, self._unsaved_ends = set(), set()
        return known

    def unsaved_back(self, checkpoint: TunerCheckpoint | None) -> None:
        """A checkpoint was not stored after all: its trials count as unsaved again."""
        if checkpoint is not None:
            self._unsaved_results.update(checkpoint.results)
            self._unsaved_ends.update(checkpoint.ends)

    async def checkpoint(self) -> None:
        """Save the tuner's state now (a database that refuses it ends the experiment in ERROR)."""
        assert self.tuner is not None
        saved = self._take_unsaved()
        try:
            state = await self.call(self.tuner.save_checkpoint)
            if state is None:
                self.unsaved_back(saved)
                return
            saved = TunerCheckpoint(state, saved.results, saved.ends)
            crash_point("tuner.checkpoint")
            await self.store.call(self.store.save_tuner_checkpoint, self.experiment_id, saved)
        except StorageError as exc:
            self.unsaved_back(saved)
            self._on_storage_failure(exc)
        except Exception as exc:
            self.unsaved_back(saved)
            await self._checkpoint_failed((exc, traceback.format_exc()))

    async def _checkpoint_failed(self, problem: tuple[Exception, str]) -> None:
        if not self._checkpoint_warned:
            self._checkpoint_warned = True
            exc, details = problem
            with contextlib.suppress(StorageError):
                await self._on_error(f"tuner checkpoint could not be saved: {exc}", details)


def build_tuner(config: ExperimentConfig, space: SearchSpace | None) -> Tuner:
    """Create the tuner and, when the space is known, hand it over (it may refuse it).

    Run it in the thread the tuner will live in (:meth:`TunerSession.executor`).
    """
    tuner = create_tuner(config.tuner, config.objectives)
    if space is not None:
        tuner.update_search_space(space)
    return tuner
