"""NNI's trainer surface (``nni.nas.pytorch.Trainer``) over nasctl's one-shot trainers.

Each NNI-named trainer of this package is a thin subclass: ``class DartsTrainer(Trainer,
oneshot.DartsTrainer)``. Its constructor takes NNI's arguments in NNI's order, builds the
loaders NNI built from datasets (and splits the training set as NNI did), and hands the rest to
nasctl's trainer, which does all the searching. This mixin adds NNI's methods:

* ``train(validate=True)``: the whole search (nasctl's ``fit``), validating on
  ``dataset_valid`` after every epoch unless ``validate=False``;
* ``validate()``: the current architecture on ``dataset_valid`` (``val_*`` metrics);
* ``export(file)``: the current architecture; with ``file``, also written there in NNI's
  multi-hot form (``apply_fixed_architecture`` reads either form);
* ``checkpoint()``: nasctl's resumable checkpoint, now;
* ``enable_visualization()``: a search log in ``logs/<time>`` (NNI's folder), which
  ``nasctl view-nas --logdir`` shows, in place of NNI's graph file for its web UI.

NNI's callbacks (:mod:`.callbacks`) get ``build(model, mutator, trainer)`` once and then run
at nasctl's epoch hooks; ``log_frequency`` prints NNI's step lines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, SubsetRandomSampler

from trials.nas.nni.callbacks import Callback as NniCallback
from trials.nas.nni.utils import AverageMeterGroup
from trials.nas.oneshot.callbacks import Callback
from trials.searchlog import SearchLog


def default_device(device: Any) -> torch.device | str:
    """NNI's default: the GPU when torch sees one, else the CPU."""
    if device is not None:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def split_loaders(
    owner: str,
    dataset_train: Any,
    dataset_valid: Any,
    batch_size: int,
    workers: int,
    arch_samples: Callable[[int], int],
) -> tuple[DataLoader, DataLoader, DataLoader]:
    """NNI's loaders: ``dataset_train`` split into a first part for the weights and the last
    ``arch_samples(len(dataset_train))`` samples for the architecture (random order within
    each, reshuffled every epoch), and ``dataset_valid`` in order, for ``validate()``."""
    for name, value in (("dataset_train", dataset_train), ("dataset_valid", dataset_valid)):
        if isinstance(value, DataLoader) or not isinstance(value, Dataset):
            raise TypeError(
                f"{owner}: {name} must be a torch Dataset (NNI's trainer builds the loaders and splits "
                f"the training set), got {type(value).__name__}; to pass loaders, give "
                "train_data= and valid_data= instead (nasctl's arguments)"
            )
    n = len(dataset_train)
    split = n - arch_samples(n)
    if not 0 < split < n:
        raise ValueError(f"{owner}: dataset_train has {n} samples; too few to split for the architecture")
    indices = list(range(n))

    def loader(dataset: Any, sampler: Any = None) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers)

    return (
        loader(dataset_train, SubsetRandomSampler(indices[:split])),
        loader(dataset_train, SubsetRandomSampler(indices[split:])),
        loader(dataset_valid),
    )


class FixedSteps:
    """``steps`` batches per pass, drawn from ``loader`` endlessly (NNI's ENAS trains a fixed
    number of child steps per epoch, continuing the loader where the last epoch stopped)."""

    def __init__(self, loader: Iterable[Any], steps: int) -> None:
        if steps < 1:
            raise ValueError(f"child_steps must be >= 1, got {steps}")
        self.loader = loader
        self.steps = steps
        self._batches: Iterator[Any] | None = None

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Any]:
        for _ in range(self.steps):
            yield self._next()

    def _next(self) -> Any:
        for _ in range(2):
            if self._batches is None:
                self._batches = iter(self.loader)
            try:
                return next(self._batches)
            except StopIteration:
                self._batches = None
        raise ValueError("the training loader yielded no batch")


class _NniCallbacks(Callback):
    """Runs NNI-style callbacks at nasctl's hooks, and prints NNI's step lines."""

    def __init__(self, callbacks: Sequence[NniCallback], log_frequency: int | None) -> None:
        self.callbacks = list(callbacks)
        self.log_frequency = log_frequency
        self.meters = AverageMeterGroup()
        self.epoch_start = 0

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        self.meters, self.epoch_start = AverageMeterGroup(), trainer.step
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch)

    def on_step_end(self, trainer: Any, step: int, metrics: Mapping[str, float]) -> None:
        if not self.log_frequency:
            return
        self.meters.update(metrics)
        in_epoch = step - self.epoch_start
        if in_epoch % self.log_frequency == 0:
            total = _length(trainer.train_data)
            print(
                f"Epoch [{trainer.epoch + 1}/{trainer.num_epochs}] Step [{in_epoch}/{total or '?'}]  {self.meters}",
                flush=True,
            )

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: Mapping[str, float]) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(epoch)


