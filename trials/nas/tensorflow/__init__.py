"""The NAS model API for TensorFlow 2 (Keras 3 with the TensorFlow backend).

from trials.nas.tensorflow import LayerChoice, InputChoice, get_and_apply_next_architecture

The same keys, search-space JSON and architecture JSON as :mod:`trials.nas` (PyTorch), so
``nasctl ss_gen``, the tuners, the daemon and the dashboard serve Keras models unchanged. Needs
``pip install 'nasctl[tensorflow]'``; nothing outside this package imports TensorFlow.
"""

from trials.errors import ArchitectureError, MutableError
from trials.nas.classic import apply_fixed_architecture, dump_search_space, get_and_apply_next_architecture
from trials.nas.tensorflow.model import parse_model
from trials.nas.tensorflow.mutables import InputChoice, LayerChoice, Mutable, MutableScope

__all__ = [
    "ArchitectureError",
    "InputChoice",
    "LayerChoice",
    "Mutable",
    "MutableError",
    "MutableScope",
    "apply_fixed_architecture",
    "dump_search_space",
    "get_and_apply_next_architecture",
    "parse_model",
]
