"""``nni.algorithms.nas.pytorch.classic_nas``: a trial applies the architecture its tuner chose."""

from trials.nas.classic import get_and_apply_next_architecture

__all__ = ["get_and_apply_next_architecture"]
