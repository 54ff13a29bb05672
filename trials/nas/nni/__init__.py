"""NNI v1.9's NAS API under nasctl: change ``nni`` in the import lines, keep the rest.

| NNI module | nasctl module |
|---|---|
| ``nni.nas.pytorch`` | ``trials.nas.nni`` |
| ``nni.nas.pytorch.mutables`` | ``trials.nas.nni.mutables`` |
| ``nni.nas.pytorch.callbacks`` | ``trials.nas.nni.callbacks`` |
| ``nni.nas.pytorch.fixed`` | ``trials.nas.nni.fixed`` |
| ``nni.nas.pytorch.utils`` | ``trials.nas.nni.utils`` |
| ``nni.algorithms.nas.pytorch.{darts,enas,spos,classic_nas}`` | ``trials.nas.nni.{darts,enas,spos,classic_nas}`` |

(the pre-1.9 ``nni.nas.pytorch.{darts,enas,spos,classic_nas}`` map to the same modules).
Every name is a thin layer over nasctl's own implementation: the mutables are nasctl's, and
each trainer subclasses nasctl's trainer of the same algorithm (see :mod:`.trainer`).
"""

from trials.nas.nni.fixed import apply_fixed_architecture
from trials.nas.nni.mutables import InputChoice, LayerChoice, Mutable, MutableScope
from trials.nas.nni.mutator import BaseMutator, Mutator
from trials.nas.nni.trainer import Trainer

BaseTrainer = Trainer

__all__ = [
    "BaseMutator",
    "BaseTrainer",
    "InputChoice",
    "LayerChoice",
    "Mutable",
    "MutableScope",
    "Mutator",
    "Trainer",
    "apply_fixed_architecture",
]
