"""CDARTS (Yu et al., "Cyclic Differentiable Architecture Search"): DARTS with its evaluation network in the loop.

Two networks share one search space (the same keys and candidates): the *search network*, a
DARTS super-net that mixes every candidate with its architecture weights (say 8 cells), and
the *evaluation network*, deeper (say 20 cells), that runs the search network's current
export, a discrete architecture. After ``warmup_epochs`` that train only the search network's
weights (the mixture's architecture weights held still), every epoch is one turn of the cycle:

1. the search network's export (DARTS' rule, :meth:`DartsTrainer.select`) is applied to the
   evaluation network, whose weights then train on the training data (cross-entropy);
2. joint steps over (training batch, validation batch) pairs. On the validation batch::

       loss = CE(search) + CE(eval) + distill_weight * T^2 * KL(softmax(eval / T) || softmax(search / T))
              + l1(epoch) * sum |alpha| over the parameter-free candidates

   updates the evaluation network's weights and the architecture weights (the KL, averaged
   over the batch, reaches both networks: the evaluation network distils into the search
   network and is pulled towards it in turn). Then the training batch updates the search
   network's weights (cross-entropy, architecture weights held still), as in DARTS.

The L1 term is the paper's guard against parameter-free operations crowding out the others:
it covers the candidates whose module holds no trainable parameter (pooling without affine
BatchNorm, an identity skip, a zero), on the *raw* architecture weights, ``|alpha|``, not
their softmax, as the reference implementations do (Cream's ``add_alpha_regularization``
in L1 mode, NNI's regularised mutator). Its coefficient falls linearly from ``l1_weight`` at
the first epoch after the warm-up to 0 at epoch ``warmup + (num_epochs - warmup) *
l1_fraction``, and stays 0 from there on.

Defaults, from the authors' code (microsoft/Cream's CDARTS, and NNI's CDARTS example with its
CIFAR-10 search script, 32 epochs): ``warmup_epochs=2``, ``temperature=2`` (``loss_T``),
``distill_weight=1`` (``loss_alpha``), ``l1_weight=5`` (``regular_coeff``), ``l1_fraction=0.2``
(``regular_ratio`` of that script; Cream's own default is 0.5). The architecture weights keep
DARTS' Adam (``arch_*``). Unlike those implementations, this one needs no apex and no GPU,
runs in one process by default (on the CPU or one GPU, with the base's mixed precision), uses
the batch-averaged KL (NNI's default KL also averages over the classes, which shrinks the
term by the number of classes), and distils the networks' final logits (the reference adds
auxiliary heads to its own networks, which a user can do here by returning them as logits).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trials.nas.mutables import LayerChoice
from trials.nas.oneshot.base import _device, _logits, cycle
from trials.nas.oneshot.choices import ChoiceGroup, apply_architecture, bind_choices, first_difference
from trials.nas.oneshot.darts import DartsTrainer
from trials.nas.oneshot.distributed import Processes, average_gradients, broadcast, join, leave, wrap


def distillation_loss(
    search_logits: torch.Tensor, eval_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T^2 * KL(softmax(eval / T) || softmax(search / T))``, averaged over the batch (``batchmean``).

    The ``T^2`` keeps the gradients' scale as ``T`` changes (Hinton et al.); computed in float32.
    """
    log_search = F.log_softmax(search_logits.float() / temperature, dim=1)
    log_eval = F.log_softmax(eval_logits.float() / temperature, dim=1)
    kl = F.kl_div(log_search, log_eval, reduction="batchmean", log_target=True)
    return temperature * temperature * kl


def parameter_free_candidates(group: ChoiceGroup) -> list[int]:
    """The candidates of a layer choice that hold no trainable parameter in any module of the group."""
    if not group.is_layer:
        return []
    layers = [module for module in group.modules if isinstance(module, LayerChoice)]
    return [
        index
        for index in range(len(group))
        if not any(p.requires_grad for layer in layers for p in layer[index].parameters())
    ]


