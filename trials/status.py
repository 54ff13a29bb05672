"""Trial and experiment statuses: the words the store records, the REST API sends and the CLI shows.

NNI's names, kept so users' scripts port. Every room reads them from here, so the daemon and the
CLI can never disagree on which statuses are final. The members are ``str``: a status that came
over REST as plain text compares equal to its member and is found in the sets below.
"""

from __future__ import annotations

import enum


class TrialStatus(str, enum.Enum):
    """NNI's trial statuses."""

    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    USER_CANCELED = "USER_CANCELED"
    SYS_CANCELED = "SYS_CANCELED"
    EARLY_STOPPED = "EARLY_STOPPED"

    @property
    def is_terminal(self) -> bool:
        """The trial has ended and never runs again."""
        return self in TERMINAL_TRIAL_STATUSES


class ExperimentStatus(str, enum.Enum):
    """NNI's experiment statuses; ``is_active`` ones have a live loop in the daemon."""

    INITIALIZED = "INITIALIZED"
    RUNNING = "RUNNING"
    NO_MORE_TRIAL = "NO_MORE_TRIAL"
    DONE = "DONE"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    ERROR = "ERROR"

    @property
    def is_active(self) -> bool:
        """The experiment still has, or will start, trials."""
        return self in ACTIVE_EXPERIMENT_STATUSES


#: Trial statuses after which a trial never runs again.
TERMINAL_TRIAL_STATUSES = frozenset(set(TrialStatus) - {TrialStatus.WAITING, TrialStatus.RUNNING})
#: Experiment statuses in which an experiment still has (or will start) trials.
ACTIVE_EXPERIMENT_STATUSES = frozenset(
    {
        ExperimentStatus.INITIALIZED,
        ExperimentStatus.RUNNING,
        ExperimentStatus.NO_MORE_TRIAL,
        ExperimentStatus.STOPPING,
    }
)
#: Experiment statuses after which nothing happens until a person acts.
FINISHED_EXPERIMENT_STATUSES = frozenset(set(ExperimentStatus) - ACTIVE_EXPERIMENT_STATUSES)
