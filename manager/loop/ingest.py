"""Moving what a trial reported from its metric channel into the store, exactly once.

The store keeps, with each trial, the byte offset up to which it has ingested, in the same
transaction as the metrics (see ``Store.ingest_metrics``): a reader that crashed between
reading and storing reads the same bytes again, and a second reader is refused. The running
loop and recovery after a crash both use this one function; the loop stores an ended trial's
last chunk with its end (:func:`ingest_all_but_last`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from manager.crash_points import crash_point
from manager.store import FinalMetrics, Store
from manager.training.base import TrainingService, TrialSpec
from trials.metrics import MetricReport


async def ingest_metrics(
    store: Store,
    service: TrainingService,
    spec: TrialSpec,
    offset: int,
    *,
    final: bool,
    on_final: Callable[[MetricReport], None] | None = None,
    on_intermediate: Callable[[int], None] | None = None,
) -> int:
    """Store the records after byte ``offset``; returns the new offset.

    ``final``: the trial has ended, so a last line without its newline counts too. ``on_final``
    hears the trial's final result once, in the call that stores it; ``on_intermediate`` hears how
    many intermediate results each stored chunk held.
    """
    offset, _ = await _ingest(store, service, spec, offset, final, False, on_final, on_intermediate)
    return offset


async def ingest_all_but_last(
    store: Store,
    service: TrainingService,
    spec: TrialSpec,
    offset: int,
    *,
    on_final: Callable[[MetricReport], None] | None = None,
    on_intermediate: Callable[[int], None] | None = None,
) -> tuple[int, FinalMetrics | None]:
    """The trial has ended: store its channel as :func:`ingest_metrics` does but for the last
    chunk, returned unstored (None when nothing is left), so that the caller stores it with the
    trial's end in one transaction (``Store.finish_trial(metrics=...)``)."""
    return await _ingest(store, service, spec, offset, True, True, on_final, on_intermediate)


async def _ingest(
    store: Store,
    service: TrainingService,
    spec: TrialSpec,
    offset: int,
    final: bool,
    keep_last: bool,
    on_final: Callable[[MetricReport], None] | None,
    on_intermediate: Callable[[int], None] | None,
) -> tuple[int, FinalMetrics | None]:
    while True:
        chunk = service.read_metrics(spec, offset, final)
        if chunk.offset == offset and not chunk.reports and not chunk.invalid:
            return offset, None
        if keep_last and not chunk.more:
            return offset, FinalMetrics(offset, chunk.offset, tuple(chunk.reports), tuple(chunk.invalid))
        crash_point("metrics.before_commit")
        result = await asyncio.wrap_future(
            store.submit_ingest(
                spec.trial_id,
                expected_offset=offset,
                new_offset=chunk.offset,
                reports=chunk.reports,
                invalid=chunk.invalid,
            )
        )
        offset = result.offset
        if result.final is not None and on_final is not None:
            on_final(result.final)
        if result.applied and on_intermediate is not None:
            on_intermediate(sum(not report.is_final for report in chunk.reports))
        if not chunk.more:
            return offset, None