class CdartsTrainer(DartsTrainer):
    """CDARTS; ``model`` is the search network, ``eval_model`` the evaluation network.

    Arguments beyond DARTS' (see :class:`DartsTrainer` and :class:`OneShotTrainer`; ``unrolled``
    does not apply, the architecture step being the joint one):

    ``eval_model`` must hold the search network's choices, key for key, with the same
    candidates (build it with ``affine=True`` where the zoo offers it, as for retraining).
    ``eval_optimizer`` trains its weights (default: SGD, lr 0.025, momentum 0.9, weight decay
    3e-4) and ``eval_lr_scheduler`` steps once per epoch, like ``lr_scheduler``.
    ``warmup_epochs`` train only the search network's weights; ``temperature`` and
    ``distill_weight`` shape the distillation term; ``l1_weight`` and ``l1_fraction`` the L1
    term's schedule (module docstring, with the defaults and where they come from).

    Metrics: the joint steps report the search network's ``loss``/``acc`` on the training
    batch, ``distill_loss`` (``T^2 * KL``, before ``distill_weight``) and ``l1_coefficient`` (the
    epoch's L1 coefficient); the evaluation network's steps report ``eval_loss``/``eval_acc``;
    validation adds ``val_eval_loss``/``val_eval_acc``, the evaluation network with the current
    export. ``architectures.jsonl`` gets the export at every epoch end.

    ``distributed=True`` runs the search data-parallel in processes started by ``torchrun
    --nproc_per_node=N script.py`` (:mod:`.distributed`): one GPU per process over NCCL
    (``cuda:LOCAL_RANK``), or CPU processes over gloo (to try it without GPUs). Both networks'
    weights are averaged by ``DistributedDataParallel``, the architecture weights' gradients by
    an all-reduce, and every process starts from rank 0's weights and architecture weights.
    Each process iterates its own ``train_data`` and ``valid_data``: give each a ``DataLoader``
    with a ``DistributedSampler`` (the trainer calls its ``set_epoch``), so that every process
    sees its share and all see the same number of batches. The trainer starts the process
    group unless the script did, so build the samplers with ``num_replicas=WORLD_SIZE`` and
    ``rank=RANK`` from the environment, or call ``torch.distributed.init_process_group()``
    first. Only rank 0 writes the search log, the checkpoint and the progress lines (every
    process reads the checkpoint on resume, so it must be on a shared path); the metrics it
    logs are measured on its own batches. At every epoch end each process takes rank 0's
    BatchNorm statistics, so all validate, export and resume from the same state.
    """

    algorithm = "CDARTS"

    def __init__(
        self,
        model: nn.Module,
        eval_model: nn.Module,
        *,
        eval_optimizer: torch.optim.Optimizer | None = None,
        eval_lr_scheduler: Any = None,
        warmup_epochs: int = 2,
        temperature: float = 2.0,
        distill_weight: float = 1.0,
        l1_weight: float = 5.0,
        l1_fraction: float = 0.2,
        distributed: bool = False,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        _check_arguments(
            name, model, eval_model, warmup_epochs, temperature, distill_weight, l1_weight, l1_fraction
        )
        if kwargs.get("unrolled"):
            raise ValueError(
                f"{name}: unrolled=True does not apply: CDARTS' architecture step is the joint step on the "
                "validation batch (first order); leave unrolled out"
            )
        self.processes: Processes | None = None
        if distributed:
            # the base's rule and message for the device come first (no CUDA here: that error, not NCCL's)
            self.processes = join(name, _device(name, kwargs.get("device", "cpu")))
            kwargs["device"] = self.processes.device
            if not self.processes.is_main:
                log_dir = kwargs.pop("log_dir", None)
                if kwargs.get("checkpoint") is None and log_dir is not None:
                    kwargs["checkpoint"] = Path(log_dir) / "checkpoint.pt"  # read on resume, never written
                kwargs["progress"] = False
        try:
            super().__init__(model, warmup_epochs=warmup_epochs, **kwargs)
            self.eval_model = eval_model
            _, self.eval_groups = bind_choices(eval_model)
            _check_same_choices(name, self.groups, self.eval_groups)
        except BaseException:
            if self.processes is not None:
                leave(self.processes)
            raise
        self.eval_model.to(self.device)
        self.eval_optimizer = eval_optimizer or torch.optim.SGD(
            eval_model.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4, foreach=True
        )
        self.eval_lr_scheduler = eval_lr_scheduler
        self.temperature = temperature
        self.distill_weight = distill_weight
        self.l1_weight = l1_weight
        self.l1_fraction = l1_fraction
        self.free_candidates = {group.key: parameter_free_candidates(group) for group in self.groups}
        # what the training steps call: the networks themselves, or their data-parallel wrappers
        self.search_net: nn.Module = self.model
        self.eval_net: nn.Module = self.eval_model
        if self.processes is not None:
            broadcast(self.alphas.parameters())
            self.search_net = wrap(self.model, self.processes)
            self.eval_net = wrap(self.eval_model, self.processes)

    # -- the schedule -----------------------------------------------------------------------------
    def l1_coefficient(self, epoch: int) -> float:
        """The L1 term's weight in ``epoch``: ``l1_weight`` falling linearly to 0 (module docstring)."""
        if not self.architecture_learns(epoch):
            return 0.0
        span = (self.num_epochs - self.warmup_epochs) * self.l1_fraction
        done = epoch - self.warmup_epochs
        if done >= span:
            return 0.0
        return self.l1_weight * (1.0 - done / span)

    def l1_norm(self) -> torch.Tensor:
        """``sum |alpha|`` over the parameter-free candidates of every layer choice."""
        total = torch.zeros((), device=self.device)
        for group, alpha in zip(self.groups, self.alphas, strict=True):
            free = self.free_candidates[group.key]
            if free:
                total = total + alpha[free].abs().sum()
        return total

    # -- training -----------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> None:
        for data in (self.train_data, self.valid_data):
            _set_sampler_epoch(data, epoch)
        if self.architecture_learns(epoch):
            self._train_eval_network()
            self._joint_steps(epoch)
        else:
            self._train_search_weights()
        if self.processes is not None:
            # DDP hands out rank 0's buffers at each of its forward passes; after the last one (and the
            # joint steps' search network, outside DDP) each rank updated its own BatchNorm statistics
            broadcast([*self.model.buffers(), *self.eval_model.buffers()])
        if self.eval_lr_scheduler is not None:
            with warnings.catch_warnings():  # in the warm-up the evaluation network has not stepped yet
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
                self.eval_lr_scheduler.step()
        if self.log is not None:
            self.log.log_architecture(self.step, epoch, self.export())

    def _search_weight_step(self, inputs: Any, targets: Any) -> dict[str, float]:
        """One step of the search network's weights on a training batch (architecture held still)."""
        self.apply_mixture(detach=True)
        output, loss = self.forward_loss(inputs, targets, self.search_net)
        self.optimize(loss, self.optimizer, clip=self.grad_clip)
        return self.step_metrics(output, targets, loss)

    def _train_search_weights(self) -> None:
        for batch in self.train_data:
            inputs, targets = self.to_device(batch)
            self.step_done(self._search_weight_step(inputs, targets))

    def _train_eval_network(self) -> None:
        self.apply_to_eval_network()
        self.eval_model.train()
        for batch in self.train_data:
            inputs, targets = self.to_device(batch)
            output, loss = self.forward_loss(inputs, targets, self.eval_net)
            self.optimize(loss, self.eval_optimizer, clip=self.grad_clip)
            self.step_done({f"eval_{k}": v for k, v in self.step_metrics(output, targets, loss).items()})

    def _joint_steps(self, epoch: int) -> None:
        coefficient = self.l1_coefficient(epoch)
        valid = cycle(self.valid_data, f"{type(self).__name__}: valid_data")
        for batch in self.train_data:
            x_train, y_train = self.to_device(batch)
            x_valid, y_valid = self.to_device(next(valid))
            self.apply_mixture()
            # the search network outside its DDP wrapper: only its architecture weights learn here,
            # and their gradients are averaged by hand
            with self.autocast():
                search_output = self.model(x_valid)
                eval_output = self.eval_net(x_valid)
                loss = self.loss_fn(search_output, y_valid) + self.loss_fn(eval_output, y_valid)
            distill = distillation_loss(_logits(search_output), _logits(eval_output), self.temperature)
            loss = loss + self.distill_weight * distill
            if coefficient:
                loss = loss + coefficient * self.l1_norm()
            self._joint_update(loss)
            metrics = self._search_weight_step(x_train, y_train)
            self.step_done({**metrics, "distill_loss": distill.item(), "l1_coefficient": coefficient})

    def _joint_update(self, loss: torch.Tensor) -> None:
        """One step of the evaluation network's weights and the architecture weights on ``loss``."""
        optimizers = (self.eval_optimizer, self.arch_optimizer)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        if self.processes is not None:
            average_gradients(list(self.alphas), self.processes)
        if self.scaler is not None:
            for optimizer in optimizers:
                self.scaler.unscale_(optimizer)
        if self.grad_clip is not None:
            params = [p for group in self.eval_optimizer.param_groups for p in group["params"]]
            nn.utils.clip_grad_norm_(params, self.grad_clip, foreach=True)
        for optimizer in optimizers:
            if self.scaler is not None:
                self.scaler.step(optimizer)
            else:
                optimizer.step()
        if self.scaler is not None:
            self.scaler.update()

    def apply_to_eval_network(self) -> None:
        """Run the search network's current export on the evaluation network."""
        with torch.no_grad():
            apply_architecture(self.eval_groups, self.select(), self.device)

    # -- validation ---------------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """The super-net's ``val_*`` and the evaluation network's ``val_eval_*`` (current export)."""
        metrics = super().validate()
        self.apply_to_eval_network()
        metrics.update(
            {f"val_eval_{k}": v for k, v in self.evaluate(self.valid_data, model=self.eval_model).items()}
        )
        return metrics

    # -- running, checkpoints -----------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        try:
            return super().fit()
        finally:
            if self.processes is not None:
                leave(self.processes)

    def save_checkpoint(self) -> None:
        if self.processes is None or self.processes.is_main:
            super().save_checkpoint()

    def algorithm_state(self) -> dict[str, Any]:
        scheduler = self.eval_lr_scheduler
        return {
            **super().algorithm_state(),
            "eval_model": self.eval_model.state_dict(),
            "eval_optimizer": self.eval_optimizer.state_dict(),
            "eval_lr_scheduler": scheduler.state_dict() if scheduler is not None else None,
        }

    def load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        super().load_algorithm_state(state)
        self.eval_model.load_state_dict(state["eval_model"])
        self.eval_optimizer.load_state_dict(state["eval_optimizer"])
        if self.eval_lr_scheduler is not None and state["eval_lr_scheduler"] is not None:
            self.eval_lr_scheduler.load_state_dict(state["eval_lr_scheduler"])


def _check_arguments(
    owner: str,
    model: nn.Module,
    eval_model: nn.Module,
    warmup_epochs: int,
    temperature: float,
    distill_weight: float,
    l1_weight: float,
    l1_fraction: float,
) -> None:
    if eval_model is model:
        raise ValueError(
            f"{owner}: eval_model must be a network of its own (the deeper evaluation network), not model itself"
        )
    if warmup_epochs < 0:
        raise ValueError(f"{owner}: warmup_epochs must be >= 0, got {warmup_epochs}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"{owner}: temperature must be a number > 0, got {temperature}")
    for label, value in (("distill_weight", distill_weight), ("l1_weight", l1_weight)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{owner}: {label} must be a number >= 0, got {value}")
    if not 0 <= l1_fraction <= 1:
        raise ValueError(
            f"{owner}: l1_fraction (the share of the post-warm-up epochs over which the L1 term fades out) "
            f"must be between 0 and 1, got {l1_fraction}"
        )


def _check_same_choices(
    owner: str, groups: Sequence[ChoiceGroup], eval_groups: Sequence[ChoiceGroup]
) -> None:
    """The evaluation network must hold the search network's choices: same keys, same candidates."""
    difference = first_difference([g.spec for g in groups], [g.spec for g in eval_groups])
    if difference is None:
        return
    key = difference.key
    if difference.got is None:
        raise ValueError(
            f"{owner}: eval_model has no choice {key!r}, which model has; the evaluation network must "
            "carry the search network's keys and candidates"
        )
    if difference.expected is None:
        raise ValueError(
            f"{owner}: eval_model has a choice {key!r} that model lacks; the networks must share keys"
        )
    search = next(g for g in groups if g.key == key)
    evaluation = next(g for g in eval_groups if g.key == key)
    raise ValueError(
        f"{owner}: choice {key!r} differs between the networks: model has {_describe(search)}, "
        f"eval_model {_describe(evaluation)}"
    )


def _describe(group: ChoiceGroup) -> str:
    if group.is_layer:
        return f"{group.describe()} of ({', '.join(group.candidates)})"
    kept = group.n_chosen if group.n_chosen is not None else "any number"
    return f"{group.describe()} of ({', '.join(group.candidates)}), keeping {kept}"


def _set_sampler_epoch(data: Any, epoch: int) -> None:
    """Reshuffle a ``DistributedSampler`` (or any sampler with ``set_epoch``) for ``epoch``."""
    set_epoch = getattr(getattr(data, "sampler", None), "set_epoch", None)
    if callable(set_epoch):
        set_epoch(epoch)
