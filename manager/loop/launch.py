"""Starting one trial's process: the parameter file it reads, and why it waits meanwhile.

A platform may hold a submitted trial until it has room (Ray waits for a node with free GPUs),
so while ``submit`` has not returned, the service is asked every :data:`WAITING_CHECK_SECONDS`
why, and the answer is the trial's waiting reason (``nasctl status`` shows it), as the loop's own
GPU allocator does for local trials. See docs/architecture.md, "The loop".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from manager.loop.active_trial import ActiveTrial
from manager.store import Store, TrialRecord
from manager.training.base import TrainingService, TrialProcess, TrialSpec

log = logging.getLogger(__name__)

#: While a platform has no room for a submitted trial, how often to ask it why (real seconds).
WAITING_CHECK_SECONDS = 2.0


def packed_parameter(record: TrialRecord) -> dict[str, Any]:
    """The parameter file's content, in NNI's shape (``trials.get_next_parameter`` reads it)."""
    return {
        "parameter_id": record.parameter_id,
        "parameter_source": "algorithm",
        "parameters": dict(record.parameters),
        "parameter_index": 0,
    }


async def submit_telling_why_it_waits(
    store: Store, service: TrainingService, active: ActiveTrial, spec: TrialSpec, parameter: Mapping[str, Any]
) -> TrialProcess:
    """``service.submit``, keeping the trial's waiting reason current until it returns."""
    submitting = asyncio.ensure_future(service.submit(spec, parameter))
    reporter = asyncio.create_task(_report_waiting(store, service, active, spec, submitting))
    try:
        return await submitting
    finally:
        reporter.cancel()


async def _report_waiting(
    store: Store,
    service: TrainingService,
    active: ActiveTrial,
    spec: TrialSpec,
    submitting: asyncio.Future[Any],
) -> None:
    while not submitting.done():
        await asyncio.sleep(WAITING_CHECK_SECONDS)
        try:
            reason = await service.why_waiting(spec)
        except Exception:  # a reason is a courtesy: its failure must not touch the launch
            log.debug("trial %s: why_waiting failed", active.id, exc_info=True)
            continue
        if reason is not None and reason != active.waiting_reason and not submitting.done():
            active.waiting_reason = reason
            await store.call(store.set_waiting_reason, active.id, reason)
