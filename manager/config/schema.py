"""The validated experiment config: frozen values, their stored JSON form, and the one error type.

Everything here is plain data. :mod:`manager.config.parser` is the only way a person's config
becomes an :class:`ExperimentConfig`; :meth:`ExperimentConfig.from_json` reloads the form that
:meth:`ExperimentConfig.to_json` wrote, which the daemon stores, without checking it again.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trials.messages import one_line
from trials.objectives import Objectives

DEFAULT_TUNER = "Random"
#: maxConsecutiveFailures when a config does not set it: enough failures in a row to rule out bad
#: luck (an unlucky architecture, a flaky trial), few enough that a broken trial command wastes
#: minutes, not the budget.
DEFAULT_MAX_CONSECUTIVE_FAILURES = 5
#: Counts (concurrency, trial budget, GPUs) above this fit no database integer column.
MAX_COUNT = 2**31 - 1


class ConfigError(ValueError):
    """An experiment config is invalid: one line, ``<source>: <field>: <what was wrong>, <allowed>``."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message.replace("\r", " ").replace("\n", " "))
        self.field = field


@dataclass(frozen=True)
class TunerConfig:
    """Which tuner proposes architectures: a built-in by ``name`` or a user's class."""

    name: str | None
    class_args: Mapping[str, Any] = field(default_factory=dict)
    code_directory: Path | None = None
    class_name: str | None = None
    class_file_name: str | None = None

    @property
    def is_custom(self) -> bool:
        return self.name is None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "classArgs": copy.deepcopy(dict(self.class_args)),
            "codeDirectory": None if self.code_directory is None else str(self.code_directory),
            "className": self.class_name,
            "classFileName": self.class_file_name,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TunerConfig:
        return cls(
            name=obj.get("name"),
            class_args=copy.deepcopy(dict(obj.get("classArgs") or {})),
            code_directory=_path(obj.get("codeDirectory")),
            class_name=obj.get("className"),
            class_file_name=obj.get("classFileName"),
        )


