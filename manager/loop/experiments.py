"""Every experiment of one daemon: create, stop, resume, change and delete them.

The manager owns one :class:`~manager.loop.runner.ExperimentRunner` per experiment it has run
since the daemon started, and hands each the training service its config's platform names (from
:mod:`manager.training.registry`, or the factory a test passes in). All methods run on the
daemon's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from manager.clock import SYSTEM_CLOCK, Clock
from manager.config import ConfigError, ExperimentConfig
from manager.gpu import GpuAllocator, GpuInfo
from manager.loop import recovery
from manager.loop.ending import StopRequest, room_left
from manager.loop.errors import ExperimentNotFound, InvalidState, TrialNotFound
from manager.loop.runner import ExperimentRunner, RunnerSettings
from manager.loop.tuner_session import build_tuner
from manager.store import (
    KEEP,
    ExperimentRecord,
    StorageError,
    Store,
    TrialRecord,
    new_experiment_id,
    storage_problem,
)
from manager.training.base import TrainingService
from manager.training.registry import (
    DEFAULT_KILL_GRACE,
    DEFAULT_MAX_LOG_BYTES,
    ServiceSettings,
    create_training_service,
)
from manager.tuners.registry import check_tuner_config
from trials.searchspace import SearchSpace
from trials.status import ExperimentStatus, TrialStatus

#: How often a running trial's metric channel is checked for new records (its end is awaited,
#: and a last read follows it, so this only bounds how stale live curves look).
METRIC_POLL_SECONDS = 0.25
RESUMABLE = (ExperimentStatus.STOPPED, ExperimentStatus.DONE, ExperimentStatus.ERROR)
#: Builds the training service of an experiment (default: the registry, by platform).
ServiceFactory = Callable[[ExperimentConfig], TrainingService]


class ExperimentManager:
    """Every experiment of one daemon: creates, stops, resumes, changes and deletes them."""

    def __init__(
        self,
        store: Store,
        home: Path,
        *,
        kill_grace: float = DEFAULT_KILL_GRACE,
        gpu_inventory: Callable[[], list[GpuInfo]] | None = None,
        metric_poll_seconds: float = METRIC_POLL_SECONDS,
        max_log_bytes: int | None = DEFAULT_MAX_LOG_BYTES,
        clock: Clock = SYSTEM_CLOCK,
        services: ServiceFactory | None = None,
    ) -> None:
        self.store = store
        self.home = Path(home)
        self.experiments_root = self.home / "experiments"
        self.gpu_inventory = gpu_inventory
        self.runner_settings = RunnerSettings(store, clock, metric_poll_seconds, gpu_inventory)
        service_settings = ServiceSettings(kill_grace=kill_grace, max_log_bytes=max_log_bytes)
        self.service_for: ServiceFactory = services or (
            lambda config: create_training_service(config.training_service, service_settings)
        )
        self.runners: dict[str, ExperimentRunner] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    async def recover(self) -> list[str]:
        """Experiments a crashed daemon left active become STOPPED (see :mod:`manager.loop.recovery`)."""
        return await recovery.recover(self.store, self.service_for)

    async def shutdown(self, reason: str = "daemon shut down") -> None:
        """Stop every active experiment (STOPPED, so resume continues it) and release everything."""
        request = StopRequest(ExperimentStatus.STOPPED, TrialStatus.USER_CANCELED, reason)
        await asyncio.gather(
            *(runner.stop(request) for runner in self.runners.values() if runner.is_running),
            return_exceptions=True,
        )
        for runner in list(self.runners.values()):
            await runner.close()
        self.runners.clear()

    # -- requests ----------------------------------------------------------------------------
    def get(self, experiment_id: str) -> ExperimentRecord:
        record = self.store.get_experiment(experiment_id)
        if record is None:
            raise ExperimentNotFound(f"experiment {experiment_id!r} not found")
        return record

    async def create(self, config: ExperimentConfig) -> ExperimentRecord:
        """Check everything that can be checked, then create and start the experiment.

        Raises ``ConfigError`` / ``SearchSpaceError`` / ``TunerError`` (all ValueErrors) with
        nothing created when the config, the search space, the tuner or the GPU request is bad.
        """
        service = await asyncio.to_thread(self.service_for, config)  # Ray's connects to its cluster
        try:
            space = load_search_space(config)
            check_tuner_config(config.tuner, config.objectives)
            if not service.assigns_gpus:
                await self._check_gpus(config)
            # The tuner is built (in the thread that will run it) before anything is stored, so a
            # tuner that cannot be imported or refuses the space is a 400 with nothing created.
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tuner")
            try:
                tuner = await asyncio.get_running_loop().run_in_executor(executor, build_tuner, config, space)
                # The folder comes first and goes again if the row cannot be stored, so a full or
                # read-only disk is one clear error (StorageError) with nothing left behind.
                record = await self._store_new(config, space)
            except BaseException:
                executor.shutdown(wait=False)
                raise
        except BaseException:
            await service.close()
            raise
        runner = ExperimentRunner(self.runner_settings, record, config, service, tuner, executor)
        self.runners[record.id] = runner
        runner.start(record)
        return record

    async def _check_gpus(self, config: ExperimentConfig) -> None:
        if config.trial_gpu_number > 0:
            allocator = GpuAllocator.for_service(config.training_service, self.gpu_inventory)
            problem = await asyncio.to_thread(allocator.validate, config.trial_gpu_number)
            if problem:
                raise ConfigError(f"trialGpuNumber: {problem}", field="trialGpuNumber")

    async def _store_new(self, config: ExperimentConfig, space: SearchSpace | None) -> ExperimentRecord:
        experiment_id, experiment_dir = await asyncio.to_thread(self._new_folder, space)
        try:
            return await self.store.call(
                self.store.create_experiment,
                name=config.experiment_name or "",
                config=config.to_json(),
                search_space=space.to_json() if space is not None else None,
                trial_concurrency=config.trial_concurrency,
                max_trial_number=config.max_trial_number,
                max_experiment_duration=config.max_experiment_duration,
                optimize_mode=config.optimize_mode,
                tuner_name=config.tuner.name or config.tuner.class_name or "",
                experiments_root=self.experiments_root,
                experiment_id=experiment_id,
            )
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, experiment_dir, True)
            raise

    def _new_folder(self, space: SearchSpace | None) -> tuple[str, Path]:
        """A fresh experiment id and its folder (with search_space.json); StorageError when the disk refuses."""
        created: Path | None = None
        try:
            self.experiments_root.mkdir(parents=True, exist_ok=True)
            while created is None:
                experiment_id = new_experiment_id()
                folder = self.experiments_root / experiment_id
                if self.store.get_experiment(experiment_id) is None:
                    with contextlib.suppress(FileExistsError):
                        folder.mkdir()
                        created = folder
            if space is not None:
                (created / "search_space.json").write_text(space.dumps())
        except OSError as exc:
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            problem = storage_problem(exc) or (exc.strerror or str(exc))
            raise StorageError(
                f"cannot create the experiment folder in {self.experiments_root}: {problem}"
            ) from None
        return experiment_id, created

    async def stop(self, experiment_id: str) -> ExperimentRecord:
        """Cancel the experiment's trials, wait until their processes are gone, end STOPPED.

        A stopped experiment whose trials an earlier daemon left running (see :meth:`recover`)
        can be stopped again: that ends those trials.
        """
        record = self.get(experiment_id)
        runner = self.runners.get(experiment_id)
        if runner is None or not runner.is_running:
            if await self._end_orphans(record, "experiment stopped"):
                return self.get(experiment_id)
            raise InvalidState(
                f"experiment {experiment_id} is {record.status.value}; only an active one can be stopped"
            )
        await runner.stop(
            StopRequest(ExperimentStatus.STOPPED, TrialStatus.USER_CANCELED, "experiment stopped")
        )
        return self.get(experiment_id)

    async def resume(self, experiment_id: str) -> ExperimentRecord:
        record = self.get(experiment_id)
        runner = self.runners.get(experiment_id)
        if (runner is not None and runner.is_running) or record.status not in RESUMABLE:
            allowed = ", ".join(s.value for s in RESUMABLE)
            raise InvalidState(
                f"experiment {experiment_id} is {record.status.value}; only {allowed} ones can be resumed"
            )
        await self._continue(record, fresh_tuner=record.status is ExperimentStatus.ERROR)
        return self.get(experiment_id)

    async def update(
        self,
        experiment_id: str,
        *,
        trial_concurrency: int | Any = KEEP,
        max_trial_number: int | Any | None = KEEP,
        max_experiment_duration: float | Any | None = KEEP,
    ) -> ExperimentRecord:
        """Change limits; they act at once, and room for more trials continues a DONE experiment."""
        self.get(experiment_id)
        record = await self.store.call(
            self.store.set_limits,
            experiment_id,
            trial_concurrency=trial_concurrency,
            max_trial_number=max_trial_number,
            max_experiment_duration=max_experiment_duration,
        )
        runner = self.runners.get(experiment_id)
        if runner is not None and runner.is_running:
            runner.limits_changed(record)
        elif record.status is ExperimentStatus.DONE and (
            runner.could_continue(record) if runner is not None else room_left(record)
        ):
            await self._continue(record, fresh_tuner=False)
        return self.get(experiment_id)

    async def _continue(self, record: ExperimentRecord, fresh_tuner: bool) -> None:
        """Start the loop of a finished experiment again (INITIALIZED until it runs)."""
        runner = self.runners.get(record.id)
        if runner is None:
            config = ExperimentConfig.from_json(record.config)
            service = await asyncio.to_thread(self.service_for, config)
            runner = ExperimentRunner(self.runner_settings, record, config, service)
            self.runners[record.id] = runner
        if fresh_tuner:
            runner.tuner.forget()  # rebuilt from the checkpoint (or the results) in the runner's thread
        record = await self.store.call(
            self.store.set_experiment_status, record.id, ExperimentStatus.INITIALIZED, "continued"
        )
        runner.start(record)

    async def delete(self, experiment_id: str) -> None:
        record = self.get(experiment_id)
        runner = self.runners.pop(experiment_id, None)
        if runner is not None:
            if runner.is_running:
                await runner.stop(
                    StopRequest(ExperimentStatus.STOPPED, TrialStatus.USER_CANCELED, "experiment deleted")
                )
            await runner.close()
        await self._end_orphans(record, "experiment deleted")
        await self.store.call(self.store.delete_experiment, experiment_id)
        await asyncio.to_thread(shutil.rmtree, record.experiment_dir, True)

    async def cancel_trial(self, experiment_id: str, trial_id: str) -> TrialRecord:
        self.get(experiment_id)
        trial = self.store.get_trial(experiment_id, trial_id)
        if trial is None:
            raise TrialNotFound(f"trial {trial_id!r} not found in experiment {experiment_id}")
        runner = self.runners.get(experiment_id)
        if trial.status.is_terminal or runner is None or trial_id not in runner.trials:
            raise InvalidState(
                f"trial {trial_id} is {trial.status.value}; only a WAITING or RUNNING trial can be killed"
            )
        await runner.cancel_trial(trial_id)
        result = self.store.get_trial(experiment_id, trial_id)
        assert result is not None
        return result

    async def _end_orphans(self, record: ExperimentRecord, reason: str) -> int:
        """Kill the trials of an experiment without a loop that an earlier daemon left."""
        config = ExperimentConfig.from_json(record.config)
        service = await asyncio.to_thread(self.service_for, config)
        try:
            return await recovery.end_orphans(self.store, service, config, record.id, reason)
        finally:
            await service.close()


def load_search_space(config: ExperimentConfig) -> SearchSpace | None:
    """The config's search space (file or inline), or None when ss_gen must find it."""
    if config.search_space_file is not None:
        return SearchSpace.load(config.search_space_file)
    if config.search_space is not None:
        return SearchSpace.from_json(config.search_space, source="searchSpace")
    return None