def _length(data: Iterable[Any]) -> int | None:
    try:
        return len(data)  # type: ignore[arg-type]
    except TypeError:
        return None


class Trainer:
    """NNI's trainer methods, mixed in before a nasctl trainer (see the module docstring)."""

    test_loader: Any = None
    mutator: Any = None
    _validate_epochs = True

    def _nni_arguments(
        self,
        loss: Any,
        metrics: Any,
        optimizer: Any,
        num_epochs: int,
        device: Any,
        log_frequency: int | None,
        callbacks: Sequence[NniCallback] | None,
    ) -> dict[str, Any]:
        """nasctl's arguments for NNI's common ones."""
        for callback in callbacks or ():
            if not isinstance(callback, NniCallback):
                raise TypeError(
                    f"{type(self).__name__}: callbacks must be trials.nas.nni.callbacks.Callback objects "
                    f"(NNI's), got {type(callback).__name__}; nasctl's own callbacks go to trials.nas.oneshot trainers"
                )
        self._nni_callbacks = list(callbacks or ())
        return {
            "loss": loss,
            "metrics": metrics,
            "optimizer": optimizer,
            "num_epochs": num_epochs,
            "device": default_device(device),
            "log_every": log_frequency or 10,
            "callbacks": [_NniCallbacks(self._nni_callbacks, log_frequency)],
        }

    def _nni_bind(self, mutator: Any, test_loader: Any) -> None:
        """After nasctl's constructor: NNI's attributes, and each callback's ``build``."""
        self.mutator = mutator
        if mutator is not None:
            mutator.trainer = self
        self.train_loader = self.train_data  # type: ignore[attr-defined]
        self.valid_loader = self.valid_data  # type: ignore[attr-defined]
        self.test_loader = test_loader if test_loader is not None else self.valid_data  # type: ignore[attr-defined]
        for callback in self._nni_callbacks:
            callback.build(self.model, mutator, self)  # type: ignore[attr-defined]

    # -- NNI's methods ---------------------------------------------------------------------------
    def train(self, validate: bool = True) -> dict[str, Any]:
        """Run the whole search; returns the exported architecture (nasctl's full form)."""
        self._validate_epochs = validate
        try:
            return self.fit()  # type: ignore[attr-defined]
        finally:
            self._validate_epochs = True

    def validate(self) -> dict[str, float]:
        """The current architecture's ``val_*`` metrics on ``dataset_valid`` (NNI's test loader)."""
        if not self._validate_epochs:
            return {}
        searched_on = self.valid_data  # type: ignore[has-type]
        self.valid_data = self.test_loader
        try:
            return super().validate()  # type: ignore[misc]
        finally:
            self.valid_data = searched_on

    def export(self, file: str | Path | None = None, multi_hot: bool = False) -> dict[str, Any]:
        """The current architecture (nasctl's full form, or NNI's with ``multi_hot``); with
        ``file``, also written there in NNI's multi-hot form, as NNI's ``export(file)`` wrote it."""
        if file is not None:
            nni_form = super().export(multi_hot=True)  # type: ignore[misc]
            Path(file).write_text(json.dumps(nni_form, indent=2, sort_keys=True) + "\n")
        return super().export(multi_hot=multi_hot)  # type: ignore[misc]

    def checkpoint(self) -> None:
        """Write nasctl's resumable checkpoint now (it is also written after every epoch)."""
        if self.checkpoint_path is None:  # type: ignore[attr-defined]
            raise ValueError(
                f"{type(self).__name__}.checkpoint(): no checkpoint path; give log_dir= or call "
                "enable_visualization() before train()"
            )
        self.save_checkpoint()  # type: ignore[attr-defined]

    def enable_visualization(self) -> Path:
        """Keep a search log (``logs/<time>``, NNI's folder, unless ``log_dir`` was given); view it
        with ``nasctl view-nas --logdir`` during or after the search. Returns the folder."""
        if self.log is None:  # type: ignore[has-type]
            folder = Path("logs") / time.strftime("%Y%m%d_%H%M%S")
            self.log = SearchLog(folder)
            if self.checkpoint_path is None:  # type: ignore[has-type]
                self.checkpoint_path = folder / "checkpoint.pt"
        print(f"search log: {self.log.directory} (nasctl view-nas --logdir {self.log.directory})", flush=True)
        return self.log.directory
