"""Early stopping in the experiment loop: the assessor's verdicts become EARLY_STOPPED trials.

:class:`EarlyStopping` is the part of :class:`~manager.loop.runner.ExperimentRunner` that
connects its trials to its :class:`~manager.loop.assessor_session.AssessorSession`: stored
intermediate results go to the assessor, a Bad verdict kills the trial through the training
service's normal kill path (its watcher then records it EARLY_STOPPED with the assessor's reason
and the step), and every trial end reaches the assessor once. With NNI's
``tuner.includeIntermediateResults`` the tuner learns an early-stopped trial's last judged
intermediate result as its final result, before it hears the trial's end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from manager.config import ExperimentConfig
from manager.loop.active_trial import ActiveTrial, TrialEnd, TrialPhase
from manager.loop.assessor_session import AssessorSession, ErrorSink, Verdict
from manager.loop.tuner_session import TunerSession
from manager.store import StorageError, Store
from manager.training.base import TrainingService
from trials.status import TrialStatus

__all__ = ["AssessorSession", "EarlyStopping", "Verdict"]


class EarlyStopping:
    """The runner's early-stopping part (a mixin: it reads the runner's trials, service and tuner)."""

    assessor: AssessorSession | None
    config: ExperimentConfig
    service: TrainingService
    trials: dict[str, ActiveTrial]
    tuner: TunerSession
    id: str
    store: Store
    _record_error: ErrorSink
    _fail_storage: Callable[[StorageError], None]
    _replayed_verdicts: list[Verdict]

    def _init_assessor(self) -> None:
        config = self.config.assessor
        self._replayed_verdicts = []
        self.assessor = (
            None
            if config is None
            else AssessorSession(self.id, self.store, config, self._record_error, self._fail_storage)
        )

    async def _start_assessor(self) -> None:
        """Build (or keep) the assessor; the Bad verdicts its replay gives wait for the trials' adoption."""
        if self.assessor is None:
            return
        try:
            self._replayed_verdicts = await self.assessor.start()
        except (StorageError, ValueError):
            raise
        except Exception as exc:  # a user's assessor that cannot be built: the experiment says why
            raise ValueError(f"assessor failed to start: {exc}") from exc

    async def _stop_replayed(self) -> None:
        verdicts, self._replayed_verdicts = self._replayed_verdicts, []
        for verdict in verdicts:
            await self._early_stop(verdict)

    async def _drain_sessions(self) -> None:
        """Wait until the tuner and the assessor have handled everything queued (and saved their
        checkpoints): a finished experiment's assessor has heard every trial end."""
        await self.tuner.drain()
        if self.assessor is not None:
            await self.assessor.drain()

    def _release_threads(self, cancel: bool = False) -> None:
        """The tuner's and the assessor's threads (a finished experiment holds none)."""
        self.tuner.release_thread(cancel)
        if self.assessor is not None:
            self.assessor.release_thread(cancel)

    def _intermediate_stored(self, active: ActiveTrial) -> None:
        if self.assessor is not None and active.ending is None:
            self.assessor.results_stored(active.id, self._early_stop)

    async def _early_stop(self, verdict: Verdict) -> None:
        """A Bad verdict: kill the trial through the service; its watcher records EARLY_STOPPED."""
        active = self.trials.get(verdict.trial_id)
        if active is None or active.ending is not None or active.tail_stop.is_set():
            return  # it ended (or is ending) anyway: its own end counts
        if active.phase is TrialPhase.LAUNCHED:
            active.request_end(TrialEnd(TrialStatus.EARLY_STOPPED, verdict.reason))
            await self.service.kill(active.id)

    def _stop_step(self, active: ActiveTrial, end: TrialEnd) -> int | None:
        if self.assessor is None or end.status is not TrialStatus.EARLY_STOPPED:
            return None
        return self.assessor.stop_step(active.id)

    async def _assessor_hears_end(self, active: ActiveTrial, end: TrialEnd) -> None:
        """With includeIntermediateResults the tuner learns an early stop's last result first."""
        if self.assessor is None:
            return
        if end.status is TrialStatus.EARLY_STOPPED and self.config.include_intermediate_results:
            with contextlib.suppress(Exception):
                value = await self.assessor.value_at_stop(active.id)
                if value is not None and not active.has_final:
                    self.tuner.result(active.record, value)
        self.assessor.trial_end(active.id, end.status is TrialStatus.SUCCEEDED)
