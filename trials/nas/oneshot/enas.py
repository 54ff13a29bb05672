"""ENAS (Pham et al. 2018): an LSTM controller samples architectures of a shared-weight super-net.

Each epoch has two phases. In the child phase every training batch trains the path that the
controller samples for it (the weights of the other candidates wait). In the controller
phase the controller samples ``controller_steps`` architectures, each scored by its reward
(accuracy on one validation batch, BatchNorm on the batch's own statistics), and learns by
REINFORCE with a moving-average baseline and an entropy bonus, one update per
``controller_aggregate`` samples.

The controller decides the keys in the search space's order with one LSTM cell. A layer
choice is a softmax over its candidates; an input choice attends over the hidden states
recorded when its candidates' keys were decided (a learned vector stands in for an input
without one): ``n_chosen=k`` draws ``k`` distinct inputs one after another, ``n_chosen=None``
keeps each input with its own sigmoid probability, pulled towards ``skip_target`` by a KL
penalty as ENAS' macro search does.

A model may return ``(logits, aux_logits)`` (an auxiliary head, as ENAS' micro network has): the
child steps then train on ``loss(logits) + aux_weight * loss(aux_logits)``, while metrics, the
controller's reward and every evaluation see the logits only, so the user's loss and metrics
always receive tensors (NNI's ENAS trainer does the same).

Export: ``export_samples`` architectures are sampled and the best on the validation data is
kept (ties go to the first).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trials.nas.mutables import MutableScope, _Choice
from trials.nas.oneshot.base import OneShotTrainer, cycle
from trials.nas.oneshot.choices import ChoiceGroup, apply_architecture


@dataclass
class Sample:
    """One architecture drawn by the controller, with what REINFORCE needs."""

    architecture: dict[str, list[int]]
    log_prob: torch.Tensor
    entropy: torch.Tensor
    skip_penalty: torch.Tensor
    probabilities: dict[str, list[float]]


class Controller(nn.Module):
    """The LSTM policy over a search space (see the module docstring)."""

    def __init__(
        self,
        groups: Sequence[ChoiceGroup],
        hidden: int = 64,
        temperature: float | None = None,
        tanh_constant: float | None = 1.5,
        skip_target: float = 0.4,
        scope_exits: Mapping[int, Sequence[str]] | None = None,
    ) -> None:
        super().__init__()
        self.groups = list(groups)
        self.scope_exits = {int(i): list(keys) for i, keys in (scope_exits or {}).items()}
        self.hidden = hidden
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.skip_target = skip_target
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.heads = nn.ModuleList()
        self.embeddings = nn.ModuleList()
        self.anchors = nn.ParameterList()
        for group in self.groups:
            n = len(group)
            self.heads.append(nn.Linear(hidden, n) if group.is_layer else nn.Identity())
            self.embeddings.append(nn.Embedding(n, hidden) if group.is_layer else nn.Identity())
            self.anchors.append(nn.Parameter(0.1 * torch.randn(n, hidden)))
        self.attend_anchor = nn.Linear(hidden, hidden, bias=False)
        self.attend_query = nn.Linear(hidden, hidden, bias=False)
        self.attend_v = nn.Linear(hidden, 1, bias=False)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.uniform_(p, -0.1, 0.1)

    def _shape(self, logits: torch.Tensor) -> torch.Tensor:
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def sample(self, greedy: bool = False) -> Sample:
        """Draw one architecture (or take the most likely decision at every step when ``greedy``)."""
        device = self.start.device
        h = c = torch.zeros(1, self.hidden, device=device)
        inputs = self.start
        decided: dict[str, torch.Tensor] = {}
        log_prob = torch.zeros((), device=device)
        entropy = torch.zeros((), device=device)
        skip_penalty = torch.zeros((), device=device)
        architecture: dict[str, list[int]] = {}
        probabilities: dict[str, list[float]] = {}
        for index, group in enumerate(self.groups):
            h, c = self.lstm(inputs, (h, c))
            if group.is_layer:
                logits = self._shape(self.heads[index](h).squeeze(0))
                dist = torch.distributions.Categorical(logits=logits)
                choice = logits.argmax() if greedy else dist.sample()
                log_prob = log_prob + dist.log_prob(choice)
                entropy = entropy + dist.entropy()
                architecture[group.key] = [int(choice)]
                probabilities[group.key] = dist.probs.tolist()
                inputs = self.embeddings[index](choice.view(1))
            else:
                anchors = torch.stack(
                    [
                        decided[name].squeeze(0) if name in decided else self.anchors[index][i]
                        for i, name in enumerate(group.modules[0].choose_from)
                    ]
                )
                query = torch.tanh(self.attend_anchor(anchors) + self.attend_query(h))
                logits = self._shape(self.attend_v(query).squeeze(-1))
                chosen, step_log_prob, step_entropy, probs = self._pick_inputs(group, logits, greedy)
                log_prob, entropy = log_prob + step_log_prob, entropy + step_entropy
                if group.n_chosen is None:
                    p = torch.sigmoid(logits)
                    target = torch.full_like(p, self.skip_target)
                    skip_penalty = (
                        skip_penalty
                        + (
                            p * torch.log(p / target + 1e-9)
                            + (1 - p) * torch.log((1 - p) / (1 - target) + 1e-9)
                        ).sum()
                    )
                architecture[group.key] = chosen
                probabilities[group.key] = probs
                inputs = anchors[chosen].mean(dim=0, keepdim=True) if chosen else self.start
            decided[group.key] = h
            for scope in self.scope_exits.get(index, ()):  # a cell ends: one more step marks it
                h, c = self.lstm(inputs, (h, c))
                decided[scope] = h
        return Sample(architecture, log_prob, entropy, skip_penalty, probabilities)

    @staticmethod
    def _pick_inputs(
        group: ChoiceGroup, logits: torch.Tensor, greedy: bool
    ) -> tuple[list[int], torch.Tensor, torch.Tensor, list[float]]:
        if group.n_chosen is None:
            dist = torch.distributions.Bernoulli(logits=logits)
            keep = (logits > 0).float() if greedy else dist.sample()
            chosen = [i for i, on in enumerate(keep.tolist()) if on]
            return chosen, dist.log_prob(keep).sum(), dist.entropy().sum(), dist.probs.tolist()
        chosen: list[int] = []
        log_prob = torch.zeros((), device=logits.device)
        entropy = torch.zeros((), device=logits.device)
        masked = logits
        for _ in range(group.n_chosen):
            dist = torch.distributions.Categorical(logits=masked)
            pick = masked.argmax() if greedy else dist.sample()
            log_prob = log_prob + dist.log_prob(pick)
            entropy = entropy + dist.entropy()
            chosen.append(int(pick))
            masked = masked.masked_fill(F.one_hot(pick, len(group)).bool(), float("-inf"))
        return sorted(chosen), log_prob, entropy, torch.softmax(logits, dim=-1).tolist()


def scope_exits(model: nn.Module, groups: Sequence[ChoiceGroup]) -> dict[int, list[str]]:
    """For each group index, the keys of the ``MutableScope``s whose last choice it is (inner
    scopes first): where the controller leaves a cell."""
    position = {group.key: index for index, group in enumerate(groups)}
    exits: dict[int, list[tuple[int, str]]] = {}
    seen: set[str] = set()
    for path, module in model.named_modules():
        if not isinstance(module, MutableScope) or module.key in seen:
            continue
        seen.add(module.key)
        inside = [position[m.key] for m in module.modules() if isinstance(m, _Choice) and m.key in position]
        if inside:
            exits.setdefault(max(inside), []).append((-path.count("."), module.key))
    return {index: [key for _, key in sorted(scopes)] for index, scopes in exits.items()}


class EnasTrainer(OneShotTrainer):
    """ENAS; arguments beyond the shared ones (see :class:`OneShotTrainer`):

    ``controller_lr`` (Adam, the paper's 3.5e-4), ``controller_hidden``, ``controller_steps``
    (architectures sampled per controller phase), ``controller_aggregate`` (samples per
    update), ``entropy_weight``, ``baseline_decay``, ``skip_target`` and ``skip_weight``
    (the KL penalty for ``n_chosen=None`` inputs), ``temperature``, ``tanh_constant``,
    ``export_samples``, ``reward`` (a metric name of ``metrics``, default ``acc``) and
    ``aux_weight`` (the weight of an auxiliary head's loss when the model returns a pair) and
    ``cell_exit_extra_step`` (the controller takes one more step when it leaves a
    ``MutableScope``, whose hidden state then stands for the scope's key in later input choices,
    as NNI's ENAS micro search does).
    """

    algorithm = "ENAS"

    def __init__(
        self,
        model: nn.Module,
        *,
        controller_lr: float = 3.5e-4,
        controller_hidden: int = 64,
        controller_steps: int = 50,
        controller_aggregate: int = 10,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.999,
        skip_target: float = 0.4,
        skip_weight: float = 0.8,
        temperature: float | None = None,
        tanh_constant: float | None = 1.5,
        export_samples: int = 10,
        reward: str = "acc",
        aux_weight: float = 0.4,
        cell_exit_extra_step: bool = False,
        **kwargs: Any,
    ) -> None:
        if (
            isinstance(aux_weight, bool)
            or not isinstance(aux_weight, (int, float))
            or not math.isfinite(aux_weight)
            or aux_weight < 0
        ):
            raise ValueError(f"EnasTrainer: aux_weight must be a finite number >= 0, got {aux_weight!r}")
        super().__init__(model, **kwargs)
        if controller_steps < 0 or controller_aggregate < 1 or export_samples < 1:
            raise ValueError(
                "EnasTrainer: controller_steps must be >= 0, controller_aggregate and export_samples >= 1"
            )
        exits = scope_exits(model, self.groups) if cell_exit_extra_step else None
        self.controller = Controller(
            self.groups, controller_hidden, temperature, tanh_constant, skip_target, exits
        ).to(self.device)
        self.controller_optimizer = torch.optim.Adam(self.controller.parameters(), lr=controller_lr)
        self.controller_steps = controller_steps
        self.controller_aggregate = controller_aggregate
        self.entropy_weight = entropy_weight
        self.baseline_decay = baseline_decay
        self.skip_weight = skip_weight
        self.export_samples = export_samples
        self.reward = reward
        self.aux_weight = float(aux_weight)
        self.baseline: float | None = None
        self._probability_sums: dict[str, list[float]] = {}  # the samples of this logging window
        self._probability_count = 0
        self._window_weights: dict[str, list[float]] | None = None  # the last window's average
        self._rewards: list[float] = []  # this epoch's controller rewards

    def _sample(self, greedy: bool = False) -> Sample:
        sample = self.controller.sample(greedy)
        for key, probs in sample.probabilities.items():
            total = self._probability_sums.setdefault(key, [0.0] * len(probs))
            for i, p in enumerate(probs):
                total[i] += p
        self._probability_count += 1
        return sample

    def choice_weights(self) -> dict[str, list[float]]:
        """The controller's probabilities per key, averaged over its samples in this logging window.

        Right after a logging step (nothing sampled since) it is the window just logged, so every
        reader of that step sees what ``weights.jsonl`` has; before any sample, the probabilities
        along the controller's most likely path. Reading draws nothing from the random generators.
        """
        if self._probability_count:
            return {
                key: [v / self._probability_count for v in values]
                for key, values in self._probability_sums.items()
            }
        if self._window_weights is not None:
            return {key: list(values) for key, values in self._window_weights.items()}
        with torch.no_grad():
            return self.controller.sample(greedy=True).probabilities

    def weights_logged(self) -> None:
        """End the averaging window; ``choice_weights()`` keeps its average until the next sample."""
        if self._probability_count:
            self._window_weights = self.choice_weights()
            self._probability_sums, self._probability_count = {}, 0

    def train_epoch(self, epoch: int) -> None:
        self.controller.eval()
        for batch in self.train_data:
            inputs, targets = self.to_device(batch)
            with torch.no_grad():
                apply_architecture(self.groups, self._sample().architecture, self.device)
            logits, loss = self._child_loss(inputs, targets)
            self.optimize(loss, self.optimizer, clip=self.grad_clip)
            self.step_done(self.step_metrics(logits, targets, loss))
        self._train_controller()

    def _child_loss(self, inputs: Any, targets: Any) -> tuple[Any, torch.Tensor]:
        """The logits and training loss of one child step, the auxiliary head's loss included."""
        with self.autocast():
            logits, aux_logits = _split_aux(self.model(inputs))
            loss = self.loss_fn(logits, targets)
            if aux_logits is not None and self.aux_weight > 0:  # weight 0: the head gets no gradient
                loss = loss + self.aux_weight * self.loss_fn(aux_logits, targets)
        return logits, loss

    def forward_loss(
        self, inputs: Any, targets: Any, model: nn.Module | None = None
    ) -> tuple[Any, torch.Tensor]:
        """The logits and their loss (evaluation and rewards): an auxiliary output is dropped."""
        with self.autocast():
            logits, _ = _split_aux((model if model is not None else self.model)(inputs))
            loss = self.loss_fn(logits, targets)
        return logits, loss

    def _train_controller(self) -> None:
        self.controller.train()
        valid = cycle(self.valid_data)
        self.controller_optimizer.zero_grad(set_to_none=True)
        for index in range(self.controller_steps):
            sample = self._sample()
            apply_architecture(self.groups, sample.architecture, self.device)
            batch = next(valid)
            score = self.evaluate([batch], batch_statistics=True)[self.reward]
            reward = score + self.entropy_weight * sample.entropy.item()
            if self.baseline is None:
                self.baseline = reward
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
            loss = -sample.log_prob * (reward - self.baseline) + self.skip_weight * sample.skip_penalty
            (loss / self.controller_aggregate).backward()
            if (index + 1) % self.controller_aggregate == 0 or index + 1 == self.controller_steps:
                self.controller_optimizer.step()
                self.controller_optimizer.zero_grad(set_to_none=True)
            self._rewards.append(reward)
        self.controller.eval()
        self.model.train()

    def prepare_validation(self) -> None:
        with torch.no_grad():
            apply_architecture(self.groups, self.controller.sample(greedy=True).architecture, self.device)

    def validate(self) -> dict[str, float]:
        self.prepare_validation()
        metrics = {f"val_{k}": v for k, v in self.evaluate(self.valid_data, batch_statistics=True).items()}
        if self._rewards:
            metrics["controller_reward"] = sum(self._rewards) / len(self._rewards)
            self._rewards = []
        return metrics

    def required_metrics(self) -> tuple[str, ...]:
        return (self.reward,)

    def select(self) -> dict[str, list[int]]:
        best: tuple[float, dict[str, list[int]]] | None = None
        with torch.no_grad():
            for _ in range(self.export_samples):
                architecture = self.controller.sample().architecture
                apply_architecture(self.groups, architecture, self.device)
                score = self.evaluate(self.valid_data, batch_statistics=True)[self.reward]
                if best is None or score > best[0]:
                    best = (score, architecture)
        assert best is not None
        return best[1]

    def algorithm_state(self) -> dict[str, Any]:
        return {
            "controller": self.controller.state_dict(),
            "controller_optimizer": self.controller_optimizer.state_dict(),
            "baseline": self.baseline,
            # the open averaging window (the controller phase's samples when the epoch ended on a
            # logging step): the first weights after a resume are those of the uninterrupted run
            "weights_window": (self._probability_sums, self._probability_count, self._window_weights),
        }

    def load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.controller_optimizer.load_state_dict(state["controller_optimizer"])
        self.baseline = state["baseline"]
        if "weights_window" in state:  # absent from checkpoints written before it was kept
            sums, self._probability_count, self._window_weights = state["weights_window"]
            self._probability_sums = {key: list(values) for key, values in sums.items()}


def _split_aux(output: Any) -> tuple[Any, Any]:
    """``(logits, aux_logits)`` of a model that returns a pair of tensors, else ``(output, None)``."""
    if (
        isinstance(output, (tuple, list))
        and len(output) == 2
        and all(isinstance(item, torch.Tensor) for item in output)
    ):
        return output[0], output[1]
    return output, None
