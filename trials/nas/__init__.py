"""The NAS model API: mark a model's open decisions, then dump or apply architectures.

from trials.nas import LayerChoice, InputChoice, get_and_apply_next_architecture
"""

import importlib

from trials.errors import ArchitectureError, MutableError, SearchSpaceError
from trials.nas.classic import apply_fixed_architecture, dump_search_space, get_and_apply_next_architecture

__all__ = [
    "ArchitectureError",
    "InputChoice",
    "LayerChoice",
    "Mutable",
    "MutableError",
    "MutableScope",
    "SearchSpaceError",
    "apply_fixed_architecture",
    "dump_search_space",
    "get_and_apply_next_architecture",
    "model_costs",
    "parse_model",
]


#: Names that load torch, from the module that defines them: imported when first asked for, so
#: that ``trials.nas.tensorflow`` (under this package) does not load torch.
_LAZY = {
    "InputChoice": "trials.nas.mutables",
    "LayerChoice": "trials.nas.mutables",
    "Mutable": "trials.nas.mutables",
    "MutableScope": "trials.nas.mutables",
    "parse_model": "trials.nas.model",
    "model_costs": "trials.nas.costs",
}


def __getattr__(name: str) -> object:
    """The torch side of the API, and the one-shot cost tools, load when a script asks for them."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trials.nas' has no attribute {name!r}")
