"""``nni.algorithms.nas.pytorch.darts`` (before v1.9 ``nni.nas.pytorch.darts``): NNI's DARTS API
over nasctl's :class:`trials.nas.oneshot.DartsTrainer`."""

from __future__ import annotations

from typing import Any

from torch import nn

from trials.nas.nni.mutator import Mutator
from trials.nas.nni.trainer import Trainer, split_loaders
from trials.nas.oneshot import darts


class DartsMutator(Mutator):
    """NNI's DARTS mutator; nasctl's DARTS trainer keeps the architecture weights itself."""


class DartsTrainer(Trainer, darts.DartsTrainer):
    """NNI's ``DartsTrainer``: the first half of ``dataset_train`` trains the weights, the second
    half the architecture (Adam, ``arc_learning_rate``, betas (0.5, 0.999), weight decay 1e-3);
    ``dataset_valid`` is for ``validate()``. nasctl's own keyword arguments (``log_dir``,
    ``seed``, ``mixed_precision``, or ``train_data``/``valid_data`` loaders in place of the
    datasets, ...) pass through."""

    def __init__(
        self,
        model: nn.Module,
        loss: Any,
        metrics: Any,
        optimizer: Any,
        num_epochs: int,
        dataset_train: Any = None,
        dataset_valid: Any = None,
        mutator: DartsMutator | None = None,
        batch_size: int = 64,
        workers: int = 4,
        device: Any = None,
        log_frequency: int | None = None,
        callbacks: list[Any] | None = None,
        arc_learning_rate: float = 3.0e-4,
        unrolled: bool = False,
        **kwargs: Any,
    ) -> None:
        if mutator is not None:
            mutator.check_model(type(self).__name__, model)
        test_loader = None
        if dataset_train is not None or "train_data" not in kwargs:
            train, valid, test_loader = split_loaders(
                type(self).__name__,
                dataset_train,
                dataset_valid,
                batch_size,
                workers,
                arch_samples=lambda n: n - n // 2,
            )
            kwargs.update(train_data=train, valid_data=valid)
        common = self._nni_arguments(loss, metrics, optimizer, num_epochs, device, log_frequency, callbacks)
        super().__init__(model, arch_lr=arc_learning_rate, unrolled=unrolled, **common, **kwargs)
        self._nni_bind(mutator if mutator is not None else DartsMutator(model), test_loader)


__all__ = ["DartsMutator", "DartsTrainer"]
