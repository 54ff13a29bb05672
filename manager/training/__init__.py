"""Training services: where and how trials run (``local`` subprocesses; Ray comes later)."""

from manager.training.base import (
    MetricsChunk,
    TrainingService,
    TrialExit,
    TrialProcess,
    TrialSpec,
)
from manager.training.local import LocalTrainingService

__all__ = [
    "LocalTrainingService",
    "MetricsChunk",
    "TrainingService",
    "TrialExit",
    "TrialProcess",
    "TrialSpec",
]
