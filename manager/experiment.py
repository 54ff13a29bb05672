"""The experiment loop: ask the tuner for architectures, run them as trials, feed results back.

Each experiment is one asyncio task on the daemon's loop that sleeps until something happens
(a trial ended, a metric arrived, a limit changed, a stop was asked for, a deadline passed) and
then does everything that became possible: a free slot is filled as soon as the trial that held
it has ended. Tuner calls run in one worker thread per experiment, so a slow tuner never stalls
the REST API, and the tuner only ever sees that one thread.

Statuses (NNI's): INITIALIZED -> RUNNING -> NO_MORE_TRIAL (tuner exhausted or maxTrialNumber
reached; running trials finish) -> DONE. maxExperimentDuration cancels the running trials and
ends in DONE. A stop goes STOPPING -> STOPPED after every trial's process is gone. ERROR when the
loop cannot go on (no search space, a tuner that cannot start, a tuner that fails with nothing
running, a database that can no longer be written). STOPPED, DONE and ERROR experiments can be
resumed; raising a limit of a DONE one continues it.

Crash recovery. Everything the loop knows is in the store: trials (with the pid and start time
of their process, and the byte offset of metrics.jsonl stored with the metrics), and the
tuner's checkpoint, saved in the same transaction as each new trial and after each result, with
marks on the trials whose result and end it already holds. When a daemon starts after a crash
(:meth:`ExperimentManager.recover`), it stores what the trials reported while it was down,
settles the trials whose process has ended (decided by their final result: the exit status of
a process that is not our child cannot be known), leaves the live ones running, and marks the
experiment STOPPED. ``resume`` then re-adopts the live trials (same pid AND same start time, so
a reused pid is never mistaken for a trial), restarts WAITING ones, restores the tuner from its
checkpoint and tells it what the checkpoint missed. A trial that ended without a final result
while no daemon watched it is FAILED and gives its place in maxTrialNumber back, as do trials
cancelled by a stop (or an error), so a resumed experiment still runs its full budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from manager.config import ConfigError, ExperimentConfig
from manager.store import (
    KEEP,
    EventKind,
    ExperimentRecord,
    ExperimentStatus,
    StorageError,
    Store,
    TrialRecord,
    TrialStatus,
    TunerCheckpoint,
    now_ms,
)
from manager.training.base import MetricReport, TrainingService, TrialExit, TrialSpec, last_line
from manager.training.local import (
    DEFAULT_MAX_LOG_BYTES,
    LocalTrainingService,
    is_same_process,
    kill_stale_trial,
    read_metrics_file,
)
from trials import env
from trials.errors import SearchSpaceError
from trials.searchspace import SearchSpace

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How often a running trial's metrics.jsonl is checked for new records (its end is awaited,
#: and a last read follows it, so this only bounds how stale live curves look).
METRIC_POLL_SECONDS = 0.25
#: A trial waiting for a GPU looks again this often, since other programs free GPUs silently.
GPU_RETRY_SECONDS = 5.0
#: When the database refuses to record how an experiment ended, try again after these pauses
#: (a full disk may be cleaned up, a read-only mount remounted), then give up.
STATUS_RETRY_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
RESUMABLE = (ExperimentStatus.STOPPED, ExperimentStatus.DONE, ExperimentStatus.ERROR)
#: Why a trial that no daemon watched ended as it did (its exit status is unknown).
ENDED_UNWATCHED = "the process ended while the daemon was down"
NO_FINAL_UNWATCHED = f"{ENDED_UNWATCHED}, without a final result"
NO_FINAL_ADOPTED = "ended without a final result (re-adopted after a daemon restart: exit status unknown)"


class ExperimentNotFound(LookupError):
    """No experiment has this id."""


class TrialNotFound(LookupError):
    """The experiment has no trial with this id."""


class InvalidState(RuntimeError):
    """The request is not allowed in the experiment's (or trial's) current status."""


GpuInventory = Callable[[], Any]


@dataclass
class _ActiveTrial:
    """A WAITING or RUNNING trial as the loop sees it."""

    record: TrialRecord
    task: asyncio.Task[None] | None = None
    end_request: tuple[TrialStatus, str] | None = None  # why we end it (cancel, limits)
    waiting_reason: str | None = None
    gpus: tuple[int, ...] = ()
    offset: int = 0
    has_final: bool = False
    final_is_nan: bool = False
    return_slot: bool = False  # its end gives its place in maxTrialNumber back
    notes: list[str] = field(default_factory=list)  # shown as the reason of a trial that succeeded
    ingest_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tail_stop: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def id(self) -> str:
        return self.record.id


class ExperimentRunner:
    """One experiment: its tuner (and the thread that runs it), its trials, its loop task."""

    def __init__(
        self,
        manager: ExperimentManager,
        record: ExperimentRecord,
        config: ExperimentConfig,
        tuner: Any = None,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.manager = manager
        self.store = manager.store
        self.id = record.id
        self.config = config
        self.record = record
        self.status = record.status
        self.trial_concurrency = record.trial_concurrency
        self.max_trial_number = record.max_trial_number
        self.max_experiment_duration = record.max_experiment_duration
        self.space: SearchSpace | None = (
            SearchSpace.from_json(record.search_space) if record.search_space is not None else None
        )
        #: Built by ``create`` in ``executor`` (this runner's tuner thread), or later by the runner.
        self.tuner: Any = tuner
        self._tuner_has_space = tuner is not None and self.space is not None
        self.service: TrainingService = manager.make_training_service(config)
        self._executor = executor
        self.allocator: Any = None
        self.trials: dict[str, _ActiveTrial] = {}
        self.task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stop_request: tuple[ExperimentStatus, TrialStatus, str] | None = None
        self._next_sequence = record.next_sequence_id
        self._returned = record.returned_slots
        self._exhausted = False
        self._tuner_busy = False
        self._generate_failed = False
        self._run_started = 0.0
        self._elapsed_before = record.elapsed
        self._notifications: set[asyncio.Task[None]] = set()
        self._checkpoint_warned = False
        # trials whose result / end was queued to the tuner since the last stored checkpoint
        self._unsaved_results: set[str] = set()
        self._unsaved_ends: set[str] = set()
        self._storage_failure: str | None = None
        self._storage_recorded = False

    # -- public ------------------------------------------------------------------------------
    @property
    def executor(self) -> ThreadPoolExecutor:
        """The tuner's one thread while the loop runs (a finished experiment holds no thread)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"tuner-{self.id}")
        return self._executor

    def _release_thread(self, cancel: bool = False) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=cancel)
            self._executor = None

    @property
    def is_running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self, record: ExperimentRecord) -> None:
        """Start (or continue) the loop from the stored state in ``record``."""
        self.record = record
        self.trial_concurrency = record.trial_concurrency
        self.max_trial_number = record.max_trial_number
        self.max_experiment_duration = record.max_experiment_duration
        self._elapsed_before = record.elapsed
        self._next_sequence = record.next_sequence_id
        self._returned = record.returned_slots
        self._stop_request = None
        self._storage_failure = None
        self._storage_recorded = False
        self._generate_failed = False
        self._tuner_busy = False
        self.task = asyncio.create_task(self._main(), name=f"experiment-{self.id}")

    def wake(self) -> None:
        self._wake.set()

    def limits_changed(self, record: ExperimentRecord) -> None:
        self.trial_concurrency = record.trial_concurrency
        self.max_trial_number = record.max_trial_number
        self.max_experiment_duration = record.max_experiment_duration
        self.wake()

    def could_continue(self, record: ExperimentRecord) -> bool:
        """True when a DONE experiment's limits leave room for more trials."""
        return not self._exhausted and _room_left(record)

    async def stop(self, final: ExperimentStatus, trial_status: TrialStatus, reason: str) -> None:
        """Ask the loop to cancel every trial and end in ``final``; returns when it has."""
        if self.task is None:
            return
        if self._stop_request is None:
            self._stop_request = (final, trial_status, reason)
        self.wake()
        await asyncio.shield(self.task)

    async def cancel_trial(self, trial_id: str, reason: str = "canceled by user") -> None:
        """USER_CANCELED for one WAITING or RUNNING trial; returns once its process is gone."""
        active = self.trials.get(trial_id)
        if active is None:
            raise InvalidState("trial has already ended")
        await self._end_trial(active, TrialStatus.USER_CANCELED, reason)

    async def close(self) -> None:
        await self.service.close()
        self._release_thread(cancel=True)

    # -- the loop ----------------------------------------------------------------------------
    async def _main(self) -> None:
        try:
            if not await self._prepare():
                return
            await self._take_over_unfinished()
            self._run_started = time.monotonic()
            if self._stop_request is not None:  # stopped while ss_gen or the tuner was starting
                await self._cancel_all(self._stop_request[1], self._stop_request[2])
                await self._finish(self._stop_request[0], run=False)
                return
            await self._set_status(
                ExperimentStatus.RUNNING,
                start_time=self.record.start_time or now_ms(),
                end_time=None,
            )
            final = await self._loop()
            await self._drain_notifications()
            await self._finish(final)
        except Exception as exc:  # a bug in the loop, or a database that refuses writes
            if isinstance(exc, StorageError):
                self._fail_storage(exc)
                reason = str(exc)
            else:
                log.exception("experiment %s: loop failed", self.id)
                reason = f"experiment loop failed: {exc}"
                with contextlib.suppress(Exception):
                    await self._record_error(reason, traceback.format_exc())
            with contextlib.suppress(Exception):
                await self._cancel_all(TrialStatus.SYS_CANCELED, reason, return_slot=True)
            with contextlib.suppress(Exception):
                await self._finish(ExperimentStatus.ERROR)
        finally:
            self._release_thread()

    def _fail_storage(self, exc: StorageError) -> None:
        """The database refused a write: end the experiment in ERROR, saying why (once)."""
        if self._storage_failure is None:
            self._storage_failure = str(exc)
            log.error("experiment %s: %s", self.id, exc)
        self._stop_request = (ExperimentStatus.ERROR, TrialStatus.SYS_CANCELED, self._storage_failure)
        self.wake()

    async def _prepare(self) -> bool:
        """Search space and tuner ready; False (experiment in ERROR) when that is impossible."""
        try:
            if self.space is None:
                self.space = await self._generate_space()
            if self.tuner is None:
                await self._start_tuner()
            elif not self._tuner_has_space:
                await self._tuner_call(self.tuner.update_search_space, self.space)
                self._tuner_has_space = True
        except StorageError:
            raise
        except (SearchSpaceError, ValueError, OSError) as exc:
            await self._record_error(str(exc), None)
            await self._finish(ExperimentStatus.ERROR, run=False)
            return False
        except Exception as exc:
            await self._record_error(f"tuner failed to start: {exc}", traceback.format_exc())
            await self._finish(ExperimentStatus.ERROR, run=False)
            return False
        return True

    async def _generate_space(self) -> SearchSpace:
        from manager.searchspace import generate_search_space

        output = self.record.experiment_dir / "search_space.json"
        output.parent.mkdir(parents=True, exist_ok=True)
        space = await asyncio.to_thread(
            generate_search_space, self.config.trial_command, self.config.trial_code_directory, output
        )
        await self.store.call(self.store.set_search_space, self.id, space.to_json())
        return space

    async def _start_tuner(self) -> None:
        """Create the tuner in its thread, give it the space, and restore what it had learned.

        From a checkpoint, the tuner then hears the results and ends that the checkpoint missed
        (those that arrived between the last save and a crash), each exactly once.
        """
        from manager.tuners import create_tuner

        assert self.space is not None
        space = self.space
        tuner = await self._tuner_call(create_tuner, self.config.tuner)
        await self._tuner_call(tuner.update_search_space, space)
        checkpoint = await self.store.call(self.store.load_tuner_checkpoint, self.id)
        if checkpoint is not None:
            await self._tuner_call(tuner.load_checkpoint, checkpoint)
            for trial in await asyncio.to_thread(self.store.tuner_backlog, self.id):
                if trial.final_metric_data is not None and not trial.result_in_checkpoint:
                    value = trial_value(trial.final_metric_data)
                    params = dict(trial.parameters)
                    await self._tuner_call(tuner.receive_trial_result, trial.parameter_id, params, value)
                    self._unsaved_results.add(trial.id)
                if trial.status.is_terminal and not trial.end_in_checkpoint:
                    success = trial.status is TrialStatus.SUCCEEDED
                    await self._tuner_call(tuner.trial_end, trial.parameter_id, success)
                    self._unsaved_ends.add(trial.id)
        else:
            results = await asyncio.to_thread(self.store.succeeded_results, self.id)
            records = [
                {"parameter": dict(trial.parameters), "value": trial_value(value)} for trial, value in results
            ]
            if records:
                await self._tuner_call(tuner.import_data, records)
        self.tuner = tuner
        self._tuner_has_space = True
        self._exhausted = False
        if self._unsaved_results or self._unsaved_ends:
            await self._checkpoint()

    async def _take_over_unfinished(self) -> None:
        """Continue the trials an earlier run left unfinished: adopt live ones, queue WAITING ones."""
        unfinished = await asyncio.to_thread(
            self.store.trials_with_status, self.id, [TrialStatus.WAITING, TrialStatus.RUNNING]
        )
        for record in unfinished:
            if record.id in self.trials:
                continue
            if record.status is TrialStatus.WAITING:
                self.trials[record.id] = _ActiveTrial(record)
                continue
            active = _ActiveTrial(
                record,
                gpus=record.gpus,
                offset=record.metrics_offset,
                has_final=record.final_metric_data is not None,
            )
            spec = self._spec(active)
            process = None
            if record.pid is not None and record.pid_create_time is not None:
                process = await self.service.adopt(spec, record.pid, record.pid_create_time)
            if process is None:  # it ended while no daemon watched it
                await self.manager.settle_unwatched(record)
                continue
            self.trials[record.id] = active
            if active.gpus:
                self._hold_gpus(active.id, active.gpus)
            await self.store.call(
                self.store.add_event,
                self.id,
                EventKind.DAEMON_RESTARTED,
                f"re-adopted: pid {record.pid} still runs this trial",
                trial_id=record.id,
                data={"pid": record.pid},
            )
            log.info("experiment %s: re-adopted trial %s (pid %d)", self.id, record.id, record.pid)
            active.task = asyncio.create_task(self._watch_trial(active, spec), name=f"trial-{active.id}")

    async def _loop(self) -> ExperimentStatus:
        """Run until the experiment ends; returns its final status."""
        while True:
            self._wake.clear()
            if self._stop_request is not None:
                final, trial_status, reason = self._stop_request
                if final is ExperimentStatus.STOPPED:
                    await self._set_status(ExperimentStatus.STOPPING, reason)
                # trials cut short by a stop or an error give their place back; a deadline does not
                await self._cancel_all(trial_status, reason, return_slot=final is not ExperimentStatus.DONE)
                return final
            remaining = self._remaining_duration()
            if remaining is not None and remaining <= 0:
                limit = _seconds(self.max_experiment_duration)
                self._stop_request = (
                    ExperimentStatus.DONE,
                    TrialStatus.SYS_CANCELED,
                    f"experiment reached maxExperimentDuration {limit} s",
                )
                continue
            await self._start_waiting_trials()
            await self._fill_slots()
            if self._stop_request is not None:
                continue
            wanted = ExperimentStatus.RUNNING if self._can_generate() else ExperimentStatus.NO_MORE_TRIAL
            if wanted is not self.status:
                await self._set_status(
                    wanted, self._why_no_more() if wanted is ExperimentStatus.NO_MORE_TRIAL else ""
                )
            if not self.trials:
                if self.status is ExperimentStatus.NO_MORE_TRIAL:
                    return ExperimentStatus.DONE
                if self._generate_failed:
                    return ExperimentStatus.ERROR
                if self._tuner_busy:
                    await self._record_error(
                        "tuner is busy (waiting for results) but no trial is running", None
                    )
                    return ExperimentStatus.ERROR
            timeout = remaining
            if any(t.task is None for t in self.trials.values()):
                timeout = GPU_RETRY_SECONDS if timeout is None else min(timeout, GPU_RETRY_SECONDS)
            if self._wake.is_set():
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _remaining_duration(self) -> float | None:
        if self.max_experiment_duration is None:
            return None
        used = self._elapsed_before + (time.monotonic() - self._run_started)
        return self.max_experiment_duration - used

    def _can_generate(self) -> bool:
        if self._exhausted:
            return False
        used = self._next_sequence - self._returned
        return self.max_trial_number is None or used < self.max_trial_number

    def _why_no_more(self) -> str:
        if self._exhausted:
            return "the tuner has no more architectures"
        return f"maxTrialNumber {self.max_trial_number} reached"

    async def _fill_slots(self) -> None:
        while (
            self._stop_request is None
            and self._can_generate()
            and len(self.trials) < self.trial_concurrency
            and not self._tuner_busy
            and not self._generate_failed
            and not any(t.task is None for t in self.trials.values())  # a trial still waits for a GPU
        ):
            generated = await self._generate()
            if generated is None:
                return
            parameters, checkpoint = generated
            try:
                record = await self.store.call(self.store.create_trial, self.id, parameters, checkpoint)
            except BaseException:
                self._unsaved_back(checkpoint)
                raise
            self._next_sequence = record.sequence_id + 1
            active = _ActiveTrial(record)
            self.trials[record.id] = active
            await self._try_start(active)

    async def _generate(self) -> tuple[dict[str, Any], TunerCheckpoint | None] | None:
        """The tuner's next architecture and its checkpoint right after (stored with the trial)."""
        from manager.tuners.base import NoMoreTrials, TunerBusy

        parameter_id = self._next_sequence
        known = self._take_unsaved()  # what the checkpoint taken after this proposal includes
        parameters: Any = None
        state: Any = None
        problem: tuple[Exception, str] | None = None
        try:
            parameters, state, problem = await self._tuner_call(self._propose, parameter_id)
        except NoMoreTrials:
            self._exhausted = True
        except TunerBusy:
            self._tuner_busy = True
        except Exception as exc:
            self._generate_failed = True
            await self._record_error(
                f"tuner generate_parameters({parameter_id}) failed: {exc}", traceback.format_exc()
            )
        else:
            if not isinstance(parameters, dict):
                self._generate_failed = True
                await self._record_error(
                    f"tuner generate_parameters({parameter_id}) returned {type(parameters).__name__}, "
                    "not a dict",
                    None,
                )
                parameters = None
        if parameters is None or state is None:
            self._unsaved_back(known)
            if problem is not None:
                await self._checkpoint_failed(problem)
            return None if parameters is None else (parameters, None)
        return parameters, TunerCheckpoint(state, known.results, known.ends)

    def _propose(self, parameter_id: int) -> tuple[Any, Any, tuple[Exception, str] | None]:
        """In the tuner's thread: generate_parameters, then save_checkpoint (a failure is kept)."""
        parameters = self.tuner.generate_parameters(parameter_id)
        try:
            return parameters, self.tuner.save_checkpoint(), None
        except Exception as exc:
            return parameters, None, (exc, traceback.format_exc())

    async def _start_waiting_trials(self) -> None:
        for active in sorted(self.trials.values(), key=lambda t: t.record.sequence_id):
            if self._stop_request is not None:
                return
            if active.task is None and active.end_request is None and not await self._try_start(active):
                return  # first come, first served: later trials wait behind it

    async def _try_start(self, active: _ActiveTrial) -> bool:
        """Start ``active`` if its GPUs are free; else record why it waits."""
        gpus: tuple[int, ...] = ()
        count = self.config.trial_gpu_number
        if count > 0:
            allocated = await asyncio.to_thread(self._allocate, active.id, count)
            if active.end_request is not None or self._stop_request is not None:
                if allocated is not None:
                    self._release(active.id)
                return False
            if allocated is None:
                reason = await asyncio.to_thread(self._why_waiting, count)
                if reason != active.waiting_reason:
                    active.waiting_reason = reason
                    await self.store.call(self.store.set_waiting_reason, active.id, reason)
                return False
            gpus = tuple(allocated)
        active.gpus = gpus
        active.task = asyncio.create_task(self._run_trial(active), name=f"trial-{active.id}")
        return True

    # -- GPUs --------------------------------------------------------------------------------
    def _gpu_allocator(self) -> Any:
        if self.allocator is None:
            from manager.gpu import GpuAllocator, detect_gpus

            service = self.config.training_service
            self.allocator = GpuAllocator(
                inventory=self.manager.gpu_inventory or detect_gpus,
                gpu_indices=service.gpu_indices,
                max_trials_per_gpu=service.max_trial_number_per_gpu,
                use_active_gpu=service.use_active_gpu,
            )
        return self.allocator

    def _allocate(self, trial_id: str, count: int) -> tuple[int, ...] | None:
        return self._gpu_allocator().allocate(trial_id, count)  # thread-safe; may run nvidia-smi

    def _why_waiting(self, count: int) -> str:
        return str(self._gpu_allocator().why_waiting(count))

    def _release(self, trial_id: str) -> None:
        if self.allocator is not None:
            self.allocator.release(trial_id)

    def _hold_gpus(self, trial_id: str, gpus: tuple[int, ...]) -> None:
        """Count an adopted trial's GPUs as ours."""
        self._gpu_allocator().hold(trial_id, gpus)

    # -- one trial ---------------------------------------------------------------------------
    def _spec(self, active: _ActiveTrial) -> TrialSpec:
        record = active.record
        return TrialSpec(
            trial_id=record.id,
            experiment_id=self.id,
            sequence_id=record.sequence_id,
            command=self.config.trial_command,
            working_dir=self.config.trial_code_directory,
            trial_dir=record.trial_dir,
            gpus=active.gpus,
        )

    async def _run_trial(self, active: _ActiveTrial) -> None:
        spec = self._spec(active)
        record = active.record
        packed = {
            "parameter_id": record.parameter_id,
            "parameter_source": "algorithm",
            "parameters": dict(record.parameters),
            "parameter_index": 0,
        }
        try:
            process = await self.service.submit(spec, packed)
        except Exception as exc:  # the next trial would fail the same way: stop the experiment
            reason = f"cannot start the trial: {exc}"
            with contextlib.suppress(StorageError):
                await self._record_error(reason, traceback.format_exc(), active.id)
            if self._stop_request is None:
                self._stop_request = (ExperimentStatus.ERROR, TrialStatus.SYS_CANCELED, reason)
            await self._close_trial(active, TrialStatus.FAILED, reason)
            return
        try:
            await self.store.call(
                self.store.mark_trial_running,
                active.id,
                pid=process.pid,
                pid_create_time=process.create_time,
                gpus=active.gpus,
            )
        except StorageError as exc:
            self._fail_storage(exc)
            active.end_request = active.end_request or (TrialStatus.SYS_CANCELED, str(exc))
        if active.end_request is not None:  # canceled while it was starting
            await self.service.kill(active.id)
        await self._watch_trial(active, spec)

    async def _watch_trial(self, active: _ActiveTrial, spec: TrialSpec) -> None:
        """Follow a started (or adopted) trial to its end, then record it; never raises."""
        try:
            tail = asyncio.create_task(self._tail(active, spec))
            exit_ = await self._await_exit(active)
            active.tail_stop.set()
            await tail
            await self._ingest(active, spec, final=True)
            status, reason = self._outcome(active, exit_)
            await self._close_trial(active, status, reason, exit_)
        except Exception as exc:
            if isinstance(exc, StorageError):
                self._fail_storage(exc)
                reason = str(exc)
            else:
                log.exception("experiment %s: trial %s failed in the daemon", self.id, active.id)
                reason = f"daemon error: {exc}"
                with contextlib.suppress(Exception):
                    await self._record_error(f"trial {active.id}: {exc}", traceback.format_exc(), active.id)
            with contextlib.suppress(Exception):
                await self.service.kill(active.id)
            status, why = active.end_request or (TrialStatus.SYS_CANCELED, reason)
            with contextlib.suppress(Exception):
                await self._close_trial(active, status, why)

    async def _await_exit(self, active: _ActiveTrial) -> TrialExit:
        waiter = asyncio.create_task(self.service.wait(active.id))
        limit = self.config.max_trial_duration
        if limit is not None:
            started = active.record.start_time
            used = max(0.0, (now_ms() - started) / 1000) if started is not None else 0.0
            done, _ = await asyncio.wait({waiter}, timeout=max(0.0, limit - used))
            if not done:
                if active.end_request is None:
                    active.end_request = (
                        TrialStatus.FAILED,
                        f"exceeded maxTrialDuration {_seconds(limit)} s",
                    )
                await self.service.kill(active.id)
        return await waiter

    def _outcome(self, active: _ActiveTrial, exit_: TrialExit) -> tuple[TrialStatus, str | None]:
        if active.end_request is not None:
            return active.end_request
        if not exit_.observed:  # adopted: its exit status is unknown, its result decides
            if not active.has_final:
                return TrialStatus.FAILED, NO_FINAL_ADOPTED
            return TrialStatus.SUCCEEDED, self._notes(active, "re-adopted after a daemon restart")
        if not exit_.succeeded:
            return TrialStatus.FAILED, self._failure_reason(active, exit_)
        if not active.has_final:
            return TrialStatus.FAILED, "no final result"
        return TrialStatus.SUCCEEDED, self._notes(active)

    def _failure_reason(self, active: _ActiveTrial, exit_: TrialExit) -> str | None:
        """The exit, with a hint: the last line of stderr, or who sends a SIGKILL we did not send."""
        reason = exit_.reason
        if exit_.signal == signal.SIGKILL:
            return f"{reason} (SIGKILL, not sent by nasctl: often the out-of-memory killer)"
        last = last_line(self._spec(active).trial_dir / env.STDERR_FILE_NAME)
        return f"{reason}: {last}" if last and reason else reason

    @staticmethod
    def _notes(active: _ActiveTrial, *extra: str) -> str | None:
        notes = [*extra, *active.notes]
        if active.final_is_nan:
            notes.insert(0, "the final result is NaN")
        return "; ".join(notes) or None

    async def _close_trial(
        self, active: _ActiveTrial, status: TrialStatus, reason: str | None, exit_: TrialExit | None = None
    ) -> None:
        """Record the end, free the GPUs, tell the tuner, and wake the loop to fill the slot.

        When the database refuses the write, the trial still ends here (the experiment goes to
        ERROR, and :meth:`_finish` records the trials it could not).
        """
        try:
            await self.store.call(
                self.store.finish_trial,
                active.id,
                status,
                exit_code=exit_.exit_code if exit_ else None,
                signal=exit_.signal if exit_ else None,
                reason=reason,
                return_slot=active.return_slot,
            )
            if active.return_slot:
                self._returned += 1
        except StorageError as exc:
            self._fail_storage(exc)
        finally:
            self._release(active.id)
            self.trials.pop(active.id, None)
            active.finished.set()
            self._tuner_busy = False
            self._generate_failed = False
            if self.tuner is not None:
                success = status is TrialStatus.SUCCEEDED
                # a success was learned from (and checkpointed) with its result; a failure is news
                self._unsaved_ends.add(active.id)
                self._notify_tuner(
                    "trial_end",
                    self.tuner.trial_end,
                    active.record.parameter_id,
                    success,
                    checkpoint=not success,
                )
            self.wake()

    async def _end_trial(
        self, active: _ActiveTrial, status: TrialStatus, reason: str, return_slot: bool = False
    ) -> None:
        """End one trial on our side (cancel, stop, limit) and wait until it is recorded."""
        if active.end_request is None:
            active.end_request = (status, reason)
            active.return_slot = return_slot
        if active.task is None:  # still WAITING: no process to kill
            await self._close_trial(active, *active.end_request)
            return
        await self.service.kill(active.id)
        await active.finished.wait()

    async def _cancel_all(self, status: TrialStatus, reason: str, return_slot: bool = False) -> None:
        await asyncio.gather(
            *(self._end_trial(t, status, reason, return_slot) for t in list(self.trials.values()))
        )
        await self._drain_notifications()

    async def _drain_notifications(self) -> None:
        """Wait until the tuner has heard about every result and trial end (and checkpointed)."""
        while self._notifications:
            await asyncio.gather(*list(self._notifications), return_exceptions=True)

    # -- metrics -----------------------------------------------------------------------------
    async def _tail(self, active: _ActiveTrial, spec: TrialSpec) -> None:
        interval = self.manager.metric_poll_seconds
        while True:
            # wait first: a trial that ends within one interval (most of a fast search) is read once,
            # at its exit, and costs no poll at all
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(active.tail_stop.wait(), interval)
            if active.tail_stop.is_set():
                return
            try:
                await self._ingest(active, spec)
                await self._trim_logs(active, spec)
            except StorageError as exc:  # the loop ends the experiment; this trial is killed then
                self._fail_storage(exc)
            except Exception as exc:  # a store hiccup must not end the trial; the final read retries
                log.warning("experiment %s: reading metrics of %s failed: %s", self.id, active.id, exc)

    async def _trim_logs(self, active: _ActiveTrial, spec: TrialSpec) -> None:
        for note in await asyncio.to_thread(self.service.trim_logs, spec):
            if note not in active.notes:
                active.notes.append(note)
            await self.store.call(
                self.store.add_event, self.id, EventKind.LOG_TRIMMED, note, trial_id=active.id
            )

    async def _ingest(self, active: _ActiveTrial, spec: TrialSpec, final: bool = False) -> None:
        """Store what the trial reported since the last read (exactly once, see Store.ingest_metrics)."""
        async with active.ingest_lock:
            while True:
                chunk = self.service.read_metrics(spec, active.offset, final)
                if chunk.offset == active.offset and not chunk.reports and not chunk.invalid:
                    return
                result = await self.store.call(
                    self.store.ingest_metrics,
                    active.id,
                    expected_offset=active.offset,
                    new_offset=chunk.offset,
                    reports=chunk.reports,
                    invalid=chunk.invalid,
                )
                active.offset = result.offset
                if result.final is not None:
                    active.has_final = True
                    active.final_is_nan = math.isnan(result.final.default_value)
                    self._deliver_result(active, result.final)
                if not chunk.more:
                    return

    def _deliver_result(self, active: _ActiveTrial, report: MetricReport) -> None:
        if self.tuner is None:
            return
        self._tuner_busy = False
        record = active.record
        self._unsaved_results.add(active.id)
        self._notify_tuner(
            "receive_trial_result",
            self.tuner.receive_trial_result,
            record.parameter_id,
            dict(record.parameters),
            report.default_value,
            checkpoint=getattr(self.tuner, "learns_from_results", True),
        )

    # -- tuner thread ------------------------------------------------------------------------
    async def _tuner_call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, fn, *args)

    def _notify_tuner(self, what: str, fn: Callable[..., Any], *args: Any, checkpoint: bool = True) -> None:
        """Tell the tuner something in its thread without waiting; then (optionally) checkpoint it.

        The call is queued at once, so the tuner sees results and trial ends before any
        ``generate_parameters`` the loop asks for afterwards.
        """
        queued = asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

        async def run() -> None:
            try:
                await queued
            except Exception as exc:
                with contextlib.suppress(StorageError):
                    await self._record_error(f"tuner {what} failed: {exc}", traceback.format_exc())
            else:
                if checkpoint:
                    await self._checkpoint()
            finally:
                self.wake()

        task = asyncio.create_task(run())
        self._notifications.add(task)
        task.add_done_callback(self._notifications.discard)

    def _take_unsaved(self) -> TunerCheckpoint:
        """The trials a checkpoint queued now will include (everything queued to the tuner before it)."""
        known = TunerCheckpoint(None, tuple(self._unsaved_results), tuple(self._unsaved_ends))
        self._unsaved_results, self._unsaved_ends = set(), set()
        return known

    def _unsaved_back(self, checkpoint: TunerCheckpoint | None) -> None:
        if checkpoint is not None:
            self._unsaved_results.update(checkpoint.results)
            self._unsaved_ends.update(checkpoint.ends)

    async def _checkpoint(self) -> None:
        saved = self._take_unsaved()
        try:
            state = await self._tuner_call(self.tuner.save_checkpoint)
            if state is None:
                self._unsaved_back(saved)
                return
            saved = TunerCheckpoint(state, saved.results, saved.ends)
            await self.store.call(self.store.save_tuner_checkpoint, self.id, saved)
        except StorageError as exc:
            self._unsaved_back(saved)
            self._fail_storage(exc)
        except Exception as exc:
            self._unsaved_back(saved)
            await self._checkpoint_failed((exc, traceback.format_exc()))

    async def _checkpoint_failed(self, problem: tuple[Exception, str]) -> None:
        if not self._checkpoint_warned:
            self._checkpoint_warned = True
            exc, details = problem
            with contextlib.suppress(StorageError):
                await self._record_error(f"tuner checkpoint could not be saved: {exc}", details)

    # -- status ------------------------------------------------------------------------------
    async def _set_status(self, status: ExperimentStatus, message: str = "", **fields: Any) -> None:
        self.record = await self.store.call(
            self.store.set_experiment_status, self.id, status, message, **fields
        )
        self.status = status
        log.info("experiment %s: %s%s", self.id, status.value, f" ({message})" if message else "")

    async def _finish(self, final: ExperimentStatus, run: bool = True) -> None:
        elapsed = self._elapsed_before + (time.monotonic() - self._run_started) if run else KEEP
        reason = ""
        if self._stop_request is not None and self._stop_request[0] is final:
            reason = self._stop_request[2]
        for attempt, delay in enumerate((0.0, *STATUS_RETRY_SECONDS)):
            await asyncio.sleep(delay)
            try:
                if self._storage_failure is not None:
                    await self._record_storage_failure()
                await self._set_status(final, reason, end_time=now_ms(), elapsed=elapsed)
                break
            except StorageError as exc:
                if self._storage_failure is None:
                    self._storage_failure = str(exc)
                    if final is not ExperimentStatus.ERROR:
                        final, reason = ExperimentStatus.ERROR, str(exc)
                if attempt == len(STATUS_RETRY_SECONDS):
                    raise
                log.warning("experiment %s: cannot record %s yet: %s", self.id, final.value, exc)
        if run:
            self._elapsed_before = self.record.elapsed

    async def _record_storage_failure(self) -> None:
        """After the database refused a write: make room, then record why and the trials' ends."""
        reason = self._storage_failure or "the database refused a write"
        await asyncio.to_thread(self.store.make_room)
        if not self._storage_recorded:
            await self._record_error(reason, None)
            self._storage_recorded = True
        unrecorded = await asyncio.to_thread(
            self.store.trials_with_status, self.id, [TrialStatus.WAITING, TrialStatus.RUNNING]
        )
        for trial in unrecorded:
            if trial.id in self.trials:
                continue
            await self.store.call(
                self.store.finish_trial,
                trial.id,
                TrialStatus.SYS_CANCELED,
                reason=reason,
                return_slot=True,
            )

    async def _record_error(self, message: str, details: str | None, trial_id: str | None = None) -> None:
        log.error("experiment %s: %s", self.id, message)
        await self.store.call(self.store.record_error, self.id, message, details, trial_id)


