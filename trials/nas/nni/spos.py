"""``nni.algorithms.nas.pytorch.spos`` (before v1.9 ``nni.nas.pytorch.spos``): NNI's SPOS supernet
training over nasctl's :class:`trials.nas.oneshot.SposTrainer`.

NNI splits SPOS in two: this supernet training, then a search run as a classic-NAS experiment
(its ``SPOSEvolution`` tuner and a tester script). nasctl's ``SposTrainer`` does both in one
process; the NNI-named trainer here does the first part only, as NNI's did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from trials.nas.nni.mutator import Mutator
from trials.nas.nni.trainer import Trainer
from trials.nas.oneshot import spos
from trials.nas.oneshot.choices import bind_choices


class SPOSSupernetTrainingMutator(Mutator):
    """NNI's supernet sampler: with ``flops_lb`` and ``flops_ub``, each training path is drawn
    uniformly over ``flops_bin_num`` equal FLOPs bins between them (up to
    ``flops_sample_timeout`` tries per path); ``flops_func(candidate)`` gets, as in NNI, one
    boolean one-hot tensor per key. Without the bounds, paths are uniform."""

    def __init__(
        self,
        model: nn.Module,
        flops_func: Callable[[dict[str, torch.Tensor]], float] | None = None,
        flops_lb: float | None = None,
        flops_ub: float | None = None,
        flops_bin_num: int = 7,
        flops_sample_timeout: int = 500,
    ) -> None:
        super().__init__(model)
        if (flops_lb is None) != (flops_ub is None):
            raise ValueError("SPOSSupernetTrainingMutator: give both flops_lb and flops_ub, or neither")
        self.flops_func = flops_func
        self.flops_lb = flops_lb
        self.flops_ub = flops_ub
        self.flops_bin_num = flops_bin_num
        self.flops_sample_timeout = flops_sample_timeout

    def sampler_arguments(self) -> dict[str, Any]:
        """``SposTrainer``'s arguments for this band (none without bounds)."""
        if self.flops_lb is None or self.flops_ub is None:
            return {}
        return {
            "train_flops": (self.flops_lb, self.flops_ub),
            "flops_fn": _one_hot_flops(self.model, self.flops_func) if self.flops_func is not None else None,
            "flops_bins": self.flops_bin_num,
            "sample_timeout": self.flops_sample_timeout,
        }


def _one_hot_flops(
    model: nn.Module, flops_func: Callable[[dict[str, torch.Tensor]], float]
) -> Callable[[dict[str, list[int]]], float]:
    """``flops_func`` over NNI's candidate form (key -> one-hot bool tensor) as a function of
    nasctl's (key -> candidate indices)."""
    sizes = {group.key: len(group) for group in bind_choices(model)[1]}

    def flops(architecture: dict[str, list[int]]) -> float:
        candidate = {}
        for key, indices in architecture.items():
            mask = torch.zeros(sizes[key], dtype=torch.bool)
            mask[list(indices)] = True
            candidate[key] = mask
        return float(flops_func(candidate))

    return flops


class SPOSSupernetTrainer(Trainer, spos.SposTrainer):
    """NNI's ``SPOSSupernetTrainer``: trains the supernet on one sampled path per batch from
    ``train_loader`` (loaders, not datasets, as in NNI; ``batch_size`` and ``workers`` are kept
    for NNI's signature and unused). ``validate()`` scores one sampled path on
    ``valid_loader``. Its export is one sampled path (there is no search here); nasctl's own
    ``SposTrainer`` runs the evolution too."""

    def __init__(
        self,
        model: nn.Module,
        loss: Any,
        metrics: Any,
        optimizer: Any,
        num_epochs: int,
        train_loader: Any,
        valid_loader: Any,
        mutator: SPOSSupernetTrainingMutator | None = None,
        batch_size: int = 64,
        workers: int = 4,
        device: Any = None,
        log_frequency: int | None = None,
        callbacks: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if mutator is None:
            mutator = SPOSSupernetTrainingMutator(model)
        mutator.check_model(type(self).__name__, model)
        self.batch_size, self.workers = batch_size, workers
        common = self._nni_arguments(loss, metrics, optimizer, num_epochs, device, log_frequency, callbacks)
        super().__init__(
            model,
            train_data=train_loader,
            valid_data=valid_loader,
            population_size=2,
            generations=0,
            parents=1,
            **mutator.sampler_arguments(),
            **common,
            **kwargs,
        )
        self._nni_bind(mutator, valid_loader)

    def required_metrics(self) -> tuple[str, ...]:
        return ()  # no search, so no reward to read

    def select(self) -> dict[str, list[int]]:
        return self.sample_path(count_miss=False)  # a training path: inside the FLOPs band when one is set


__all__ = ["SPOSSupernetTrainer", "SPOSSupernetTrainingMutator"]
