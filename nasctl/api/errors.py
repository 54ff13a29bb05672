"""The errors of ``nasctl.Experiment``: built-in kinds, so ``except ValueError`` works as expected.

The daemon's ``ApiError`` carries an HTTP status; a script cares what went wrong instead: the
config was refused (a ``ValueError`` naming the field), there is no such experiment (a
``LookupError``), or the experiment is in a state that forbids the action (a ``RuntimeError``).
Each message is the daemon's one line.
"""

from __future__ import annotations


class InvalidConfig(ValueError):
    """The config was refused; the message names the field, what was wrong and what is allowed."""


class ExperimentNotFound(LookupError):
    """No experiment with that id in this home."""


class ExperimentStateError(RuntimeError):
    """The experiment's status does not allow this (e.g. resume a RUNNING one, stop a DONE one)."""
