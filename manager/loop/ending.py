"""How an experiment leaves RUNNING: the one stop request, and the limits that end it (and a trial)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from manager.clock import Clock
from manager.loop.active_trial import ActiveTrial, TrialEnd
from manager.store import ExperimentRecord
from manager.training.base import TrainingService, TrialExit
from trials.status import ExperimentStatus, TrialStatus


@dataclass(frozen=True)
class StopRequest:
    """Why the loop leaves RUNNING: the experiment's final status and what its live trials become."""

    final: ExperimentStatus
    trial_status: TrialStatus
    reason: str

    @property
    def returns_slots(self) -> bool:
        """Trials cut short by a stop or an error give their place back; a deadline's do not."""
        return self.final is not ExperimentStatus.DONE


def room_left(record: ExperimentRecord) -> bool:
    """True when neither maxTrialNumber nor maxExperimentDuration is used up."""
    if record.max_trial_number is not None and record.budget_used >= record.max_trial_number:
        return False
    return not (
        record.max_experiment_duration is not None and record.elapsed >= record.max_experiment_duration
    )


def seconds_text(value: float | None) -> str:
    """A limit in seconds as a message shows it (``60``, ``2.5``)."""
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


async def await_exit(
    service: TrainingService, clock: Clock, limit: float | None, active: ActiveTrial
) -> TrialExit:
    """How the trial's process exited; past ``limit`` (maxTrialDuration, clock seconds from its
    start) it is killed first, and the trial ends FAILED."""
    waiter = asyncio.create_task(service.wait(active.id))
    if limit is not None:
        started = active.record.start_time
        used = clock.seconds_since(started) if started is not None else 0.0
        done, _ = await asyncio.wait({waiter}, timeout=clock.real_seconds(max(0.0, limit - used)))
        if not done:
            active.request_end(
                TrialEnd(TrialStatus.FAILED, f"exceeded maxTrialDuration {seconds_text(limit)} s")
            )
            await service.kill(active.id)
    return await waiter
