"""nasctl: neural architecture search for PyTorch, run by a local daemon.

``nasctl.Experiment`` (and ``nasctl.Trial``) load on first use, so ``import nasctl`` (and with it
every CLI command) stays as light as the standard library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasctl.api import (
        Experiment,
        ExperimentNotFound,
        ExperimentStateError,
        InvalidConfig,
        Trial,
    )

__all__ = ["Experiment", "ExperimentNotFound", "ExperimentStateError", "InvalidConfig", "Trial"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        import nasctl.api

        return getattr(nasctl.api, name)
    raise AttributeError(f"module 'nasctl' has no attribute {name!r}")
