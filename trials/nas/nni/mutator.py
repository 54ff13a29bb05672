"""``nni.nas.pytorch.Mutator``: in NNI the object that samples architectures for a trainer.

nasctl's trainers sample for themselves, so an NNI mutator here carries the settings NNI put on
it (the ENAS controller's, SPOS' FLOPs band) into the trainer it is passed to, and then answers
for that trainer: ``export()`` is the trainer's current architecture in NNI's multi-hot form.
"""

from __future__ import annotations

from typing import Any

from torch import nn


class Mutator:
    """Base of NNI-style mutators: holds the model; bound to a trainer when one takes it."""

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"{type(self).__name__}: model must be an nn.Module, got {type(model).__name__}")
        self.model = model
        self.trainer: Any = None

    def check_model(self, owner: str, model: nn.Module) -> None:
        if model is not self.model:
            raise ValueError(
                f"{owner}: the mutator was built for another model; build it with the trainer's model"
            )

    def export(self) -> dict[str, list[bool]]:
        """The bound trainer's current architecture, one boolean per candidate (NNI's form)."""
        if self.trainer is None:
            raise RuntimeError(f"{type(self).__name__}.export(): pass the mutator to a trainer first")
        return self.trainer.export(multi_hot=True)


BaseMutator = Mutator
