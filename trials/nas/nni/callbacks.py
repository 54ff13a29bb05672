"""``nni.nas.pytorch.callbacks``: NNI's callback interface and its three built-in callbacks.

An NNI callback is told its model, mutator and trainer once (``build``) and then hears the
epoch number only. The NNI-style trainers of this package hand these callbacks to nasctl's
trainer through one adapter, so they run at the same moments as nasctl's own callbacks:
``on_epoch_begin`` before an epoch, ``on_epoch_end`` after its validation and checkpoint
(epochs counted from 0). ``on_batch_begin``/``on_batch_end`` are kept for subclasses; as in NNI
v1.9's built-in trainers, nothing calls them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn


class Callback:
    """Base of NNI-style callbacks; every hook does nothing by default."""

    def __init__(self) -> None:
        self.model: nn.Module | None = None
        self.mutator: Any = None
        self.trainer: Any = None

    def build(self, model: nn.Module, mutator: Any, trainer: Any) -> None:
        self.model = model
        self.mutator = mutator
        self.trainer = trainer

    def on_epoch_begin(self, epoch: int) -> None:
        pass

    def on_epoch_end(self, epoch: int) -> None:
        pass

    def on_batch_begin(self, epoch: int) -> None:
        pass

    def on_batch_end(self, epoch: int) -> None:
        pass


class LRSchedulerCallback(Callback):
    """Steps ``scheduler`` at the end of every epoch (NNI's only mode, ``"epoch"``)."""

    def __init__(self, scheduler: Any, mode: str = "epoch") -> None:
        super().__init__()
        if mode != "epoch":
            raise ValueError(f"LRSchedulerCallback: mode must be 'epoch' (NNI's only mode), got {mode!r}")
        self.scheduler = scheduler
        self.mode = mode

    def on_epoch_end(self, epoch: int) -> None:
        self.scheduler.step()


class ArchitectureCheckpoint(Callback):
    """Writes the trainer's current export to ``checkpoint_dir/epoch_<n>.json`` after every epoch,
    in NNI's multi-hot form, so NNI's retraining scripts read it as they did."""

    def __init__(self, checkpoint_dir: str | Path) -> None:
        super().__init__()
        self.checkpoint_dir = Path(checkpoint_dir)

    def on_epoch_end(self, epoch: int) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.trainer.export(self.checkpoint_dir / f"epoch_{epoch}.json")


class ModelCheckpoint(Callback):
    """Saves the model's plain ``state_dict`` (of ``model.module`` under ``DataParallel``) to
    ``checkpoint_dir/epoch_<n>.pth.tar`` after every epoch: what ``model.load_state_dict`` reads
    back. (nasctl's own resumable checkpoint, ``checkpoint.pt`` in the search log, is separate.)"""

    def __init__(self, checkpoint_dir: str | Path) -> None:
        super().__init__()
        self.checkpoint_dir = Path(checkpoint_dir)

    def on_epoch_end(self, epoch: int) -> None:
        assert self.model is not None, "ModelCheckpoint: build() was not called"
        model = self.model.module if isinstance(self.model, nn.DataParallel) else self.model
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        path = self.checkpoint_dir / f"epoch_{epoch}.pth.tar"
        tmp = path.with_name(path.name + ".tmp")
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
