"""DARTS (Liu et al. 2019): differentiable architecture search.

Every choice gets architecture weights ``alpha``, one per candidate. A layer choice runs all
candidates and mixes their outputs with ``softmax(alpha)``; an input choice that keeps ``k``
inputs mixes them with ``k * softmax(alpha)``, and one that keeps any number gates each input
with ``sigmoid(alpha)``. Training alternates two steps per batch (bilevel optimisation):
``alpha`` descends the validation loss (first order: at the current weights; second order:
at the weights after one virtual SGD step, with the paper's finite-difference
Hessian-vector product), then the weights descend the training loss (gradient norm clipped).

Export: a layer choice keeps its strongest candidate other than ``none``/``zero``; an input
choice with ``n_chosen=k`` keeps the ``k`` inputs with the highest weight, each input's weight
multiplied by the strength of the layer choice it comes from (its strongest non-zero
candidate) when it names one, which is the paper's "top-k strongest incoming edges" rule; an
input choice with ``n_chosen=None`` keeps the inputs whose gate exceeds 0.5.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from trials.nas.oneshot.base import OneShotTrainer, cycle
from trials.nas.oneshot.capture import StepCapture
from trials.nas.oneshot.choices import ChoiceGroup


class DartsTrainer(OneShotTrainer):
    """DARTS; arguments beyond the shared ones (see :class:`OneShotTrainer`):

    ``arch_lr``, ``arch_betas``, ``arch_weight_decay``: Adam on the architecture weights
    (the paper's 3e-4, (0.5, 0.999), 1e-3); ``unrolled``: second-order approximation;
    ``warmup_epochs``: epochs that train only the weights before the architecture moves.
    ``valid_data`` is the half of the training data that the architecture step uses.
    ``capture_step``: record the first-order step (architecture and weight step together) as
    a CUDA graph and replay it (see :mod:`.capture`); where it cannot be used (not CUDA,
    ``unrolled``, float16 loss scaling, a failed recording) the step runs eagerly and
    ``capture_note`` says why.
    """

    algorithm = "DARTS"

    def __init__(
        self,
        model: nn.Module,
        *,
        arch_lr: float = 3e-4,
        arch_betas: tuple[float, float] = (0.5, 0.999),
        arch_weight_decay: float = 1e-3,
        unrolled: bool = False,
        warmup_epochs: int = 0,
        capture_step: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        if unrolled and self.scaler is not None:
            raise ValueError(
                "DartsTrainer: unrolled=True with float16 mixed precision is not supported "
                "(this GPU lacks bfloat16); use unrolled=False or mixed_precision=False"
            )
        self.unrolled = unrolled
        self.warmup_epochs = warmup_epochs
        self.alphas = nn.ParameterList(
            nn.Parameter(1e-3 * torch.randn(len(group), device=self.device)) for group in self.groups
        )
        blocker = "unrolled=True reads norms on the host" if unrolled else None
        if blocker is None and self.scaler is not None:
            blocker = "float16 loss scaling reads the gradients on the host"
        self.capture = StepCapture(type(self).__name__, self.device, blocker) if capture_step else None
        on_cuda = self.capture is not None and self.capture.active
        self.arch_optimizer = torch.optim.Adam(
            self.alphas.parameters(),
            lr=arch_lr,
            betas=arch_betas,
            weight_decay=arch_weight_decay,
            foreach=True,
            capturable=on_cuda,  # its step count on the device: no host sync in a recorded step
        )
        if on_cuda:
            self.autocast_cache = False  # CUDA graphs and autocast's weight cache do not mix
        elif self.capture is not None:
            warnings.warn(
                f"{type(self).__name__}: capture_step runs eagerly: {self.capture.reason}", stacklevel=2
            )

    def check_choice(self, group: ChoiceGroup) -> str | None:
        reduction = group.modules[0].reduction
        if reduction not in ("sum", "mean"):
            return (
                f"reduction {reduction!r} cannot mix weighted candidates (the mixture's shape would differ "
                "from the chosen candidate's); DARTS supports sum and mean"
            )
        return None

    def architecture_learns(self, epoch: int) -> bool:
        """Whether ``epoch`` updates the architecture weights (after the warm-up epochs)."""
        return epoch >= self.warmup_epochs

    # -- the relaxation -------------------------------------------------------------------------
    @staticmethod
    def _mixture(group: ChoiceGroup, alpha: torch.Tensor) -> torch.Tensor:
        if group.is_layer:
            return torch.softmax(alpha, dim=-1)
        if group.n_chosen is None:
            return torch.sigmoid(alpha)
        return group.n_chosen * torch.softmax(alpha, dim=-1)

    def apply_mixture(self, detach: bool = False) -> None:
        """Put the current mixture on every choice; ``detach`` when only the weights learn.

        Choices of one kind and length (DARTS' edges: every layer choice has 7 candidates) get
        their weights from one softmax over their stacked alphas, rows being independent."""
        buckets: dict[tuple[bool, int | None, int], list[tuple[ChoiceGroup, torch.Tensor]]] = {}
        for group, alpha in zip(self.groups, self.alphas, strict=True):
            if group.n_chosen == 0:
                group.apply_indices([], self.device)
                continue
            key = (group.is_layer, group.n_chosen, len(group))
            buckets.setdefault(key, []).append((group, alpha.detach() if detach else alpha))
        for members in buckets.values():
            if len(members) == 1:
                group, alpha = members[0]
                group.apply_weights(self._mixture(group, alpha))
                continue
            rows = self._mixture(members[0][0], torch.stack([alpha for _, alpha in members])).unbind(0)
            for (group, _), weights in zip(members, rows, strict=True):
                group.apply_weights(weights)

    prepare_validation = apply_mixture

    def choice_weights(self) -> dict[str, list[float]]:
        with torch.no_grad():
            out = {}
            for group, alpha in zip(self.groups, self.alphas, strict=True):
                if group.is_layer or group.n_chosen is not None:
                    out[group.key] = torch.softmax(alpha, dim=-1).tolist()
                else:
                    out[group.key] = torch.sigmoid(alpha).tolist()
            return out

    @property
    def capture_note(self) -> str | None:
        """Why ``capture_step`` runs the step eagerly (None while it replays a CUDA graph)."""
        return self.capture.reason if self.capture is not None else "capture_step=False"

    # -- training -------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> None:
        valid = cycle(self.valid_data, f"{type(self).__name__}: valid_data")
        for batch in self.train_data:
            x_train, y_train = self.to_device(batch)
            learns = self.architecture_learns(epoch)
            x_valid = y_valid = None
            if learns:
                x_valid, y_valid = self.to_device(next(valid))
            if self.unrolled and learns:
                self.arch_optimizer.zero_grad(set_to_none=True)
                self._unrolled_gradient(x_train, y_train, x_valid, y_valid)
                self.arch_optimizer.step()
                output, loss = self._search_step(False, x_train, y_train)
            elif (
                self.capture is not None
                and self.capture.active
                and _all_tensors(x_train, y_train, x_valid, y_valid)
            ):
                lrs = tuple(g["lr"] for o in (self.optimizer, self.arch_optimizer) for g in o.param_groups)
                inputs = (x_train, y_train) + ((x_valid, y_valid) if learns else ())
                output, loss = self.capture.run((learns, lrs), self._search_step_of(learns), inputs)
            else:
                output, loss = self._search_step(learns, x_train, y_train, x_valid, y_valid)
            self.step_done(self.step_metrics(output, y_train, loss))

    def _search_step_of(self, learns: bool) -> Callable[..., tuple[Any, torch.Tensor]]:
        return lambda *inputs: self._search_step(learns, *inputs)

    def _search_step(
        self, learns: bool, x_train: Any, y_train: Any, x_valid: Any = None, y_valid: Any = None
    ) -> tuple[Any, torch.Tensor]:
        """First order: alpha on the validation batch (if ``learns``), then the weights; no host sync."""
        if learns:
            self.arch_optimizer.zero_grad(set_to_none=True)
            self.apply_mixture()
            _, loss = self.forward_loss(x_valid, y_valid)
            # only alpha's gradient: the weights' would be discarded by the weight step
            loss.backward(inputs=list(self.alphas))
            self.arch_optimizer.step()
        self.apply_mixture(detach=True)
        output, loss = self.forward_loss(x_train, y_train)
        self.optimize(loss, self.optimizer, clip=self.grad_clip)
        return output, loss

    def _unrolled_gradient(self, x_train: Any, y_train: Any, x_valid: Any, y_valid: Any) -> None:
        """Second order: the validation loss at w' = w - lr * dL_train/dw, differentiated in alpha."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        saved_params = [p.detach().clone() for p in params]
        saved_buffers = [b.detach().clone() for b in self.model.buffers()]
        group = self.optimizer.param_groups[0]
        lr, weight_decay, momentum = group["lr"], group.get("weight_decay", 0.0), group.get("momentum", 0.0)

        # the virtual step, as SGD would take it (momentum and weight decay included)
        self.apply_mixture(detach=True)
        _, loss = self.forward_loss(x_train, y_train)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                step = (g if g is not None else torch.zeros_like(p)) + weight_decay * p
                buffer = self.optimizer.state.get(p, {}).get("momentum_buffer")
                if buffer is not None and momentum:
                    step = step + momentum * buffer
                p.sub_(lr * step)

        # the validation loss at w'
        self.apply_mixture()
        _, loss = self.forward_loss(x_valid, y_valid)
        alphas = list(self.alphas)
        grads = torch.autograd.grad(loss, alphas + params, allow_unused=True)
        d_alpha = [
            g if g is not None else torch.zeros_like(a)
            for g, a in zip(grads[: len(alphas)], alphas, strict=True)
        ]
        d_w = [
            g if g is not None else torch.zeros_like(p)
            for g, p in zip(grads[len(alphas) :], params, strict=True)
        ]

        # d_alpha - lr * (d2 L_train / d alpha d w) d_w, by central differences around w
        norm = torch.sqrt(sum((d * d).sum() for d in d_w)).item()
        eps = 0.01 / max(norm, 1e-12)
        hessian = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, saved, d in zip(params, saved_params, d_w, strict=True):
                    p.copy_(saved + sign * eps * d)
            self.apply_mixture()
            _, loss = self.forward_loss(x_train, y_train)
            hessian.append(torch.autograd.grad(loss, alphas, allow_unused=True))
        with torch.no_grad():
            for p, saved in zip(params, saved_params, strict=True):
                p.copy_(saved)
            for b, saved in zip(self.model.buffers(), saved_buffers, strict=True):
                b.copy_(saved)
        for alpha, d, plus, minus in zip(alphas, d_alpha, *hessian, strict=True):
            correction = torch.zeros_like(alpha)
            if plus is not None and minus is not None:
                correction = (plus - minus) / (2 * eps)
            alpha.grad = d - lr * correction

    # -- export ---------------------------------------------------------------------------------
    def select(self) -> dict[str, list[int]]:
        weights = self.choice_weights()
        groups = self.decision_groups()
        chosen: dict[str, list[int]] = {}
        strength: dict[str, float] = {}  # of each layer choice: its strongest non-zero candidate
        for group in groups:
            if group.is_layer:
                w, alive = weights[group.key], self.alive_candidates(group)
                zeros = set(group.zero_candidates())
                real = [i for i in alive if i not in zeros]
                chosen[group.key] = [max(real or alive, key=lambda i: w[i])]
                strength[group.key] = max((w[i] for i in real), default=0.0)
        for group in groups:
            w = weights[group.key]
            if group.is_layer:
                continue
            if group.n_chosen is None:
                chosen[group.key] = [i for i, gate in enumerate(w) if gate > 0.5]
            else:
                scores = [w[i] * strength.get(name, 1.0) for i, name in enumerate(group.candidates)]
                ranked = sorted(range(len(group)), key=lambda i: -scores[i])
                chosen[group.key] = sorted(ranked[: group.n_chosen])
        return {group.key: chosen[group.key] for group in groups}

    def alive_candidates(self, group: ChoiceGroup) -> list[int]:
        """The candidates of a layer choice the export may pick (all; P-DARTS: the survivors)."""
        return list(range(len(group)))

    # -- checkpoint -----------------------------------------------------------------------------
    def algorithm_state(self) -> dict[str, Any]:
        return {
            "alphas": [a.detach() for a in self.alphas],
            "arch_optimizer": self.arch_optimizer.state_dict(),
        }

    def load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            for alpha, saved in zip(self.alphas, state["alphas"], strict=True):
                alpha.copy_(saved)
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])


def _all_tensors(*items: Any) -> bool:
    """Whether a step's inputs are tensors (or absent), as a recorded graph needs."""
    return all(item is None or isinstance(item, torch.Tensor) for item in items)