@dataclass(frozen=True)
class TrainingServiceConfig:
    """Where trials run and how they share GPUs.

    ``trial_cpu_number`` and ``trial_gpu_number`` are the top-level ``trialCpuNumber`` and
    ``trialGpuNumber``, copied here because a service's factory sees only this section; they are
    stored at the top level, not in this section's JSON.
    """

    platform: str = "local"
    use_active_gpu: bool = False
    max_trial_number_per_gpu: int = 1
    gpu_indices: tuple[int, ...] | None = None
    address: str | None = None  # Ray cluster address (platform "ray" only)
    resources: Mapping[str, float] = field(default_factory=dict)  # Ray custom resources per trial
    placement_strategy: str = "PACK"  # Ray: PACK (fill a node first) or SPREAD
    trial_cpu_number: float = field(default=1.0, compare=False)  # derived: not part of equality
    trial_gpu_number: int = field(default=0, compare=False)
    trial_preload: tuple[str, ...] = field(default=(), compare=False)  # top-level trialPreload

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "useActiveGpu": self.use_active_gpu,
            "maxTrialNumberPerGpu": self.max_trial_number_per_gpu,
            "gpuIndices": None if self.gpu_indices is None else list(self.gpu_indices),
            "address": self.address,
            "resources": dict(self.resources),
            "placementStrategy": self.placement_strategy,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TrainingServiceConfig:
        indices = obj.get("gpuIndices")
        return cls(
            platform=obj.get("platform", "local"),
            use_active_gpu=obj.get("useActiveGpu", False),
            max_trial_number_per_gpu=obj.get("maxTrialNumberPerGpu", 1),
            gpu_indices=None if indices is None else tuple(indices),
            address=obj.get("address"),
            resources=dict(obj.get("resources") or {}),
            placement_strategy=obj.get("placementStrategy", "PACK"),
        )


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """A validated experiment config; paths are absolute, durations in seconds."""

    experiment_name: str | None = None
    search_space_file: Path | None = None
    search_space: Mapping[str, Any] | None = None
    model_file: Path | None = None
    trial_command: str
    trial_code_directory: Path
    trial_concurrency: int = 1
    trial_gpu_number: int = 0
    trial_cpu_number: float = 1.0
    max_trial_number: int | None = None
    max_experiment_duration: float | None = None
    max_trial_duration: float | None = None
    #: The experiment ends in ERROR after this many trials in a row end FAILED (None: never).
    max_consecutive_failures: int | None = DEFAULT_MAX_CONSECUTIVE_FAILURES
    tuner: TunerConfig = field(default_factory=lambda: TunerConfig(name=DEFAULT_TUNER))
    #: Judges running trials from their intermediate results (None: every trial runs to its end).
    assessor: TunerConfig | None = None
    #: NNI's ``tuner.includeIntermediateResults``: an early-stopped trial's last intermediate result
    #: goes to the tuner as its final result.
    include_intermediate_results: bool = False
    training_service: TrainingServiceConfig = field(default_factory=TrainingServiceConfig)
    #: ``trialPreload``: modules a warm launcher imports once and forks trials from (empty: cold).
    trial_preload: tuple[str, ...] = ()
    #: Several metrics searched together (top-level ``objectives`` and ``constraints``); None: the
    #: one metric of today, ordered by ``tuner.classArgs.optimize_mode``.
    objectives: Objectives | None = None

    @property
    def optimize_mode(self) -> str:
        """``maximize`` or ``minimize``: the tuner's ``optimize_mode`` class argument, NNI's convention."""
        return str(self.tuner.class_args.get("optimize_mode", "maximize"))

    def to_json(self) -> dict[str, Any]:
        """The normalized camelCase v2 form; :meth:`from_json` turns it back into an equal config."""
        return {
            "experimentName": self.experiment_name,
            "searchSpaceFile": None if self.search_space_file is None else str(self.search_space_file),
            "searchSpace": None if self.search_space is None else copy.deepcopy(dict(self.search_space)),
            "modelFile": None if self.model_file is None else str(self.model_file),
            "trialCommand": self.trial_command,
            "trialCodeDirectory": str(self.trial_code_directory),
            "trialConcurrency": self.trial_concurrency,
            "trialGpuNumber": self.trial_gpu_number,
            "trialCpuNumber": self.trial_cpu_number,
            "maxTrialNumber": self.max_trial_number,
            "maxExperimentDuration": self.max_experiment_duration,
            "maxTrialDuration": self.max_trial_duration,
            "maxConsecutiveFailures": self.max_consecutive_failures,
            "tuner": {
                **self.tuner.to_json(),
                "includeIntermediateResults": self.include_intermediate_results,
            },
            "assessor": None if self.assessor is None else self.assessor.to_json(),
            "trainingService": self.training_service.to_json(),
            # absent when off, so a config without it stores exactly as before
            **({"trialPreload": list(self.trial_preload)} if self.trial_preload else {}),
            # absent for one objective, so a single-objective config stores exactly as before
            **({} if self.objectives is None else self.objectives.to_json()),
        }

    @classmethod
    def from_json(cls, obj: Any, source: str = "stored config") -> ExperimentConfig:
        """Reload a stored :meth:`to_json` form (keys it lacks take their defaults).

        It was valid when it was stored, so it is not validated again; files are not looked at,
        since they may have moved since. A form that is not one says so in a :class:`ConfigError`.
        """
        try:
            space = obj.get("searchSpace")
            service = TrainingServiceConfig.from_json(obj.get("trainingService") or {})
            cpus, gpus = obj.get("trialCpuNumber", 1.0), obj.get("trialGpuNumber", 0)
            tuner = obj.get("tuner") or {"name": DEFAULT_TUNER}
            assessor = obj.get("assessor")
            objectives = obj.get("objectives")
            preload = tuple(obj.get("trialPreload") or ())
            return cls(
                experiment_name=obj.get("experimentName"),
                search_space_file=_path(obj.get("searchSpaceFile")),
                search_space=None if space is None else copy.deepcopy(dict(space)),
                model_file=_path(obj.get("modelFile")),
                trial_command=obj["trialCommand"],
                trial_code_directory=Path(obj.get("trialCodeDirectory", ".")),
                trial_concurrency=obj.get("trialConcurrency", 1),
                trial_gpu_number=gpus,
                trial_cpu_number=cpus,
                max_trial_number=obj.get("maxTrialNumber"),
                max_experiment_duration=obj.get("maxExperimentDuration"),
                max_trial_duration=obj.get("maxTrialDuration"),
                # stored before the key existed: the default; stored as null: off
                max_consecutive_failures=obj.get("maxConsecutiveFailures", DEFAULT_MAX_CONSECUTIVE_FAILURES),
                tuner=TunerConfig.from_json(tuner),
                assessor=None if assessor is None else TunerConfig.from_json(assessor),
                include_intermediate_results=bool(tuner.get("includeIntermediateResults", False)),
                trial_preload=preload,
                training_service=replace(
                    service, trial_cpu_number=cpus, trial_gpu_number=gpus, trial_preload=preload
                ),
                objectives=None
                if objectives is None
                else Objectives.from_config(objectives, obj.get("constraints")),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: not a stored experiment config ({one_line(exc)})") from None


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)
