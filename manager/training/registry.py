"""Training services by ``trainingService.platform``: the loop is handed one from here.

A platform maps to a factory that builds its service from the config's ``trainingService``
section and the daemon's settings. Factories are named by import path and imported only when
an experiment asks for their platform, so the daemon never loads Ray (or anything heavy) for an
experiment that does not use it. The simulated service of the tests is not a platform: tests
hand it to the manager themselves.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trials.messages import did_you_mean

if TYPE_CHECKING:
    from manager.config import TrainingServiceConfig
    from manager.training.base import TrainingService

#: Seconds between SIGTERM and SIGKILL when a trial is ended.
DEFAULT_KILL_GRACE = 5.0
#: A trial's stdout or stderr is cut back to nothing when it passes this size (None: never).
DEFAULT_MAX_LOG_BYTES = 1 << 30


@dataclass(frozen=True)
class ServiceSettings:
    """What the daemon decides for every training service (the config decides the rest)."""

    kill_grace: float = DEFAULT_KILL_GRACE
    max_log_bytes: int | None = DEFAULT_MAX_LOG_BYTES


ServiceFactory = Callable[["TrainingServiceConfig", ServiceSettings], "TrainingService"]

#: platform -> "module:callable" of its factory.
_BUILTIN = {
    "local": "manager.training.local:create_local_service",
    "ray": "manager.training.ray:create_ray_service",
}
_registered: dict[str, ServiceFactory] = {}


def register(platform: str, factory: ServiceFactory) -> None:
    """Make ``platform`` available to experiment configs (a plug-in's entry point)."""
    _registered[platform] = factory


def platforms() -> tuple[str, ...]:
    """Every platform a config may name."""
    return tuple(sorted({*_BUILTIN, *_registered}))


def create_training_service(config: TrainingServiceConfig, settings: ServiceSettings) -> TrainingService:
    """The service for ``config.platform``; ValueError naming the field for an unknown one."""
    factory = _registered.get(config.platform)
    if factory is None:
        target = _BUILTIN.get(config.platform)
        if target is None:
            raise ValueError(
                f"trainingService.platform: {config.platform!r} is not available; "
                f"use one of {', '.join(platforms())}{did_you_mean(config.platform, platforms())}"
            )
        module, name = target.split(":")
        factory = getattr(importlib.import_module(module), name)
    return factory(config, settings)
