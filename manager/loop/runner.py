"""The runner of one experiment: ask the tuner for architectures, run them as trials, feed results back.

Each experiment is one asyncio task on the daemon's loop that sleeps until something happens
(a trial ended, a metric arrived, a limit changed, a stop was asked for, a deadline passed) and
then does everything that became possible: a free slot is filled as soon as the trial that held
it has ended. The tuner lives in a :class:`~manager.loop.tuner_session.TunerSession`; trials run
on the :class:`~manager.training.base.TrainingService` the runner is handed.

The experiment's states (NNI's): INITIALIZED -> RUNNING -> NO_MORE_TRIAL (tuner exhausted or
maxTrialNumber reached; running trials finish) -> DONE. maxExperimentDuration cancels the
running trials and ends in DONE. A stop goes STOPPING -> STOPPED after every trial's process is
gone. ERROR when the loop cannot go on (no search space, a tuner that cannot start, a tuner
that fails with nothing running, a database that can no longer be written) and after
maxConsecutiveFailures failed trials in a row (:mod:`manager.loop.failure_streak`). Every way out of
RUNNING is one :class:`StopRequest`, set once (the first one wins) and acted on by the loop.
Trials cut short by a stop or an error give their place in maxTrialNumber back; a deadline
does not. See docs/architecture.md, "The loop".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from manager.clock import Clock
from manager.config import ExperimentConfig
from manager.crash_points import crash_point
from manager.gpu import GpuAllocator, GpuInfo
from manager.loop.active_trial import ActiveTrial, TrialEnd, TrialPhase, stored_process, trial_spec
from manager.loop.early_stop import EarlyStopping
from manager.loop.ending import StopRequest, await_exit, room_left, seconds_text
from manager.loop.errors import InvalidState
from manager.loop.failure_streak import FailureStreak
from manager.loop.follow import FollowPace, TrialFollower
from manager.loop.launch import packed_parameter, submit_telling_why_it_waits
from manager.loop.recovery import resolve_launch, settle_unwatched
from manager.loop.tuner_session import TunerSession, TunerState
from manager.store import KEEP, EventKind, ExperimentRecord, FinalMetrics, StorageError, Store, now_ms
from manager.training.base import TrainingService, TrialExit, TrialSpec
from manager.tuners.base import Tuner
from trials.searchspace import SearchSpace
from trials.status import ExperimentStatus, TrialStatus

log = logging.getLogger(__name__)

#: A trial waiting for a GPU looks again this often, since other programs free GPUs silently.
GPU_RETRY_SECONDS = 5.0
#: When the database refuses to record how an experiment ended, try again after these pauses
#: (a full disk may be cleaned up, a read-only mount remounted), then give up.
STATUS_RETRY_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


@dataclass(frozen=True)
class RunnerSettings:
    """What a runner needs from the daemon besides its experiment."""

    store: Store
    clock: Clock
    metric_poll_seconds: float
    gpu_inventory: Callable[[], list[GpuInfo]] | None = None  # None: nvidia-smi
    #: The daemon's one metric-poll pace, shared by every experiment's trials.
    follow_pace: FollowPace = field(default_factory=FollowPace)


class ExperimentRunner(EarlyStopping):
    """One experiment: its tuner session, its trials on its training service, its loop task."""

    def __init__(
        self,
        settings: RunnerSettings,
        record: ExperimentRecord,
        config: ExperimentConfig,
        service: TrainingService,
        tuner: Tuner | None = None,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        """``tuner``: one already built (in ``executor``, its thread) for the stored search space."""
        self.settings = settings
        self.store = settings.store
        self.clock = settings.clock
        self.id = record.id
        self.config = config
        self.record = record
        self.status = record.status
        self.space: SearchSpace | None = (
            SearchSpace.from_json(record.search_space) if record.search_space is not None else None
        )
        self.service = service
        #: The loop allocates GPUs to each trial, so a trial may wait for them.
        self._gpu_trials = config.trial_gpu_number > 0 and not service.assigns_gpus
        self.tuner = TunerSession(
            self.id,
            self.store,
            on_error=self._record_error,
            on_storage_failure=self._fail_storage,
            wake=self.wake,
            tuner=tuner,
            executor=executor,
            tuner_has_space=self.space is not None,
        )
        self._init_assessor()
        self.allocator: GpuAllocator | None = None
        self.trials: dict[str, ActiveTrial] = {}
        self.task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stop: StopRequest | None = None
        self._run_started = 0.0
        self._storage_failure: str | None = None
        self._storage_recorded = False
        self._adopt_limits(record)

    def _adopt_limits(self, record: ExperimentRecord) -> None:
        self.record = record
        self.trial_concurrency = record.trial_concurrency
        self.max_trial_number = record.max_trial_number
        self.max_experiment_duration = record.max_experiment_duration
        self._elapsed_before = record.elapsed
        self._next_sequence = record.next_sequence_id
        self._returned = record.returned_slots
        self._failures = FailureStreak(self.config.max_consecutive_failures)  # from zero on each start

    # -- public ------------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self, record: ExperimentRecord) -> None:
        """Start (or continue) the loop from the stored state in ``record``."""
        self._adopt_limits(record)
        self.status = record.status
        self._stop = None
        self._storage_failure = None
        self._storage_recorded = False
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
        return self.tuner.state is not TunerState.EXHAUSTED and room_left(record)

    async def stop(self, request: StopRequest) -> None:
        """Ask the loop to cancel every trial and end as ``request`` says; returns when it has."""
        if self.task is None:
            return
        self._request_stop(request)
        await asyncio.shield(self.task)

    async def cancel_trial(self, trial_id: str, reason: str = "canceled by user") -> None:
        """USER_CANCELED for one WAITING or RUNNING trial; returns once its process is gone."""
        active = self.trials.get(trial_id)
        if active is None:
            raise InvalidState("trial has already ended")
        await self._end_trial(active, TrialEnd(TrialStatus.USER_CANCELED, reason))

    async def close(self) -> None:
        await self.service.close()
        self._release_threads(cancel=True)

    def _request_stop(self, request: StopRequest) -> None:
        if self._stop is None:
            self._stop = request
        self.wake()

    # -- the loop ----------------------------------------------------------------------------
    async def _main(self) -> None:
        try:
            if not await self._prepare():
                return
            await self._take_over_unfinished()
            await self._stop_replayed()
            self._run_started = self.clock.monotonic()
            if self._stop is not None:  # stopped while ss_gen or the tuner was starting
                await self._cancel_all(self._stop.trial_status, self._stop.reason)
                await self._finish(self._stop.final, run=False)
                return
            start = self.record.start_time or now_ms()
            await self._set_status(ExperimentStatus.RUNNING, start_time=start, end_time=None)
            final = await self._loop()
            await self._drain_sessions()
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
            self._release_threads()

    def _fail_storage(self, exc: StorageError) -> None:
        """The database refused a write: end the experiment in ERROR, saying why (once)."""
        if self._storage_failure is None:
            self._storage_failure = str(exc)
            log.error("experiment %s: %s", self.id, exc)
        self._stop = StopRequest(ExperimentStatus.ERROR, TrialStatus.SYS_CANCELED, self._storage_failure)
        self.wake()

    async def _prepare(self) -> bool:
        """Search space and tuner ready; False (experiment in ERROR) when that is impossible."""
        from trials.errors import SearchSpaceError

        try:
            if self.space is None:
                self.space = await self._generate_space()
            await self.tuner.prepare(self.config, self.space)
            await self._start_assessor()
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
        from manager.loop.ss_gen import generate_search_space

        output = self.record.experiment_dir / "search_space.json"
        output.parent.mkdir(parents=True, exist_ok=True)
        space = await asyncio.to_thread(
            generate_search_space, self.config.trial_command, self.config.trial_code_directory, output
        )
        await self.store.call(self.store.set_search_space, self.id, space.to_json())
        return space

    async def _take_over_unfinished(self) -> None:
        """Continue the trials an earlier run left unfinished: adopt live ones, queue WAITING ones."""
        unfinished = await asyncio.to_thread(
            self.store.trials_with_status, self.id, [TrialStatus.WAITING, TrialStatus.RUNNING]
        )
        for record in unfinished:
            if record.id in self.trials:
                continue
            if record.status is TrialStatus.WAITING and record.launch_requested is not None:
                record = await resolve_launch(
                    self.store, self.service, self._spec(ActiveTrial(record)), record
                )
                if record.status.is_terminal:
                    continue
            if record.status is TrialStatus.WAITING:
                self.trials[record.id] = ActiveTrial(record)
                continue
            active = ActiveTrial.adopted(record)
            spec = self._spec(active)
            process = stored_process(record)
            if process is None or not await self.service.adopt(spec, process):
                await settle_unwatched(self.store, self.service, spec, record)  # it ended unwatched
                continue
            self.trials[record.id] = active
            if active.gpus:
                self._gpus().hold(active.id, active.gpus)
            await self.store.call(
                self.store.add_event,
                self.id,
                EventKind.DAEMON_RESTARTED,
                f"re-adopted: pid {record.pid} still runs this trial",
                trial_id=record.id,
                data={"pid": record.pid},
            )
            log.info("experiment %s: re-adopted trial %s (pid %d)", self.id, record.id, record.pid)
            active.launch(asyncio.create_task(self._watch_trial(active, spec), name=f"trial-{active.id}"))

    async def _loop(self) -> ExperimentStatus:
        """Run until the experiment ends; returns its final status."""
        while True:
            self._wake.clear()
            if self._stop is not None:
                if self._stop.final is ExperimentStatus.STOPPED:
                    await self._set_status(ExperimentStatus.STOPPING, self._stop.reason)
                await self._cancel_all(self._stop.trial_status, self._stop.reason, self._stop.returns_slots)
                return self._stop.final
            remaining = self._remaining_duration()
            if remaining is not None and remaining <= 0:
                limit = seconds_text(self.max_experiment_duration)
                reason = f"experiment reached maxExperimentDuration {limit} s"
                self._request_stop(StopRequest(ExperimentStatus.DONE, TrialStatus.SYS_CANCELED, reason))
                continue
            await self._start_queued_trials()
            await self._fill_slots()
            if self._stop is not None:
                continue
            wanted = ExperimentStatus.RUNNING if self._can_generate() else ExperimentStatus.NO_MORE_TRIAL
            if wanted is not self.status:
                await self._set_status(
                    wanted, self._why_no_more() if wanted is ExperimentStatus.NO_MORE_TRIAL else ""
                )
            if not self.trials:
                if self.status is ExperimentStatus.NO_MORE_TRIAL:
                    return ExperimentStatus.DONE
                if self.tuner.state is TunerState.FAILED:
                    return ExperimentStatus.ERROR
                if self.tuner.state is TunerState.BUSY:
                    await self._record_error(
                        "tuner is busy (waiting for results) but no trial is running", None
                    )
                    return ExperimentStatus.ERROR
            timeout = remaining
            if self._a_trial_is_queued():
                timeout = GPU_RETRY_SECONDS if timeout is None else min(timeout, GPU_RETRY_SECONDS)
            if self._wake.is_set():
                continue
            with contextlib.suppress(TimeoutError):
                real = None if timeout is None else self.clock.real_seconds(timeout)
                await asyncio.wait_for(self._wake.wait(), real)

    def _remaining_duration(self) -> float | None:
        if self.max_experiment_duration is None:
            return None
        used = self._elapsed_before + (self.clock.monotonic() - self._run_started)
        return self.max_experiment_duration - used

    def _can_generate(self) -> bool:
        if self.tuner.state is TunerState.EXHAUSTED:
            return False
        used = self._next_sequence - self._returned
        return self.max_trial_number is None or used < self.max_trial_number

    def _why_no_more(self) -> str:
        if self.tuner.state is TunerState.EXHAUSTED:
            return "the tuner has no more architectures"
        return f"maxTrialNumber {self.max_trial_number} reached"

    def _a_trial_is_queued(self) -> bool:
        return any(t.phase is TrialPhase.QUEUED for t in self.trials.values())

    async def _fill_slots(self) -> None:
        while (
            self._stop is None
            and self._can_generate()
            and len(self.trials) < self.trial_concurrency
            and self.tuner.can_propose
            and not self._a_trial_is_queued()  # a trial still waits for a GPU
        ):
            proposal = await self.tuner.propose(self._next_sequence)
            if proposal is None:
                return
            create = self.store.create_trial  # a trial that starts at once commits its launch intent too
            try:
                record = await self.store.call(
                    create, self.id, proposal.parameters, proposal.checkpoint, launching=not self._gpu_trials
                )
            except BaseException:
                self.tuner.unsaved_back(proposal.checkpoint)
                raise
            self._next_sequence = record.sequence_id + 1
            active = ActiveTrial(record)
            self.trials[record.id] = active
            await self._try_start(active)

    async def _start_queued_trials(self) -> None:
        for active in sorted(self.trials.values(), key=lambda t: t.record.sequence_id):
            if self._stop is not None:
                return
            if (
                active.phase is TrialPhase.QUEUED
                and active.ending is None
                and not await self._try_start(active)
            ):
                return  # first come, first served: later trials wait behind it

    async def _try_start(self, active: ActiveTrial) -> bool:
        """Start ``active`` if its GPUs are free; else record why it waits."""
        gpus: tuple[int, ...] = ()
        if self._gpu_trials:
            count, allocator = self.config.trial_gpu_number, self._gpus()
            allocated = await asyncio.to_thread(allocator.allocate, active.id, count)  # may run nvidia-smi
            if active.ending is not None or self._stop is not None:
                if allocated is not None:
                    allocator.release(active.id)
                return False
            if allocated is None:
                reason = str(await asyncio.to_thread(allocator.why_waiting, count))
                if reason != active.waiting_reason:
                    active.waiting_reason = reason
                    await self.store.call(self.store.set_waiting_reason, active.id, reason)
                return False
            gpus = tuple(allocated)
        active.gpus = gpus
        active.launch(asyncio.create_task(self._run_trial(active), name=f"trial-{active.id}"))
        return True

    def _gpus(self) -> GpuAllocator:
        if self.allocator is None:
            self.allocator = GpuAllocator.for_service(
                self.config.training_service, self.settings.gpu_inventory
            )
        return self.allocator

    # -- one trial ---------------------------------------------------------------------------
    def _spec(self, active: ActiveTrial) -> TrialSpec:
        return trial_spec(self.config, active.record, active.gpus)

    async def _run_trial(self, active: ActiveTrial) -> None:
        spec = self._spec(active)
        try:
            # committed before anything starts: a crash from here on leaves a launch to find
            if active.record.launch_requested is None or active.gpus:  # else done in create_trial
                await self.store.call(self.store.mark_trial_launching, active.id, gpus=active.gpus)
        except StorageError as exc:
            self._fail_storage(exc)
            await self._close_trial(active, TrialEnd(TrialStatus.SYS_CANCELED, str(exc)))
            return
        crash_point("launch.before_spawn")
        try:
            process = await submit_telling_why_it_waits(
                self.store, self.service, active, spec, packed_parameter(active.record)
            )
        except Exception as exc:  # the next trial would fail the same way: stop the experiment
            reason = f"cannot start the trial: {exc}"
            with contextlib.suppress(StorageError):
                await self._record_error(reason, traceback.format_exc(), active.id)
            self._request_stop(StopRequest(ExperimentStatus.ERROR, TrialStatus.SYS_CANCELED, reason))
            await self._close_trial(active, TrialEnd(TrialStatus.FAILED, reason))
            return
        crash_point("launch.after_spawn")
        try:
            await self.store.call(
                self.store.mark_trial_running,
                active.id,
                pid=process.pid,
                pid_create_time=process.create_time,
                gpus=active.gpus,
                launch=process.launch,
            )
        except StorageError as exc:
            self._fail_storage(exc)
            active.request_end(TrialEnd(TrialStatus.SYS_CANCELED, str(exc)))
        if active.ending is not None:  # canceled while it was starting
            await self.service.kill(active.id)
        await self._watch_trial(active, spec)

    async def _watch_trial(self, active: ActiveTrial, spec: TrialSpec) -> None:
        """Follow a started (or adopted) trial to its end, then record it; never raises."""
        follower = TrialFollower(
            self.store,
            self.service,
            self.clock,
            self.settings.metric_poll_seconds,
            active,
            spec,
            on_final=lambda trial, report: self.tuner.result(trial.record, report.value),
            on_intermediate=self._intermediate_stored,
            on_storage_failure=self._fail_storage,
            pace=self.settings.follow_pace,
        )
        try:
            tail = asyncio.create_task(follower.follow())
            exit_ = await await_exit(self.service, self.clock, self.config.max_trial_duration, active)
            active.tail_stop.set()
            await tail
            last = await follower.finish()  # stored with the end: one transaction
            crash_point("trial.before_end_commit")
            await self._close_trial(active, active.judge(exit_), exit_, last)
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
            with contextlib.suppress(Exception):
                await self._close_trial(active, active.ending or TrialEnd(TrialStatus.SYS_CANCELED, reason))

    async def _close_trial(
        self,
        active: ActiveTrial,
        end: TrialEnd,
        exit_: TrialExit | None = None,
        last: FinalMetrics | None = None,
    ) -> None:
        """Record the end (with ``last``, its metric channel's last chunk), free the GPUs, tell
        the tuner, and wake the loop to fill the slot.

        When the database refuses the write, the trial still ends here (the experiment goes to
        ERROR, and :meth:`_finish` records the trials it could not).
        """
        try:
            await self.store.call(
                self.store.finish_trial,
                active.id,
                end.status,
                exit_code=exit_.exit_code if exit_ else None,
                signal=exit_.signal if exit_ else None,
                reason=end.reason,
                return_slot=active.return_slot,
                stop_step=self._stop_step(active, end),
                metrics=last,
            )
            if last is not None and last.intermediate:
                self._intermediate_stored(active)  # before the assessor hears the end
            if active.return_slot:
                self._returned += 1
            if (stop := self._failures.ended(end, not active.return_slot)) and self._stop is None:
                await self._record_error(stop.reason, None, active.id)
                self._request_stop(stop)
        except StorageError as exc:
            self._fail_storage(exc)
        finally:
            if self.allocator is not None:
                self.allocator.release(active.id)
            self.trials.pop(active.id, None)
            active.finished.set()
            await self._assessor_hears_end(active, end)
            self.tuner.trial_end(active.record, end.status is TrialStatus.SUCCEEDED)
            self.wake()

    async def _end_trial(self, active: ActiveTrial, end: TrialEnd, return_slot: bool = False) -> None:
        """End one trial on our side (cancel, stop, limit) and wait until it is recorded."""
        active.request_end(end, return_slot)
        if active.phase is TrialPhase.QUEUED:  # no process to kill
            assert active.ending is not None
            await self._close_trial(active, active.ending)
            return
        await self.service.kill(active.id)
        await active.finished.wait()

    async def _cancel_all(self, status: TrialStatus, reason: str, return_slot: bool = False) -> None:
        end = TrialEnd(status, reason)
        await asyncio.gather(*(self._end_trial(t, end, return_slot) for t in list(self.trials.values())))
        await self._drain_sessions()

    # -- status ------------------------------------------------------------------------------
    async def _set_status(self, status: ExperimentStatus, message: str = "", **fields: Any) -> None:
        self.record = await self.store.call(
            self.store.set_experiment_status, self.id, status, message, **fields
        )
        self.status = status
        log.info("experiment %s: %s%s", self.id, status.value, f" ({message})" if message else "")

    async def _finish(self, final: ExperimentStatus, run: bool = True) -> None:
        elapsed = self._elapsed_before + (self.clock.monotonic() - self._run_started) if run else KEEP
        reason = self._stop.reason if self._stop is not None and self._stop.final is final else ""
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
                self.store.finish_trial, trial.id, TrialStatus.SYS_CANCELED, reason=reason, return_slot=True
            )

    async def _record_error(self, message: str, details: str | None, trial_id: str | None = None) -> None:
        log.error("experiment %s: %s", self.id, message)
        await self.store.call(self.store.record_error, self.id, message, details, trial_id)
