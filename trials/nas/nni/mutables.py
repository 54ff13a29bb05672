"""``nni.nas.pytorch.mutables``: NNI's mutables are nasctl's (same arguments, same keys)."""

from trials.nas.mutables import InputChoice, LayerChoice, Mutable, MutableScope

__all__ = ["InputChoice", "LayerChoice", "Mutable", "MutableScope"]