class ExperimentManager:
    """Every experiment of one daemon: creates, stops, resumes, changes and deletes them.

    All methods run on the daemon's event loop.
    """

    def __init__(
        self,
        store: Store,
        home: Path,
        *,
        kill_grace: float = 5.0,
        gpu_inventory: GpuInventory | None = None,
        metric_poll_seconds: float = METRIC_POLL_SECONDS,
        max_log_bytes: int | None = DEFAULT_MAX_LOG_BYTES,
    ) -> None:
        self.store = store
        self.home = Path(home)
        self.experiments_root = self.home / "experiments"
        self.kill_grace = kill_grace
        self.gpu_inventory = gpu_inventory
        self.metric_poll_seconds = metric_poll_seconds
        self.max_log_bytes = max_log_bytes
        self.runners: dict[str, ExperimentRunner] = {}

    def make_training_service(self, config: ExperimentConfig) -> TrainingService:
        platform = config.training_service.platform
        if platform != "local":
            raise ConfigError(
                f"trainingService.platform: {platform!r} is not supported by this daemon yet; use local",
                field="trainingService.platform",
            )
        return LocalTrainingService(kill_grace=self.kill_grace, max_log_bytes=self.max_log_bytes)

    # -- lifecycle -----------------------------------------------------------------------------
    async def recover(self) -> list[str]:
        """Take stock of experiments that a previous daemon left active (it crashed, or the machine
        rebooted); they become STOPPED so that ``resume`` continues them. Returns their ids.

        Nothing is killed: every unfinished trial gets the metrics it wrote while no daemon ran;
        one whose process has ended is settled by its final result (:meth:`settle_unwatched`);
        a live one stays RUNNING until ``resume`` re-adopts it (or ``stop`` ends it). A stop that
        the crash interrupted (STOPPING) is finished instead.
        """
        touched = []
        for record in self.store.experiments_with_status(
            [
                ExperimentStatus.INITIALIZED,
                ExperimentStatus.RUNNING,
                ExperimentStatus.NO_MORE_TRIAL,
                ExperimentStatus.STOPPING,
            ]
        ):
            if record.status is ExperimentStatus.STOPPING:
                await self._end_orphans(record.id, "experiment stopped")
                summary = "daemon restarted during a stop: the stop was finished"
            else:
                live = 0
                for trial in self.store.trials_with_status(record.id, [TrialStatus.RUNNING]):
                    if await asyncio.to_thread(_still_runs, trial):
                        await self._ingest_leftover(trial, final=False)  # it may be mid-line
                        live += 1
                    else:
                        await self.settle_unwatched(trial)
                summary = (
                    f"daemon restarted: the experiment was stopped; {live} trial(s) still run and "
                    "resume re-adopts them (stop ends them)"
                    if live
                    else "daemon restarted: the experiment was stopped; resume continues it"
                )
            await self.store.call(self.store.add_event, record.id, EventKind.DAEMON_RESTARTED, summary)
            await self.store.call(
                self.store.set_experiment_status,
                record.id,
                ExperimentStatus.STOPPED,
                "daemon restarted",
                end_time=now_ms(),
            )
            touched.append(record.id)
        return touched

    async def settle_unwatched(self, trial: TrialRecord) -> None:
        """Record the end of a trial whose process ended while no daemon watched it.

        Its exit status is unknown (it was not our child), so its metrics decide: with a final
        result it SUCCEEDED; without one it FAILED and gives its place in maxTrialNumber back.
        """
        await self._ingest_leftover(trial)
        stored = self.store.get_trial(trial.experiment_id, trial.id) or trial
        if stored.final_metric_data is not None:
            await self.store.call(
                self.store.finish_trial,
                trial.id,
                TrialStatus.SUCCEEDED,
                reason=f"{ENDED_UNWATCHED} (its final result counts; exit status unknown)",
            )
        else:
            await self.store.call(
                self.store.finish_trial,
                trial.id,
                TrialStatus.FAILED,
                reason=NO_FINAL_UNWATCHED,
                return_slot=True,
            )

    async def _end_orphans(self, experiment_id: str, reason: str) -> int:
        """Kill the trials of a non-running experiment that an earlier daemon left; records each."""
        ended = 0
        for trial in self.store.trials_with_status(experiment_id, [TrialStatus.WAITING, TrialStatus.RUNNING]):
            if trial.pid is not None and trial.pid_create_time is not None:
                await asyncio.to_thread(kill_stale_trial, trial.pid, trial.pid_create_time, self.kill_grace)
            await self._ingest_leftover(trial)
            await self.store.call(
                self.store.finish_trial, trial.id, TrialStatus.USER_CANCELED, reason=reason, return_slot=True
            )
            ended += 1
        return ended

    async def _ingest_leftover(self, trial: TrialRecord, final: bool = True) -> None:
        """Store what ``trial`` wrote after its stored offset (``final``: its process has ended)."""
        offset = trial.metrics_offset
        while True:
            chunk = read_metrics_file(trial.trial_dir / env.METRICS_FILE_NAME, offset, final=final)
            if chunk.offset == offset and not chunk.reports and not chunk.invalid:
                return
            result = await self.store.call(
                self.store.ingest_metrics,
                trial.id,
                expected_offset=offset,
                new_offset=chunk.offset,
                reports=chunk.reports,
                invalid=chunk.invalid,
            )
            offset = result.offset
            if not chunk.more:
                return

    async def shutdown(self, reason: str = "daemon shut down") -> None:
        """Stop every active experiment (STOPPED, so resume continues it) and release everything."""
        await asyncio.gather(
            *(
                runner.stop(ExperimentStatus.STOPPED, TrialStatus.USER_CANCELED, reason)
                for runner in self.runners.values()
                if runner.is_running
            ),
            return_exceptions=True,
        )
        for runner in list(self.runners.values()):
            await runner.close()
        self.runners.clear()

    # -- requests ----------------------------------------------------------------------------
    def get(self, experiment_id: str) -> ExperimentRecord:
        record = self.store.get_experiment(experiment_id)
        if record is None:
            raise ExperimentNotFound(f"experiment {experiment_id!r} not found")
        return record

    async def create(self, config: ExperimentConfig) -> ExperimentRecord:
        """Check everything that can be checked, then create and start the experiment.

        Raises ``ConfigError`` / ``SearchSpaceError`` / ``TunerError`` (all ValueErrors) with
        nothing created when the config, the search space, the tuner or the GPU request is bad.
        """
        from manager.tuners import check_tuner_config

        self.make_training_service(config)
        space = load_search_space(config)
        check_tuner_config(config.tuner)
        if config.trial_gpu_number > 0:
            from manager.gpu import GpuAllocator, detect_gpus

            service = config.training_service
            allocator = GpuAllocator(
                inventory=self.gpu_inventory or detect_gpus,
                gpu_indices=service.gpu_indices,
                max_trials_per_gpu=service.max_trial_number_per_gpu,
                use_active_gpu=service.use_active_gpu,
            )
            problem = await asyncio.to_thread(allocator.validate, config.trial_gpu_number)
            if problem:
                raise ConfigError(f"trialGpuNumber: {problem}", field="trialGpuNumber")
        # The tuner is built (in the thread that will run it) before anything is stored, so a
        # tuner that cannot be imported or refuses the space is a 400 with nothing created.
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tuner")
        try:
            tuner = await asyncio.get_running_loop().run_in_executor(executor, _build_tuner, config, space)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        # The folder comes first and goes again if the row cannot be stored, so a full or
        # read-only disk is one clear error (StorageError) with nothing left behind.
        try:
            experiment_id, experiment_dir = await asyncio.to_thread(self._new_folder, space)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        try:
            record = await self.store.call(
                self.store.create_experiment,
                name=config.experiment_name or "",
                config=config.to_json(),
                search_space=space.to_json() if space is not None else None,
                trial_concurrency=config.trial_concurrency,
                max_trial_number=config.max_trial_number,
                max_experiment_duration=config.max_experiment_duration,
                optimize_mode=config.optimize_mode,
                tuner_name=config.tuner.name or config.tuner.class_name or "",
                experiments_root=self.experiments_root,
                experiment_id=experiment_id,
            )
        except BaseException:
            executor.shutdown(wait=False)
            await asyncio.to_thread(_remove_tree, experiment_dir)
            raise
        runner = ExperimentRunner(self, record, config, tuner=tuner, executor=executor)
        self.runners[record.id] = runner
        runner.start(record)
        return record

    def _new_folder(self, space: SearchSpace | None) -> tuple[str, Path]:
        """A fresh experiment id and its folder (with search_space.json); StorageError when the disk refuses."""
        from manager.store import new_experiment_id, storage_problem

        created: Path | None = None
        try:
            self.experiments_root.mkdir(parents=True, exist_ok=True)
            while created is None:
                experiment_id = new_experiment_id()
                folder = self.experiments_root / experiment_id
                if self.store.get_experiment(experiment_id) is None:
                    with contextlib.suppress(FileExistsError):
                        folder.mkdir()
                        created = folder
            if space is not None:
                (created / "search_space.json").write_text(space.dumps())
        except OSError as exc:
            if created is not None:
                _remove_tree(created)
            problem = storage_problem(exc) or (exc.strerror or str(exc))
            raise StorageError(
                f"cannot create the experiment folder in {self.experiments_root}: {problem}"
            ) from None
        return experiment_id, created

    async def stop(self, experiment_id: str) -> ExperimentRecord:
        """Cancel the experiment's trials, wait until their processes are gone, end STOPPED.

        A stopped experiment whose trials an earlier daemon left running (see :meth:`recover`)
        can be stopped again: that ends those trials.
        """
        record = self.get(experiment_id)
        runner = self.runners.get(experiment_id)
        if (runner is None or not runner.is_running) and await self._end_orphans(
            experiment_id, "experiment stopped"
        ):
            return self.get(experiment_id)
        if runner is None or not runner.is_running:
            raise InvalidState(
                f"experiment {experiment_id} is {record.status.value}; only an active one can be stopped"
            )
        await runner.stop(ExperimentStatus.STOPPED, TrialStatus.USER_CANCELED, "experiment stopped")
        return self.get(experiment_id)

    async def resume(self, experiment_id: str) -> ExperimentRecord:
        record = self.get(experiment_id)
        runner = self.runners.get(experiment_id)
        if (runner is not None and runner.is_running) or record.status not in RESUMABLE:
            allowed = ", ".join(s.value for s in RESUMABLE)
            raise InvalidState(
                f"experiment {experiment_id} is {record.status.value}; only {allowed} ones can be resumed"
            )
        await self._continue(record, fresh_tuner=record.status is ExperimentStatus.ERROR)
        return self.get(experiment_id)

    async def update(
        self,
        experiment_id: str,
        *,
        trial_concurrency: int | Any = KEEP,
        max_trial_number: int | Any | None = KEEP,
        max_experiment_duration: float | Any | None = KEEP,
    ) -> ExperimentRecord:
        """Change limits; they act at once, and room for more trials continues a DONE experiment."""
        self.get(experiment_id)
        record = await self.store.call(
            self.store.set_limits,
            experiment_id,
            trial_concurrency=trial_concurrency,
            max_trial_number=max_trial_number,
            max_experiment_duration=max_experiment_duration,
        )
        runner = self.runners.get(experiment_id)
        if runner is not None and runner.is_running:
            runner.limits_changed(record)
        elif record.status is ExperimentStatus.DONE and (
            runner.could_continue(record) if runner is not None else _room_left(record)
        ):
            await self._continue(record, fresh_tuner=False)
        return self.get(experiment_id)

    async def _continue(self, record: ExperimentRecord, fresh_tuner: bool) -> None:
        """Start the loop of a finished experiment again (INITIALIZED until it runs)."""
        runner = self.runners.get(record.id)
        if runner is None:
            config = ExperimentConfig.from_json(record.config)
            runner = ExperimentRunner(self, record, config)
            self.runners[record.id] = runner
        if fresh_tuner:
            runner.tuner = None  # rebuilt from the checkpoint (or the results) in the runner's thread
        record = await self.store.call(
            self.store.set_experiment_status, record.id, ExperimentStatus.INITIALIZED, "continued"
        )
        runner.status = record.status
        runner.start(record)

    async def delete(self, experiment_id: str) -> None:
        record = self.get(experiment_id)
        runner = self.runners.pop(experiment_id, None)
        if runner is not None:
            if runner.is_running:
                await runner.stop(ExperimentStatus.STOPPED, TrialStatus.USER_CANCELED, "experiment deleted")
            await runner.close()
        await self._end_orphans(experiment_id, "experiment deleted")
        await self.store.call(self.store.delete_experiment, experiment_id)
        await asyncio.to_thread(_remove_tree, record.experiment_dir)

    async def cancel_trial(self, experiment_id: str, trial_id: str) -> TrialRecord:
        self.get(experiment_id)
        trial = self.store.get_trial(experiment_id, trial_id)
        if trial is None:
            raise TrialNotFound(f"trial {trial_id!r} not found in experiment {experiment_id}")
        runner = self.runners.get(experiment_id)
        if trial.status.is_terminal or runner is None or trial_id not in runner.trials:
            raise InvalidState(
                f"trial {trial_id} is {trial.status.value}; only a WAITING or RUNNING trial can be killed"
            )
        await runner.cancel_trial(trial_id)
        result = self.store.get_trial(experiment_id, trial_id)
        assert result is not None
        return result


