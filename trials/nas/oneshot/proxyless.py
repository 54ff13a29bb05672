"""ProxylessNAS (Cai et al. 2019): path-level binarization with a latency objective.

Every layer choice gets architecture parameters ``alpha`` (one per candidate, started at 0,
so the path probabilities ``p = softmax(alpha)`` start uniform). Unlike DARTS, no step runs
the whole super-net, so memory stays at the level of one or two paths:

- Weight step (every training batch): one candidate per choice is sampled from ``p`` (the
  binary gate is one-hot), only it runs, and the weights descend the training loss.
- Architecture step (every ``arch_every`` weight steps after ``warmup_epochs``, on a
  validation batch): the paper's two-path variant. Per choice two distinct candidates are
  sampled from ``p`` (multinomial, without replacement) and every other path is masked out as
  if it did not exist; within the pair, probabilities are re-normalised
  (``q = softmax(alpha[pair])``) and one of the two is gated on (``g`` one-hot, sampled from
  ``q``, a float mask with ``requires_grad``). Both paths run, so ``dL/dg_j`` exists for each;
  the gradient estimate is ``dL/dalpha_i = sum_j dL/dg_j * q_j * (delta_ij - q_i)`` for ``i``
  in the pair. After the Adam step, the pair's alphas are shifted by one constant so that
  ``sum exp(alpha[pair])`` is what it was, leaving the unsampled paths' probabilities as the
  paper prescribes.

Latency: ``E[lat] = fixed + sum_choices sum_i p_i * lat_i`` from a :class:`LatencyTable`,
built from ``alpha`` with torch ops so it is differentiable in every alpha. The architecture
loss is ``loss + latency_weight * E[lat] / reference_latency`` (``latency_mode="additive"``)
or ``loss * (log E[lat] / log reference_latency) ** latency_beta`` (``"multiplicative"``;
both latencies must exceed 1 in the table's unit, so use ``table.scaled(1000, "us")`` for
sub-millisecond tables). ``reference_latency`` defaults to ``E[lat]`` at the start (uniform
``p``). Each step logs ``expected_latency_<unit>`` (``expected_latency_ms`` for measured tables).

Export: the candidate with the largest alpha per choice (a ``zero``/``none`` candidate may
win: skipping a layer is a legitimate ProxylessNAS decision). Only layer choices with
``reduction="sum"`` are searched; input choices are refused (the paper searches operations,
and binarizing a k-of-n input choice needs another estimator).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from trials.nas.oneshot.base import OneShotTrainer, cycle
from trials.nas.oneshot.choices import ChoiceGroup, apply_architecture
from trials.nas.oneshot.latency import LatencyTable, measure_latency

LATENCY_MODES = ("additive", "multiplicative")


class ProxylessTrainer(OneShotTrainer):
    """ProxylessNAS; arguments beyond the shared ones (see :class:`OneShotTrainer`):

    ``latency_table`` (None: no latency term), ``latency_mode`` (``additive`` or
    ``multiplicative``), ``latency_weight`` (lambda of the additive mode), ``latency_beta``
    (exponent of the multiplicative mode), ``reference_latency`` (None: ``E[lat]`` at the
    start); ``arch_lr``, ``arch_betas``, ``arch_weight_decay``: Adam on alpha;
    ``warmup_epochs``: weight-only epochs first; ``arch_every``: weight steps per
    architecture step.
    """

    algorithm = "ProxylessNAS"

    def __init__(
        self,
        model: nn.Module,
        *,
        latency_table: LatencyTable | None = None,
        latency_mode: str = "additive",
        latency_weight: float = 0.1,
        latency_beta: float = 0.6,
        reference_latency: float | None = None,
        arch_lr: float = 1e-3,
        arch_betas: tuple[float, float] = (0.9, 0.999),
        arch_weight_decay: float = 0.0,
        warmup_epochs: int = 0,
        arch_every: int = 1,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        if latency_table is not None and not isinstance(latency_table, LatencyTable):
            raise ValueError(
                f"{name}: latency_table must be a LatencyTable, got {type(latency_table).__name__}"
            )
        if latency_mode not in LATENCY_MODES:
            raise ValueError(
                f"{name}: latency_mode must be 'additive' or 'multiplicative', got {latency_mode!r}"
            )
        if not (
            isinstance(latency_weight, (int, float)) and latency_weight >= 0 and math.isfinite(latency_weight)
        ):
            raise ValueError(f"{name}: latency_weight must be a finite number >= 0, got {latency_weight!r}")
        if not (isinstance(latency_beta, (int, float)) and latency_beta >= 0 and math.isfinite(latency_beta)):
            raise ValueError(f"{name}: latency_beta must be a finite number >= 0, got {latency_beta!r}")
        if reference_latency is not None and not (
            isinstance(reference_latency, (int, float))
            and reference_latency > 0
            and math.isfinite(reference_latency)
        ):
            raise ValueError(
                f"{name}: reference_latency must be a finite number > 0, got {reference_latency!r}"
            )
        if arch_lr <= 0:
            raise ValueError(f"{name}: arch_lr must be > 0, got {arch_lr!r}")
        if warmup_epochs < 0:
            raise ValueError(f"{name}: warmup_epochs must be >= 0, got {warmup_epochs!r}")
        if not isinstance(arch_every, int) or arch_every < 1:
            raise ValueError(f"{name}: arch_every must be an integer >= 1, got {arch_every!r}")
        super().__init__(model, **kwargs)
        self.latency_table = latency_table
        self.latency_mode = latency_mode
        self.latency_weight = float(latency_weight)
        self.latency_beta = float(latency_beta)
        self.warmup_epochs = warmup_epochs
        self.arch_every = arch_every
        self.alphas = nn.ParameterList(
            nn.Parameter(torch.zeros(len(g), device=self.device)) for g in self.groups
        )
        self.arch_optimizer = torch.optim.Adam(
            self.alphas.parameters(),
            lr=arch_lr,
            betas=arch_betas,
            weight_decay=arch_weight_decay,
            foreach=True,
        )
        self._costs: list[torch.Tensor] = []
        if latency_table is not None:
            try:
                latency_table.check(self.groups)
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
            self._costs = [
                torch.tensor(latency_table.costs(g), dtype=torch.float32, device=self.device)
                for g in self.groups
            ]
        with torch.no_grad():
            start = self.expected_latency().item() if latency_table is not None else 0.0
        self.reference_latency = float(reference_latency) if reference_latency is not None else start
        if latency_table is not None and self.reference_latency <= 0:
            raise ValueError(
                f"{name}: the table's expected latency at the start is 0; give reference_latency > 0"
            )
        if latency_table is not None and latency_mode == "multiplicative" and self.reference_latency <= 1:
            raise ValueError(
                f"{name}: multiplicative mode needs reference_latency > 1 in the table's unit "
                f"({latency_table.unit}), got {self.reference_latency:g}; use latency_table.scaled(1000, 'us')"
            )

    def check_choice(self, group: ChoiceGroup) -> str | None:
        if not group.is_layer:
            return "ProxylessNAS searches layer choices only (binary gates over one operation per layer)"
        reductions = {m.reduction for m in group.modules}
        if reductions != {"sum"}:
            return f"reduction {sorted(reductions)[0]!r}: the two-path gates need reduction 'sum'"
        return None

    def architecture_learns(self, epoch: int) -> bool:
        """Whether ``epoch`` updates alpha (after the warm-up epochs)."""
        return epoch >= self.warmup_epochs

    # -- latency ---------------------------------------------------------------------------------
    def expected_latency(self) -> torch.Tensor:
        """``fixed + sum_choices sum_i p_i * lat_i``, differentiable in every alpha."""
        if self.latency_table is None:
            raise ValueError(f"{type(self).__name__}: no latency_table was given")
        total = torch.tensor(self.latency_table.fixed, device=self.device)
        for alpha, costs in zip(self.alphas, self._costs, strict=True):
            total = total + (torch.softmax(alpha, dim=-1) * costs).sum()
        return total

    def latency_objective(self, loss: torch.Tensor) -> torch.Tensor:
        """The task loss with the latency term of ``latency_mode``."""
        if self.latency_table is None:
            return loss
        expected = self.expected_latency()
        if self.latency_mode == "additive":
            return loss + self.latency_weight * expected / self.reference_latency
        # log E[lat] must stay positive for a real power; E[lat] <= 1 only after a large drop
        ratio = torch.log(expected.clamp_min(1.0 + 1e-6)) / math.log(self.reference_latency)
        return loss * ratio**self.latency_beta

    def latency_report(self, example_input: Any = None, repeats: int = 20) -> dict[str, float]:
        """``expected``: E[lat] under the current alpha; ``exported``: the table's latency of
        the exported architecture (both in the table's unit). With ``example_input``, also
        ``measured_ms``: the exported network timed as a whole on the trainer's device (only
        the exported candidates run), which is what the table's sum is meant to predict."""
        if self.latency_table is None:
            raise ValueError(f"{type(self).__name__}: no latency_table was given")
        with torch.no_grad():
            expected = self.expected_latency().item()
        exported = self.select()
        report = {
            "expected": expected,
            "exported": self.latency_table.architecture_cost(self.groups, exported),
        }
        if example_input is not None:
            apply_architecture(self.groups, exported, self.device)
            report["measured_ms"] = measure_latency(self.model, example_input, self.device, repeats=repeats)
        return report

    def _latency_metric(self) -> dict[str, float]:
        if self.latency_table is None:
            return {}
        with torch.no_grad():
            return {f"expected_latency_{self.latency_table.unit}": self.expected_latency().item()}

    # -- sampling --------------------------------------------------------------------------------
    def _probabilities(self) -> list[list[float]]:
        with torch.no_grad():
            return [torch.softmax(a, dim=-1).tolist() for a in self.alphas]

    def sample_paths(self) -> dict[str, list[int]]:
        """One candidate per choice, drawn from ``softmax(alpha)`` with the trainer's RNG."""
        return {
            g.key: self.rng.choices(range(len(g)), weights=p)
            for g, p in zip(self.groups, self._probabilities(), strict=True)
        }

    def _sample_pair(self, p: list[float]) -> list[int]:
        first = self.rng.choices(range(len(p)), weights=p)[0]
        rest = [i for i in range(len(p)) if i != first]
        if not rest:
            return [first]
        weights = [p[i] for i in rest]
        second = self.rng.choices(rest, weights=weights if sum(weights) > 0 else None)[0]
        return sorted([first, second])

    # -- training -------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> None:
        valid = cycle(self.valid_data, f"{type(self).__name__}: valid_data")
        for batch in self.train_data:
            if self.architecture_learns(epoch) and self.step % self.arch_every == 0:
                self.architecture_step(self.to_device(next(valid)))
            x_train, y_train = self.to_device(batch)
            apply_architecture(self.groups, self.sample_paths(), self.device)
            output, loss = self.forward_loss(x_train, y_train)
            if loss.requires_grad:  # a net whose sampled path has no trainable weight has nothing to learn
                self.optimize(loss, self.optimizer, clip=self.grad_clip)
            self.step_done({**self.step_metrics(output, y_train, loss), **self._latency_metric()})

    def architecture_step(self, batch: Any) -> None:
        """One two-path binary-gate update of alpha on ``batch`` (see the module docstring)."""
        inputs, targets = batch
        pairs, gates = [], []
        for group, alpha, p in zip(self.groups, self.alphas, self._probabilities(), strict=True):
            pair = self._sample_pair(p)
            with torch.no_grad():
                q = torch.softmax(alpha[pair], dim=-1).tolist()
            on = pair[0] if len(pair) == 1 or self.rng.random() < q[0] else pair[1]
            gate = torch.zeros(len(group), device=self.device)
            gate[on] = 1.0
            gate.requires_grad_(True)
            for module in group.modules:
                module.set_mask(gate, active=pair)
            pairs.append(pair)
            gates.append(gate)
        _, loss = self.forward_loss(inputs, targets)
        total = self.latency_objective(loss.float())
        alphas = list(self.alphas)
        grads = torch.autograd.grad(total, alphas + gates, allow_unused=True) if total.requires_grad else []
        before = [a.detach().clone() for a in alphas]
        with torch.no_grad():
            for index, (alpha, pair) in enumerate(zip(alphas, pairs, strict=True)):
                grad = grads[index] if grads and grads[index] is not None else torch.zeros_like(alpha)
                d_gate = grads[len(alphas) + index] if grads else None
                if d_gate is not None and len(pair) == 2:
                    q = torch.softmax(alpha[pair], dim=-1)
                    dg = d_gate[pair].float()
                    grad = grad.clone()
                    grad[pair] += q * (dg - (dg * q).sum())
                alpha.grad = grad
        self.arch_optimizer.step()
        self.arch_optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():  # keep the unsampled paths' probabilities: rescale the pair's alphas
            for alpha, old, pair in zip(alphas, before, pairs, strict=True):
                if len(pair) == 2:
                    shift = torch.logsumexp(alpha[pair], 0) - torch.logsumexp(old[pair], 0)
                    alpha[pair] -= shift

    # -- reading and export ---------------------------------------------------------------------
    def choice_weights(self) -> dict[str, list[float]]:
        return {g.key: p for g, p in zip(self.groups, self._probabilities(), strict=True)}

    def select(self) -> dict[str, list[int]]:
        with torch.no_grad():
            return {g.key: [int(a.argmax().item())] for g, a in zip(self.groups, self.alphas, strict=True)}

    def prepare_validation(self) -> None:
        """Validate the architecture the export would give."""
        apply_architecture(self.groups, self.select(), self.device)

    # -- checkpoint -----------------------------------------------------------------------------
    def algorithm_state(self) -> dict[str, Any]:
        return {
            "alphas": [a.detach().clone() for a in self.alphas],
            "arch_optimizer": self.arch_optimizer.state_dict(),
            "reference_latency": self.reference_latency,
        }

    def load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            for alpha, saved in zip(self.alphas, state["alphas"], strict=True):
                alpha.copy_(saved)
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.reference_latency = float(state["reference_latency"])
