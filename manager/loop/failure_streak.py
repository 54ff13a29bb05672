"""maxConsecutiveFailures: end an experiment whose trials keep failing, instead of spending its budget.

A broken trial command (a missing package, a typo, a bad path) fails every trial the same way;
without a limit the experiment runs its whole budget and ends with "N failed". The streak counts
trials that ended FAILED in a row, in the order they ended. A trial that SUCCEEDED or was
EARLY_STOPPED ran the trial code to a result, so it breaks the streak. Trials a person or the
experiment itself cancelled say nothing about the trial code and neither count nor break it; nor
does a trial FAILED because its machine was lost (it gives its place in maxTrialNumber back).

The count lives in the runner only: a resume (the user fixed something) and a daemon restart
start it from zero, so a restart can delay the stop, never cause one.
"""

from __future__ import annotations

from manager.loop.active_trial import TrialEnd
from manager.loop.ending import StopRequest
from trials.status import ExperimentStatus, TrialStatus

#: The trial statuses that show the trial code can work: they end a streak of failures.
BREAKS_THE_STREAK = frozenset({TrialStatus.SUCCEEDED, TrialStatus.EARLY_STOPPED})


class FailureStreak:
    """The trials that ended FAILED in a row, and the stop once ``limit`` of them have (None: never)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.count = 0

    def ended(self, end: TrialEnd, counted: bool = True) -> StopRequest | None:
        """One trial ended as ``end``; the stop to request when it makes ``limit`` failures in a row.

        ``counted`` is False for a failure that is not the trial's (its machine was lost).
        """
        if end.status in BREAKS_THE_STREAK:
            self.count = 0
        elif end.status is TrialStatus.FAILED and counted:
            self.count += 1
            if self.limit is not None and self.count >= self.limit:
                return StopRequest(ExperimentStatus.ERROR, TrialStatus.SYS_CANCELED, self.message(end))
        return None

    def message(self, last: TrialEnd) -> str:
        """What the experiment's error says: the limit, the key to change, and the last failure."""
        why = last.reason or "no reason recorded"
        return (
            f"stopped after {self.count} consecutive failed trials (maxConsecutiveFailures: {self.limit}); "
            f"the last: {why}"
        )
