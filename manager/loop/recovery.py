"""After a crash: find the trials an earlier daemon left, and settle or keep each.

Everything the loop knows is in the store: trials (with the identity of their process, and the
byte offset of their metric channel stored with the metrics) and the tuner's checkpoint. When a
daemon starts after a crash, :func:`recover` stores what the trials reported while no daemon
ran, settles the trials whose process has ended (by their final result: the exit status of a
process that is not our child cannot be known), leaves the live ones running, and marks the
experiment STOPPED. A trial caught between its launch intent and the commit of its process is
first sorted by :func:`resolve_launch` (exactly-once launch). ``resume`` then re-adopts the live
trials (the runner asks the training service to
:meth:`~manager.training.base.TrainingService.adopt` them). Every question about a trial's
process goes to the experiment's training service, so this works for any platform.
See docs/architecture.md, "Crash recovery".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from manager.config import ExperimentConfig
from manager.crash_points import crash_point
from manager.loop.active_trial import stored_process, trial_spec
from manager.loop.ingest import ingest_metrics
from manager.store import EventKind, ExperimentRecord, Store, TrialRecord, now_ms
from manager.training.base import LaunchState, TrainingService, TrialSpec
from trials.status import ExperimentStatus, TrialStatus

log = logging.getLogger(__name__)

#: Why a trial that no daemon watched ended as it did (its exit status is unknown).
ENDED_UNWATCHED = "the process ended while the daemon was down"
NO_FINAL_UNWATCHED = f"{ENDED_UNWATCHED}, without a final result"
#: Why a trial caught in its launch window failed when its training service could not place it.
LAUNCH_UNKNOWN = "the daemon crashed while starting the trial, and its process cannot be found"
#: Experiments in these statuses had a loop when the daemon stopped.
UNFINISHED = (
    ExperimentStatus.INITIALIZED,
    ExperimentStatus.RUNNING,
    ExperimentStatus.NO_MORE_TRIAL,
    ExperimentStatus.STOPPING,
)

#: Opens the training service of an experiment's config (the manager's registry).
ServiceFor = Callable[[ExperimentConfig], TrainingService]


async def recover(store: Store, service_for: ServiceFor) -> list[str]:
    """Take stock of experiments that a previous daemon left active (it crashed, or the machine
    rebooted); they become STOPPED so that ``resume`` continues them. Returns their ids.

    Nothing is killed: every unfinished trial gets the metrics it wrote while no daemon ran;
    one whose process has ended is settled by its final result (:func:`settle_unwatched`);
    a live one stays RUNNING until ``resume`` re-adopts it (or ``stop`` ends it). A stop that
    the crash interrupted (STOPPING) is finished instead.
    """
    touched = []
    for record in store.experiments_with_status(UNFINISHED):
        try:
            config = ExperimentConfig.from_json(record.config)
            service = await asyncio.to_thread(service_for, config)  # may connect to a cluster
        except ValueError as exc:  # one unreadable experiment must not keep the daemon from starting
            log.error("experiment %s: cannot recover its trials: %s", record.id, exc)
            summary = f"daemon restarted: the experiment was stopped; its trials could not be checked: {exc}"
        else:
            try:
                summary = await _take_stock(store, service, config, record)
            finally:
                await service.close()
        await store.call(store.add_event, record.id, EventKind.DAEMON_RESTARTED, summary)
        await store.call(
            store.set_experiment_status,
            record.id,
            ExperimentStatus.STOPPED,
            "daemon restarted",
            end_time=now_ms(),
        )
        touched.append(record.id)
    return touched


async def _take_stock(
    store: Store, service: TrainingService, config: ExperimentConfig, record: ExperimentRecord
) -> str:
    """Settle one experiment's trials; returns the event that says what happened."""
    for trial in store.trials_with_status(record.id, [TrialStatus.WAITING]):
        if trial.launch_requested is not None:
            await resolve_launch(store, service, trial_spec(config, trial), trial)
            crash_point("recovery.after_trial")
    if record.status is ExperimentStatus.STOPPING:
        await end_orphans(store, service, config, record.id, "experiment stopped")
        return "daemon restarted during a stop: the stop was finished"
    live = 0
    for trial in store.trials_with_status(record.id, [TrialStatus.RUNNING]):
        spec = trial_spec(config, trial)
        process = stored_process(trial)
        if process is not None and await service.is_alive(spec, process):
            # it may be mid-line: only complete records count until it ends
            await ingest_metrics(store, service, spec, trial.metrics_offset, final=False)
            live += 1
        else:
            await settle_unwatched(store, service, spec, trial)
        crash_point("recovery.after_trial")
    if live:
        return (
            f"daemon restarted: the experiment was stopped; {live} trial(s) still run and "
            "resume re-adopts them (stop ends them)"
        )
    return "daemon restarted: the experiment was stopped; resume continues it"


