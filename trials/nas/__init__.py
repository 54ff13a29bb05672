"""The NAS model API: mark a model's open decisions, then dump or apply architectures.

from trials.nas import LayerChoice, InputChoice, get_and_apply_next_architecture
"""

from trials.errors import ArchitectureError, MutableError, SearchSpaceError
from trials.nas.classic import apply_fixed_architecture, dump_search_space, get_and_apply_next_architecture
from trials.nas.model import parse_model
from trials.nas.mutables import InputChoice, LayerChoice, Mutable, MutableScope

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


def __getattr__(name: str) -> object:
    """``model_costs`` loads the one-shot cost tools only when a script asks for it."""
    if name == "model_costs":
        from trials.nas.costs import model_costs

        return model_costs
    raise AttributeError(f"module 'trials.nas' has no attribute {name!r}")
