"""``nni.algorithms.nas.pytorch.enas`` (before v1.9 ``nni.nas.pytorch.enas``): NNI's ENAS API over
nasctl's :class:`trials.nas.oneshot.EnasTrainer`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from trials.nas.nni.mutator import Mutator
from trials.nas.nni.trainer import FixedSteps, Trainer, split_loaders
from trials.nas.oneshot import enas
from trials.nas.oneshot.choices import apply_architecture

#: The metric name under which ``reward_function``'s value reaches nasctl's trainer.
REWARD = "reward"


class EnasMutator(Mutator):
    """NNI's ENAS controller settings, handed to the trainer that takes this mutator.

    ``lstm_size`` is the controller's hidden size; ``tanh_constant``, ``skip_target``,
    ``temperature`` and ``cell_exit_extra_step`` act as in NNI. Values nasctl's controller does
    not have are refused by name: ``lstm_num_layers`` other than 1, ``entropy_reduction`` other
    than ``"sum"``. ``branch_bias`` is accepted and not used (nasctl's controller has no
    per-candidate bias).
    """

    def __init__(
        self,
        model: nn.Module,
        lstm_size: int = 64,
        lstm_num_layers: int = 1,
        tanh_constant: float | None = 1.5,
        cell_exit_extra_step: bool = False,
        skip_target: float = 0.4,
        temperature: float | None = None,
        branch_bias: float = 0.25,
        entropy_reduction: str = "sum",
    ) -> None:
        super().__init__(model)
        if lstm_num_layers != 1:
            raise ValueError(
                f"EnasMutator: lstm_num_layers must be 1 (nasctl's controller has one LSTM layer), got {lstm_num_layers}"
            )
        if entropy_reduction != "sum":
            raise ValueError(
                f"EnasMutator: entropy_reduction must be 'sum' (nasctl sums the entropies), got {entropy_reduction!r}"
            )
        self.lstm_size = lstm_size
        self.tanh_constant = tanh_constant
        self.cell_exit_extra_step = cell_exit_extra_step
        self.skip_target = skip_target
        self.temperature = temperature
        self.branch_bias = branch_bias

    def controller_arguments(self) -> dict[str, Any]:
        return {
            "controller_hidden": self.lstm_size,
            "tanh_constant": self.tanh_constant,
            "skip_target": self.skip_target,
            "temperature": self.temperature,
            "cell_exit_extra_step": self.cell_exit_extra_step,
        }


def _with_reward(
    metrics: Callable[[Any, Any], Any], reward_function: Callable[[Any, Any], Any]
) -> Callable[[Any, Any], dict[str, float]]:
    def both(output: Any, target: Any) -> dict[str, float]:
        values = dict(metrics(output, target))
        values[REWARD] = float(reward_function(output, target))
        return values

    return both


class EnasTrainer(Trainer, enas.EnasTrainer):
    """NNI's ``EnasTrainer``. ``dataset_train`` is split 90/10: the first nine tenths train the
    shared weights (``child_steps`` batches per epoch, the loader continuing across epochs),
    the last tenth the controller (``mutator_steps`` updates of ``mutator_steps_aggregate``
    architectures per epoch, each scored by ``reward_function(output, target)`` on one batch).
    ``dataset_valid`` is for ``validate()``, which scores ``test_arc_per_epoch`` sampled
    architectures and reports their mean. A model returning ``(logits, aux_logits)`` trains on
    ``loss(logits) + aux_weight * loss(aux_logits)``. The export is one architecture sampled by
    the controller, as NNI's. nasctl's own keyword arguments pass through."""

    def __init__(
        self,
        model: nn.Module,
        loss: Any,
        metrics: Any,
        reward_function: Any,
        optimizer: Any,
        num_epochs: int,
        dataset_train: Any = None,
        dataset_valid: Any = None,
        mutator: EnasMutator | None = None,
        batch_size: int = 64,
        workers: int = 4,
        device: Any = None,
        log_frequency: int | None = None,
        callbacks: list[Any] | None = None,
        entropy_weight: float = 1e-4,
        skip_weight: float = 0.8,
        baseline_decay: float = 0.999,
        child_steps: int = 500,
        mutator_lr: float = 3.5e-4,
        mutator_steps_aggregate: int = 20,
        mutator_steps: int = 50,
        aux_weight: float = 0.4,
        test_arc_per_epoch: int = 1,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        if mutator is None:
            mutator = EnasMutator(model)
        mutator.check_model(name, model)
        if not callable(reward_function):
            raise TypeError(f"{name}: reward_function must be a function (output, target) -> float")
        if not isinstance(test_arc_per_epoch, int) or test_arc_per_epoch < 1:
            raise ValueError(
                f"{name}: test_arc_per_epoch must be an integer >= 1, got {test_arc_per_epoch!r}"
            )
        test_loader = None
        if dataset_train is not None or "train_data" not in kwargs:
            train, valid, test_loader = split_loaders(
                name, dataset_train, dataset_valid, batch_size, workers, arch_samples=lambda n: n // 10
            )
            kwargs.update(train_data=FixedSteps(train, child_steps), valid_data=valid)
        common = self._nni_arguments(
            loss,
            _with_reward(metrics, reward_function),
            optimizer,
            num_epochs,
            device,
            log_frequency,
            callbacks,
        )
        kwargs.setdefault("export_samples", 1)
        super().__init__(
            model,
            controller_lr=mutator_lr,
            controller_steps=mutator_steps * mutator_steps_aggregate,
            controller_aggregate=mutator_steps_aggregate,
            entropy_weight=entropy_weight,
            skip_weight=skip_weight,
            baseline_decay=baseline_decay,
            aux_weight=aux_weight,
            reward=REWARD,
            **mutator.controller_arguments(),
            **common,
            **kwargs,
        )
        self.test_arc_per_epoch = test_arc_per_epoch
        self._nni_bind(mutator, test_loader)

    def prepare_validation(self) -> None:
        """A sampled architecture, as NNI validated (nasctl's ENAS validates the greedy one)."""
        with torch.no_grad():
            apply_architecture(self.groups, self.controller.sample().architecture, self.device)

    def validate(self) -> dict[str, float]:
        runs = [Trainer.validate(self) for _ in range(self.test_arc_per_epoch)]
        if not runs[0]:
            return {}
        mean = {
            key: sum(run[key] for run in runs if key in run) / sum(key in run for run in runs)
            for key in runs[0]
        }
        return mean


__all__ = ["EnasMutator", "EnasTrainer"]
