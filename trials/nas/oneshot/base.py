"""What every one-shot trainer shares, so that a new algorithm is one file.

The base owns the training loop, the device (CPU or one GPU), mixed precision on GPU,
checkpoints and resume, callbacks, progress and the search log (:mod:`.searchlog`). An
algorithm decides how architectures are weighted or sampled and which one is exported.
"""

from __future__ import annotations

import abc
import contextlib
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trials.nas.oneshot.arguments import check_arguments
from trials.nas.oneshot.callbacks import Callback, ProgressPrinter
from trials.nas.oneshot.choices import (
    ChoiceGroup,
    apply_architecture,
    bind_choices,
    random_architecture,
    to_decisions,
)
from trials.nas.oneshot.graph import build_graph
from trials.nas.oneshot.lookahead import no_batch, one_pass, peek
from trials.searchlog import SearchLog
from trials.searchlog_files import GRAPH_FILE
from trials.searchspace import architecture_to_json, architecture_to_multi_hot

CHECKPOINT_FORMAT = 1

Batch = Any
LossFn = Callable[[Any, Any], torch.Tensor]
MetricsFn = Callable[[Any, Any], Mapping[str, float]]


class UnsupportedChoiceError(ValueError):
    """A trainer cannot search one of the model's choices; the message names it and says why."""


class MissingMetricError(ValueError):
    """``metrics`` does not return a metric the search reads; the message names it and what it returned."""


