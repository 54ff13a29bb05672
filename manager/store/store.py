"""``Store``: the daemon's database, one object with a method per question and per change.

Built from the plumbing (:class:`~manager.store.database.Database`: the writer thread,
transactions, ``call``, ``make_room``, ``close``) and one query class per resource. Every
query returns frozen records (:mod:`manager.store.records`); rows never leave the package.
"""

from __future__ import annotations

from manager.store.checkpoints import CheckpointQueries
from manager.store.dashboard_queries import DashboardQueries
from manager.store.events import EventQueries
from manager.store.experiments import ExperimentQueries
from manager.store.metrics import MetricQueries
from manager.store.trial_pages import TrialPageQueries
from manager.store.trials import TrialQueries


class Store(
    ExperimentQueries,
    EventQueries,
    TrialQueries,
    TrialPageQueries,
    MetricQueries,
    CheckpointQueries,
    DashboardQueries,
):
    """Everything the daemon must remember across a restart: experiments, trials, metrics, events.

    Thread-safe; writes are serialized on one writer thread. A write that fails because the disk
    is full, read-only or failing raises ``StorageError``; :meth:`make_room` then frees the
    reserve so that the daemon can still record why.
    """