def load_search_space(config: ExperimentConfig) -> SearchSpace | None:
    """The config's search space (file or inline), or None when ss_gen must find it."""
    if config.search_space_file is not None:
        return SearchSpace.load(config.search_space_file)
    if config.search_space is not None:
        return SearchSpace.from_json(config.search_space, source="searchSpace")
    return None


def trial_value(value: Any) -> float:
    """The number a tuner learns from: the metric, or the ``default`` of a dict metric."""
    if isinstance(value, dict):
        value = value.get("default")
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _build_tuner(config: ExperimentConfig, space: SearchSpace | None) -> Any:
    """Create the tuner and, when the space is known, hand it over (it may refuse it)."""
    from manager.tuners import create_tuner

    tuner = create_tuner(config.tuner)
    if space is not None:
        tuner.update_search_space(space)
    return tuner


def _room_left(record: ExperimentRecord) -> bool:
    if record.max_trial_number is not None and record.budget_used >= record.max_trial_number:
        return False
    return not (
        record.max_experiment_duration is not None and record.elapsed >= record.max_experiment_duration
    )


def _still_runs(trial: TrialRecord) -> bool:
    return (
        trial.pid is not None
        and trial.pid_create_time is not None
        and is_same_process(trial.pid, trial.pid_create_time)
    )


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