async def resolve_launch(
    store: Store, service: TrainingService, spec: TrialSpec, trial: TrialRecord
) -> TrialRecord:
    """Sort a WAITING trial whose launch was committed (a crash came before its process was):
    its process never ran (WAITING again, to be launched anew), runs (RUNNING with its process,
    to adopt), or ran and ended (settled from its files). Returns the trial as stored now."""
    try:
        found = await service.find_launch(spec)
    except Exception as exc:  # one unanswerable trial must not keep the others from recovery
        log.error("trial %s: cannot tell whether its launch started it: %s", trial.id, exc)
        await store.call(
            store.finish_trial,
            trial.id,
            TrialStatus.FAILED,
            reason=f"{LAUNCH_UNKNOWN}: {exc}",
            return_slot=True,
        )
        return store.get_trial(trial.experiment_id, trial.id) or trial
    if found.state is LaunchState.NOT_STARTED:
        await store.call(
            store.add_event,
            trial.experiment_id,
            EventKind.DAEMON_RESTARTED,
            "the crash came before the trial's process started: it is launched again",
            trial_id=trial.id,
        )
        return await store.call(store.forget_launch, trial.id)
    assert found.process is not None
    process = found.process
    record = await store.call(
        store.mark_trial_running,
        trial.id,
        pid=process.pid,
        pid_create_time=process.create_time,
        gpus=trial.gpus,
        start_time=int(process.create_time * 1000),
        launch=process.launch,
    )
    if found.state is LaunchState.ENDED:
        await settle_unwatched(store, service, spec, record)
        return store.get_trial(trial.experiment_id, trial.id) or record
    return record


async def settle_unwatched(
    store: Store, service: TrainingService, spec: TrialSpec, trial: TrialRecord
) -> None:
    """Record the end of a trial whose process ended while no daemon watched it.

    Its exit status is unknown (it was not our child), so its metrics decide: with a final
    result it SUCCEEDED; without one it FAILED and gives its place in maxTrialNumber back.
    """
    await ingest_metrics(store, service, spec, trial.metrics_offset, final=True)
    stored = store.get_trial(trial.experiment_id, trial.id) or trial
    if stored.final_metric_data is not None:
        await store.call(
            store.finish_trial,
            trial.id,
            TrialStatus.SUCCEEDED,
            reason=f"{ENDED_UNWATCHED} (its final result counts; exit status unknown)",
        )
    else:
        await store.call(
            store.finish_trial, trial.id, TrialStatus.FAILED, reason=NO_FINAL_UNWATCHED, return_slot=True
        )


async def end_orphans(
    store: Store, service: TrainingService, config: ExperimentConfig, experiment_id: str, reason: str
) -> int:
    """End the trials of an experiment without a loop that an earlier daemon left; records each."""
    ended = 0
    for trial in store.trials_with_status(experiment_id, [TrialStatus.WAITING, TrialStatus.RUNNING]):
        spec = trial_spec(config, trial)
        if trial.status is TrialStatus.WAITING and trial.launch_requested is not None:
            trial = await resolve_launch(store, service, spec, trial)  # its process may run
            if trial.status.is_terminal:
                continue
        process = stored_process(trial)
        if process is not None:
            await service.kill_stale(spec, process)
        await ingest_metrics(store, service, spec, trial.metrics_offset, final=True)
        await store.call(
            store.finish_trial, trial.id, TrialStatus.USER_CANCELED, reason=reason, return_slot=True
        )
        ended += 1
    return ended
