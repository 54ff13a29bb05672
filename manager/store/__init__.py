"""The store: everything the daemon must remember across a restart (experiments, trials,
metrics, events, tuner checkpoints), behind :class:`Store`, which returns frozen records.

The names importers use; the modules: ``schema`` (tables), ``statements`` (prebuilt Core
statements), ``records`` (what queries return), ``ids``, ``disk`` (storage failures and the
reserve), ``database`` (the writer thread), and one query module per resource.
"""

from manager.store.database import DatabaseInUse, masked_url
from manager.store.disk import RESERVE_BYTES, RESERVE_SUFFIX, StorageError, storage_problem
from manager.store.events import EventKind
from manager.store.experiments import KEEP
from manager.store.ids import new_experiment_id
from manager.store.records import (
    EventRecord,
    ExperimentRecord,
    FailureReason,
    FailureSummary,
    FinalMetrics,
    FinalResults,
    IngestResult,
    MetricRecord,
    TrialChoices,
    TrialPage,
    TrialRecord,
    TunerCheckpoint,
    now_ms,
)
from manager.store.store import Store
from manager.store.trial_pages import TrialSort

__all__ = [
    "KEEP",
    "RESERVE_BYTES",
    "RESERVE_SUFFIX",
    "DatabaseInUse",
    "EventKind",
    "EventRecord",
    "ExperimentRecord",
    "FailureReason",
    "FailureSummary",
    "FinalMetrics",
    "FinalResults",
    "IngestResult",
    "MetricRecord",
    "StorageError",
    "Store",
    "TrialChoices",
    "TrialPage",
    "TrialRecord",
    "TrialSort",
    "TunerCheckpoint",
    "masked_url",
    "new_experiment_id",
    "now_ms",
    "storage_problem",
]
