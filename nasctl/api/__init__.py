"""The Python interface for scripts and notebooks: ``nasctl.Experiment`` and its ``Trial`` records.

Modules: ``experiment`` (the handle on one experiment of a daemon), ``records`` (the typed trial
record and its table for pandas), ``progress`` (the live view in a terminal or a notebook),
``config_source`` (a YAML path, a dict or a parsed config turned into what the daemon takes),
``errors`` (what goes wrong, as built-in kinds).
"""

from nasctl.api.errors import ExperimentNotFound, ExperimentStateError, InvalidConfig
from nasctl.api.experiment import Experiment
from nasctl.api.records import Trial

__all__ = ["Experiment", "ExperimentNotFound", "ExperimentStateError", "InvalidConfig", "Trial"]
