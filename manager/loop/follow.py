"""Following a live trial: its metrics into the store as they arrive, its logs within bounds."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from manager.clock import Clock
from manager.loop.active_trial import ActiveTrial, TrialEnd
from manager.loop.ingest import ingest_all_but_last, ingest_metrics
from manager.store import EventKind, FinalMetrics, StorageError, Store
from manager.training.base import TrainingService, TrialSpec
from trials.metrics import MetricReport
from trials.status import TrialStatus

log = logging.getLogger(__name__)


#: Metric polls per real second that one daemon makes at most, all followed trials together.
POLLS_PER_SECOND = 1000.0


class FollowPace:
    """How often each followed trial is polled: every ``poll_seconds`` (0.25 s) while few are
    followed, and slower past :data:`POLLS_PER_SECOND` in all, so that the polls cost the same
    at 10,000 trials as at 250 (a trial reporting faster sends bigger chunks, not more polls).

    One per daemon, shared by every experiment's followers (the event loop is theirs to share).
    """

    def __init__(self, polls_per_second: float = POLLS_PER_SECOND) -> None:
        if polls_per_second <= 0:
            raise ValueError(f"polls_per_second must be > 0, not {polls_per_second}")
        self.polls_per_second = polls_per_second
        self.followed = 0

    def interval(self, poll_seconds: float) -> float:
        """Real seconds between one trial's polls, ``poll_seconds`` (real) at the least."""
        return max(poll_seconds, self.followed / self.polls_per_second)


@dataclass
class TrialFollower:
    """Reads one trial's metric channel every ``poll_seconds`` (clock seconds) until it ends.

    ``on_final`` hears the trial's final result once and may answer why the result cannot count
    (with objectives, a metric it lacks): the trial then ends FAILED with that reason.
    ``on_storage_failure`` hears a database that refuses a write (the runner then ends the
    experiment, and this trial with it).
    """

    store: Store
    service: TrainingService
    clock: Clock
    poll_seconds: float
    active: ActiveTrial
    spec: TrialSpec
    on_final: Callable[[ActiveTrial, MetricReport], str | None]
    on_storage_failure: Callable[[StorageError], None]
    #: Hears that intermediate results of the trial were stored (the assessor judges them).
    on_intermediate: Callable[[ActiveTrial], None] | None = None
    #: Spreads the polls of many followed trials (one pace per daemon; a lone follower's own).
    pace: FollowPace = field(default_factory=FollowPace)

    async def follow(self) -> None:
        """Poll until ``active.tail_stop`` is set (the trial's process has ended)."""
        interval = self.clock.real_seconds(self.poll_seconds)
        stop = self.active.tail_stop
        # one waiter for the whole follow, not a task made and cancelled per poll (wait_for):
        # at 1,000 trials the polls are most of what the event loop does
        stopped = asyncio.ensure_future(stop.wait())
        self.pace.followed += 1
        try:
            while True:
                # wait first: a trial that ends within one interval (most of a fast search) is read
                # once, at its exit, and costs no poll at all
                await asyncio.wait((stopped,), timeout=self.pace.interval(interval))
                if stop.is_set():
                    return
                try:
                    await self.ingest()
                    await self._trim_logs()
                except StorageError as exc:
                    self.on_storage_failure(exc)
                except Exception as exc:  # a store hiccup must not end the trial; the final read retries
                    log.warning("trial %s: reading its metrics failed: %s", self.active.id, exc)
        finally:
            self.pace.followed -= 1
            stopped.cancel()

    async def ingest(self) -> None:
        """Store what the trial reported since the last read."""
        async with self.active.ingest_lock:
            self.active.offset = await ingest_metrics(
                self.store,
                self.service,
                self.spec,
                self.active.offset,
                final=False,
                on_final=self._heard,
                on_intermediate=self._stored,
            )

    async def finish(self) -> FinalMetrics | None:
        """The last read after the process ended, and the last log trim: a trial that ended
        within one poll interval (a flood of output on a loaded machine) is trimmed here.

        Returns the channel's last chunk unstored, for the caller to store with the trial's end
        (``Store.finish_trial(metrics=...)``: one transaction, not two). Its final result, if
        the trial's first, is heard now, since it decides how the trial ends; the store counts
        the same record as the first, as the trial's stored final and ``has_final`` agree.
        """
        active = self.active
        async with active.ingest_lock:
            active.offset, last = await ingest_all_but_last(
                self.store,
                self.service,
                self.spec,
                active.offset,
                on_final=self._heard,
                on_intermediate=self._stored,
            )
        if last is not None and not active.has_final:
            final = next((report for report in last.reports if report.is_final), None)
            if final is not None:
                self._heard(final)
        await self._trim_logs()
        return last

    def _heard(self, report: MetricReport) -> None:
        active = self.active
        active.has_final = True
        active.final_is_nan = math.isnan(report.default_value)
        problem = self.on_final(active, report)
        if problem is not None:
            active.request_end(TrialEnd(TrialStatus.FAILED, problem))

    def _stored(self, count: int) -> None:
        if count and self.on_intermediate is not None:
            self.on_intermediate(self.active)

    async def _trim_logs(self) -> None:
        if not self.service.trims_logs:
            return
        active = self.active
        for note in await asyncio.to_thread(self.service.trim_logs, self.spec):
            if note not in active.notes:
                active.notes.append(note)
            await self.store.call(
                self.store.add_event,
                active.record.experiment_id,
                EventKind.LOG_TRIMMED,
                note,
                trial_id=active.id,
            )
