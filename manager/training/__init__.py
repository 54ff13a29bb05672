"""Training services: where and how trials run (``local`` subprocesses; Ray comes later)."""

from manager.training.base import (
    MetricReport,
    MetricsChunk,
    TrainingService,
    TrialExit,
    TrialProcess,
    TrialSpec,
)
from manager.training.local import LocalTrainingService

__all__ = [
    "LocalTrainingService",
    "MetricReport",
    "MetricsChunk",
    "TrainingService",
    "TrialExit",
    "TrialProcess",
    "TrialSpec",
]