def cross_entropy(output: Any, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(_logits(output), target)


def accuracy(output: Any, target: torch.Tensor) -> dict[str, float]:
    return {"acc": (_logits(output).argmax(dim=1) == target).float().mean().item()}


def _logits(output: Any) -> torch.Tensor:
    """The main output of a model that also returns auxiliary ones."""
    return output[0] if isinstance(output, (tuple, list)) else output


def _batch_size(batch: Batch) -> int:
    target = batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else batch
    return len(target)


def cycle(data: Iterable[Batch], what: str = "the data") -> Iterator[Batch]:
    """Iterate ``data`` again and again (a validation set shorter than the training set);
    ``what`` names it in the error when a pass yields nothing."""
    while True:
        empty = True
        for batch in one_pass(data):
            empty = False
            yield batch
        if empty:
            raise no_batch(what)


class OneShotTrainer(abc.ABC):
    """Trains a super-net in this process and exports one architecture of its space.

    Contract for an algorithm (a subclass):

    - ``train_epoch(epoch)`` runs one epoch over ``self.train_data`` (and ``self.valid_data``
      if it needs it) and calls ``self.step_done(metrics)`` after every optimisation step.
      It applies its own decision to ``self.groups`` before every forward pass.
    - ``choice_weights()`` returns, per key, one float per candidate: the architecture
      weights or probabilities at this moment (what ``weights.jsonl`` records). Reading them
      changes nothing, since callbacks read them too; weights averaged over a window of samples
      (ENAS) end the window in ``weights_logged()``, which the base calls at every logging step.
    - ``select()`` returns the exported architecture as key -> candidate indices.
    - Optional: ``check_choice(group)`` returns why a choice cannot be searched (None if it
      can); the base raises ``UnsupportedChoiceError`` at construction. ``prepare_validation()``
      applies the decision that the epoch-end validation measures. ``algorithm_state()`` and
      ``load_algorithm_state(state)`` carry what the algorithm owns beyond the model and its
      optimizer into the checkpoint; on resume it is restored before the model and optimizer,
      so it may rebuild them. ``progress_note()`` adds words to the progress line.
      ``decision_groups()`` names the groups that ``select()``'s indices refer to (default
      ``self.groups``; P-DARTS searches a pruned network but exports in the full space).
      ``required_metrics()`` names the metrics the search reads from ``metrics`` (a reward);
      ``fit()`` checks them on one validation batch before training.

    Arguments (keyword-only after the model; a wrong name is refused with the right one, see
    :mod:`.arguments`) shared by every trainer: ``train_data`` and ``valid_data`` are iterables
    of ``(inputs, targets)`` batches that can be iterated once per epoch (a ``DataLoader``, a
    list, or a loader whose iterator is itself and restarts after each pass, like DALI's);
    ``optimizer`` trains the model's weights (default: SGD, lr 0.025, momentum 0.9, weight
    decay 3e-4, DARTS' setting) and ``lr_scheduler`` steps once per epoch; ``loss`` and
    ``metrics`` default to cross-entropy and top-1 accuracy (``acc``); ``device`` is ``cpu``
    or one CUDA device; ``mixed_precision`` (CUDA only) runs forward passes in bfloat16 (or
    float16 with loss scaling where bfloat16 is missing); ``grad_clip`` caps the weights'
    gradient norm; ``log_dir`` receives the search log; ``checkpoint`` (default
    ``log_dir/checkpoint.pt``) is written after every epoch and, with ``resume=True``,
    continues the same run; ``seed`` seeds torch and the trainer's own sampling.
    """

    algorithm = "one-shot"

    def __new__(cls, *args: Any, **kwargs: Any) -> OneShotTrainer:
        """Refuse unknown names and extra positional arguments, all at once, before any
        trainer's constructor does work (see :mod:`.arguments`)."""
        check_arguments(cls, args, kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        model: nn.Module,
        *,
        train_data: Iterable[Batch],
        valid_data: Iterable[Batch],
        num_epochs: int,
        optimizer: torch.optim.Optimizer | None = None,
        lr_scheduler: Any = None,
        loss: LossFn | None = None,
        metrics: MetricsFn | None = None,
        device: str | torch.device = "cpu",
        mixed_precision: bool = False,
        grad_clip: float | None = 5.0,
        log_dir: str | Path | None = None,
        log_every: int = 10,
        checkpoint: str | Path | None = None,
        resume: bool = False,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
        seed: int | None = None,
    ) -> None:
        name = type(self).__name__
        if num_epochs < 0:
            raise ValueError(f"{name}: num_epochs must be >= 0, got {num_epochs}")
        if log_every < 1:
            raise ValueError(f"{name}: log_every must be >= 1, got {log_every}")
        self.device = _device(name, device)
        if mixed_precision and self.device.type != "cuda":
            raise ValueError(f"{name}: mixed_precision needs a CUDA device, got device {str(self.device)!r}")
        self.model = model
        self.space, self.groups = bind_choices(model)
        self.refuse_unsupported(self.groups)
        self.model.to(self.device)
        self.train_data = train_data
        self.valid_data = valid_data
        self.num_epochs = num_epochs
        self.optimizer = optimizer or torch.optim.SGD(
            model.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4, foreach=True
        )
        self.lr_scheduler = lr_scheduler
        self.loss_fn: LossFn = loss or cross_entropy
        self.metrics_fn: MetricsFn = metrics or accuracy
        self.grad_clip = grad_clip
        self.autocast_cache = True  # off where a step is recorded as a CUDA graph
        self.amp_dtype: torch.dtype | None = None
        self.scaler: torch.amp.GradScaler | None = None
        if mixed_precision:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            if self.amp_dtype == torch.float16:
                self.scaler = torch.amp.GradScaler("cuda")
        self.log = SearchLog(log_dir) if log_dir is not None else None
        self.log_every = log_every
        if checkpoint is None and log_dir is not None:
            checkpoint = Path(log_dir) / "checkpoint.pt"
        self.checkpoint_path = Path(checkpoint) if checkpoint is not None else None
        self.resume = resume
        self.callbacks: list[Callback] = list(callbacks)
        if progress:
            self.callbacks.append(ProgressPrinter())
        self.rng = random.Random(seed)
        if seed is not None:
            torch.manual_seed(seed)
        self.epoch = 0  # epochs completed
        self.step = 0  # optimisation steps completed
        self._stop = False
        self._selection: tuple[int, dict[str, list[int]]] | None = None  # (step, select())
        # running sums and counts per metric name: a step reports what it measured (CDARTS' steps differ)
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._epoch_sums: dict[str, float] = {}
        self._epoch_counts: dict[str, int] = {}

    # -- the algorithm's part -----------------------------------------------------------------
    @abc.abstractmethod
    def train_epoch(self, epoch: int) -> None: ...

    @abc.abstractmethod
    def choice_weights(self) -> dict[str, list[float]]: ...

    @abc.abstractmethod
    def select(self) -> dict[str, list[int]]: ...

    def check_choice(self, group: ChoiceGroup) -> str | None:
        return None

    def refuse_unsupported(self, groups: Sequence[ChoiceGroup]) -> None:
        """Raise ``UnsupportedChoiceError`` naming every group ``check_choice`` refuses."""
        problems = [f"{g.describe()}: {why}" for g in groups if (why := self.check_choice(g)) is not None]
        if problems:
            raise UnsupportedChoiceError(
                f"{type(self).__name__} cannot search this model: {'; '.join(problems)} "
                "(see the support matrix in README.md)"
            )

    def weights_logged(self) -> None:  # noqa: B027 - optional hook
        """A logging step has passed (with or without a search log): a window of averaged weights ends."""

    def prepare_validation(self) -> None:  # noqa: B027 - optional hook
        """Apply the decision the epoch-end validation measures (default: leave it)."""

    def validate(self) -> dict[str, float]:
        """The ``val_*`` metrics at an epoch end."""
        self.prepare_validation()
        return {f"val_{k}": v for k, v in self.evaluate(self.valid_data).items()}

    def progress_note(self) -> str:
        """A few words the progress line adds about where the search is (P-DARTS: its stage)."""
        return ""

    def required_metrics(self) -> tuple[str, ...]:
        """Metric names the search reads from ``metrics`` (ENAS' and SPOS' ``reward``): ``fit()``
        checks them on one validation batch before training (default: none, no check)."""
        return ()

    def decision_groups(self) -> Sequence[ChoiceGroup]:
        """The groups whose candidate indices ``select()`` returns: ``self.groups``, unless the
        algorithm searches a pruned copy of the space (P-DARTS exports in the full space)."""
        return self.groups

    def algorithm_state(self) -> dict[str, Any]:
        return {}

    def load_algorithm_state(self, state: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what ``algorithm_state`` returned."""

    # -- running a search ----------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Run (or resume) the search, write the log, and return the exported architecture."""
        self._check_required_metrics()
        self._begin()
        for callback in self.callbacks:
            callback.on_search_begin(self)
        while self.epoch < self.num_epochs and not self._stop:
            epoch = self.epoch
            for callback in self.callbacks:
                callback.on_epoch_begin(self, epoch)
            self.model.train()
            self._epoch_sums, self._epoch_counts = {}, {}
            started, steps = time.perf_counter(), self.step
            self.train_epoch(epoch)
            if self.step == steps:  # every training batch is a step (the contract above)
                raise no_batch(f"{type(self).__name__}: epoch {epoch}: train_data")
            trained = time.perf_counter()
            if self.lr_scheduler is not None:
                self.lr_scheduler.step()
            self._flush_running(epoch)
            with torch.no_grad():
                validation = self.validate()
            if self.log is not None and validation:
                self.log.log_metrics(self.step, epoch, validation)
            summary = {f"train_{k}": v / self._epoch_counts[k] for k, v in self._epoch_sums.items()}
            summary.update(validation)
            summary.update(train_s=trained - started, val_s=time.perf_counter() - trained)
            self.epoch = epoch + 1
            self.save_checkpoint()
            for callback in self.callbacks:
                callback.on_epoch_end(self, epoch, summary)
        architecture = self.export()
        if self.log is not None:
            self.log.write_architecture(architecture)
            self.log.close()
        for callback in self.callbacks:
            callback.on_search_end(self, architecture)
        return architecture

    def export(self, multi_hot: bool = False) -> dict[str, Any]:
        """The chosen architecture in the full ``{"_value", "_idx"}`` form (``architecture.json``),
        or with ``multi_hot`` in NNI's form (one boolean per candidate); both apply alike.

        Selection may sample or search (ENAS, SPOS), so it runs once per state of the weights:
        asking again without training in between gives the same answer.
        """
        if self._selection is None or self._selection[0] != self.step:
            self._selection = (self.step, self.select())
        decisions = to_decisions(self.decision_groups(), self._selection[1])
        if multi_hot:
            return architecture_to_multi_hot(self.space, decisions)
        return architecture_to_json(decisions)

    def request_stop(self) -> None:
        """End the search after the current epoch (a callback may call it)."""
        self._stop = True

    def step_done(self, metrics: Mapping[str, float]) -> None:
        """Count one optimisation step; log every ``log_every`` steps; run the callbacks."""
        self.step += 1
        for name, value in metrics.items():
            self._sums[name] = self._sums.get(name, 0.0) + float(value)
            self._counts[name] = self._counts.get(name, 0) + 1
            self._epoch_sums[name] = self._epoch_sums.get(name, 0.0) + float(value)
            self._epoch_counts[name] = self._epoch_counts.get(name, 0) + 1
        if self.step % self.log_every == 0:
            self._flush_running(self.epoch)
        for callback in self.callbacks:
            callback.on_step_end(self, self.step, metrics)

    def _flush_running(self, epoch: int) -> None:
        if not self._sums:
            return
        if self.log is not None:
            self.log.log_weights(self.step, epoch, self.choice_weights())
            means = {f"train_{k}": v / self._counts[k] for k, v in self._sums.items()}
            self.log.log_metrics(self.step, epoch, means)
        self._sums, self._counts = {}, {}
        self.weights_logged()

    # -- helpers for algorithms ------------------------------------------------------------------
    def to_device(self, batch: Batch) -> Batch:
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, (list, tuple)):
            return type(batch)(self.to_device(item) for item in batch)
        if isinstance(batch, Mapping):
            return {key: self.to_device(value) for key, value in batch.items()}
        return batch

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed precision for a forward pass when it is on, else nothing."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype, cache_enabled=self.autocast_cache)

    def forward_loss(
        self, inputs: Any, targets: Any, model: nn.Module | None = None
    ) -> tuple[Any, torch.Tensor]:
        """The output and loss of ``model`` (default: the super-net) on one batch."""
        with self.autocast():
            output = (model if model is not None else self.model)(inputs)
            loss = self.loss_fn(output, targets)
        return output, loss

    def optimize(
        self,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        clip: float | None = None,
    ) -> None:
        """Zero the gradients, back-propagate ``loss`` (scaled for float16), clip, and step."""
        optimizer.zero_grad(set_to_none=True)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(optimizer)
            if clip is not None:
                nn.utils.clip_grad_norm_(params, clip, foreach=True)
            self.scaler.step(optimizer)
            self.scaler.update()
            return
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(params, clip, foreach=True)
        optimizer.step()

    def step_metrics(self, output: Any, targets: Any, loss: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            return {
                "loss": loss.item(),
                **self.metrics_fn(output.float() if torch.is_tensor(output) else output, targets),
            }

    @torch.no_grad()
    def evaluate(
        self,
        data: Iterable[Batch],
        max_batches: int | None = None,
        batch_statistics: bool = False,
        model: nn.Module | None = None,
    ) -> dict[str, float]:
        """Mean loss and metrics of ``model`` (default: the super-net) over ``data`` with the
        current decision applied.

        ``batch_statistics`` normalises with each batch's own statistics (leaving the running
        ones untouched), which suits weights shared by many architectures.
        """
        model = model if model is not None else self.model
        model.eval()
        sums: dict[str, float] = {}
        seen = 0
        yielded = False
        with _batch_statistics(model) if batch_statistics else contextlib.nullcontext():
            for index, batch in enumerate(one_pass(data)):
                yielded = True
                if max_batches is not None and index >= max_batches:
                    break
                inputs, targets = self.to_device(batch)
                output, loss = self.forward_loss(inputs, targets, model)
                n = _batch_size(batch)
                for name, value in self.step_metrics(output, targets, loss).items():
                    sums[name] = sums.get(name, 0.0) + value * n
                seen += n
        model.train()
        if not yielded:
            raise no_batch(f"{type(self).__name__}: {self._data_name(data)}")
        return {name: value / max(seen, 1) for name, value in sums.items()}

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Write everything the run needs to continue (atomically) to the checkpoint path."""
        if self.checkpoint_path is None:
            return
        state = {
            "format": CHECKPOINT_FORMAT,
            "trainer": type(self).__name__,
            "space": self.space.to_json(),
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict() if self.lr_scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "algorithm": self.algorithm_state(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
                "trainer": list(self.rng.getstate()),
            },
            "log": self.log.positions() if self.log is not None else None,
        }
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_path.with_name(self.checkpoint_path.name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path)

    def _begin(self) -> None:
        """Resume from the checkpoint when asked and present; otherwise start a fresh log."""
        resuming = self.resume and self.checkpoint_path is not None and self.checkpoint_path.exists()
        if resuming:
            self._load_checkpoint()
        elif self.log is not None:
            self.log.truncate({})
            self.log.write_space(self.space.to_json())
        if self.log is not None and not (self.log.directory / GRAPH_FILE).exists():
            self.log.write_graph(self._graph())

    def _load_checkpoint(self) -> None:
        assert self.checkpoint_path is not None
        name = type(self).__name__
        state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)
        if state.get("format") != CHECKPOINT_FORMAT or state.get("trainer") != name:
            raise ValueError(
                f"{self.checkpoint_path}: a checkpoint of {state.get('trainer')!r} (format {state.get('format')}), "
                f"not of {name}; give another checkpoint path or resume=False"
            )
        if state["space"] != self.space.to_json():
            raise ValueError(
                f"{self.checkpoint_path}: the checkpoint's search space differs from this model's; "
                "resume with the same model, or start afresh with resume=False"
            )
        # the algorithm's state first: it may rebuild the model and its optimizer (P-DARTS' stages)
        self.load_algorithm_state(state["algorithm"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.lr_scheduler is not None and state["lr_scheduler"] is not None:
            self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = state["epoch"], state["step"]
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if state["rng"]["cuda"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        version, internal, gauss = state["rng"]["trainer"]
        self.rng.setstate((version, tuple(internal), gauss))
        if self.log is not None:
            self.log.truncate(state["log"] or {})

    def _data_name(self, data: Iterable[Batch]) -> str:
        if data is self.valid_data:
            return "valid_data"
        return "train_data" if data is self.train_data else "the data given to evaluate()"

    def _check_required_metrics(self) -> None:
        """Raise ``MissingMetricError`` before training when ``metrics`` lacks a key the search
        reads, instead of a KeyError after an epoch: one validation batch, one fixed architecture,
        no gradients, eval mode; random generators, buffers (BatchNorm statistics) and modes are
        left as they were, so a resumed run stays bit-for-bit the uninterrupted one."""
        required = tuple(self.required_metrics())
        if not required:
            return
        name = type(self).__name__
        modes = [(m, m.training) for m in self.model.modules()]
        buffers = [(b, b.detach().clone()) for b in self.model.buffers()]
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), torch.no_grad():
            batch, self.valid_data = peek(self.valid_data, f"{name}: valid_data")
            apply_architecture(self.groups, random_architecture(self.groups, random.Random(0)), self.device)
            self.model.eval()
            try:
                inputs, targets = self.to_device(batch)
                output, loss = self.forward_loss(inputs, targets)
                returned = dict(self.step_metrics(output, targets, loss))
            finally:
                for module, training in modes:
                    module.train(training)
                for buffer, saved in buffers:
                    buffer.copy_(saved)
        missing = [key for key in required if key not in returned]
        if missing:
            raise MissingMetricError(
                f"{name}: the search reads the metric {', '.join(map(repr, missing))}, but metrics(output, "
                f"target) returned only {', '.join(map(repr, returned))} on a validation batch; return it "
                "from metrics, or name one it returns (reward=...)"
            )

    def _graph(self) -> dict[str, Any]:
        """The super-net's graph from two inputs of the first batch (handed back to training by a
        loader that iterates itself); the RNG is left as it was."""
        rng_state = torch.get_rng_state()
        try:
            batch, self.train_data = peek(self.train_data, f"{type(self).__name__}: train_data")
        finally:
            torch.set_rng_state(rng_state)
        inputs = self.to_device(batch[0] if isinstance(batch, (tuple, list)) else batch)
        if isinstance(inputs, torch.Tensor):
            inputs = inputs[:2]
        return build_graph(self.model, self.groups, inputs)


@contextlib.contextmanager
def _batch_statistics(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers use the batch's statistics and leave their running ones as they were."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [
        (m.training, m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
        for m in norms
    ]
    for m in norms:
        m.train()
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (training, momentum, tracked) in zip(norms, saved, strict=True):
            m.train(training)
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def _device(owner: str, device: str | torch.device) -> torch.device:
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"{owner}: device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"{owner}: device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{owner}: device {str(resolved)!r} asked for, but CUDA is not available here")
    return resolved
