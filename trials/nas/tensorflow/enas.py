"""ENAS (Pham et al. 2018) for Keras models: one shared-weight super-net, an LSTM controller.

The algorithm of the PyTorch trainer (:mod:`trials.nas.oneshot.enas`), for a Keras model built
with :mod:`trials.nas.tensorflow`'s choices. Each epoch has two phases. In the child phase every
training batch trains the path the controller samples for it (the other candidates' weights
wait: they get no gradient and no optimizer step). In the controller phase the controller samples
``controller_steps`` architectures, each scored by its accuracy on one validation batch, and learns
by REINFORCE with a moving-average baseline and an entropy bonus, one update per
``controller_aggregate`` samples. Export samples ``export_samples`` architectures and keeps the
best on the validation data (ties go to the first).

Rewards and evaluations run the model in training mode without gradients (BatchNorm on the
batch's own statistics, as a shared super-net needs; Keras then also updates its moving
statistics). Runs eagerly on the CPU or the device TensorFlow picks; no checkpoints, callbacks or
mixed precision (the PyTorch trainers have them).

The search log (:mod:`trials.searchlog`) is the PyTorch trainers', so
``nasctl view-nas --logdir DIR`` shows a Keras search: ``search_space.json``, ``weights.jsonl``
(the controller's probabilities, averaged over the samples of each logging window),
``metrics.jsonl`` and ``architecture.json``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from trials.nas.tensorflow._keras import keras, tf
from trials.nas.tensorflow.controller import Controller, Sample
from trials.nas.tensorflow.model import parse_model
from trials.nas.tensorflow.mutables import InputChoice, LayerChoice
from trials.searchlog import SearchLog
from trials.searchspace import InputDecision, LayerChoiceSpec, LayerDecision, architecture_to_json

Batch = tuple[Any, Any]


class EnasTrainer:
    """ENAS for a Keras model (see the module docstring).

    ``train_data`` and ``valid_data``: iterables of ``(inputs, integer labels)`` batches, iterated
    once per epoch (lists, or a ``tf.data.Dataset``). ``optimizer`` trains the model's weights
    (default SGD, lr 0.025, momentum 0.9, global norm clipped at 5); ``loss`` takes
    ``(labels, logits)`` (default: sparse cross-entropy from logits). Controller arguments as
    the PyTorch ``EnasTrainer``: ``controller_lr``, ``controller_hidden``, ``controller_steps``,
    ``controller_aggregate``, ``entropy_weight``, ``baseline_decay``, ``skip_target``,
    ``skip_weight``, ``temperature``, ``tanh_constant``, ``export_samples``. ``log_dir`` receives
    the search log, one line per ``log_every`` steps; ``seed`` seeds Keras and the controller.
    """

    algorithm = "ENAS"

    def __init__(
        self,
        model: keras.Model,
        *,
        train_data: Iterable[Batch],
        valid_data: Iterable[Batch],
        num_epochs: int,
        optimizer: keras.optimizers.Optimizer | None = None,
        loss: Callable[[Any, Any], Any] | None = None,
        log_dir: str | Path | None = None,
        log_every: int = 10,
        seed: int | None = None,
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
        progress: bool = True,
    ) -> None:
        if num_epochs < 0 or log_every < 1:
            raise ValueError(
                f"EnasTrainer: num_epochs must be >= 0 and log_every >= 1, got {num_epochs}, {log_every}"
            )
        if controller_steps < 0 or controller_aggregate < 1 or export_samples < 1:
            raise ValueError(
                "EnasTrainer: controller_steps must be >= 0, controller_aggregate and export_samples >= 1"
            )
        if seed is not None:
            keras.utils.set_random_seed(seed)
        self.progress = progress
        self.model = model
        self.parsed = parse_model(model)
        self.space = self.parsed.space
        self.train_data, self.valid_data = train_data, valid_data
        self.num_epochs, self.log_every = num_epochs, log_every
        self.optimizer = optimizer or keras.optimizers.SGD(0.025, momentum=0.9, global_clipnorm=5.0)
        self.loss_fn = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.controller = Controller(
            self.space.nas_choices, controller_hidden, temperature, tanh_constant, skip_target, seed
        )
        self.controller_optimizer = keras.optimizers.Adam(controller_lr)
        self.controller_steps, self.controller_aggregate = controller_steps, controller_aggregate
        self.entropy_weight, self.baseline_decay = entropy_weight, baseline_decay
        self.skip_weight, self.export_samples = skip_weight, export_samples
        self.baseline: float | None = None
        self.log = SearchLog(log_dir) if log_dir is not None else None
        self.step = 0
        self._window: dict[str, list[float]] = {}
        self._window_count = 0
        self._train_sums: dict[str, float] = {}
        self._train_count = 0
        self._rewards: list[float] = []

    # -- applying decisions ------------------------------------------------------------------
    def apply(self, architecture: dict[str, list[int]]) -> None:
        """Run only the chosen candidates (``architecture``: key -> candidate indices)."""
        for occurrence in self.parsed.occurrences:
            occurrence.module.set_chosen(architecture[occurrence.module._key])

    def _build_every_candidate(self, inputs: Any) -> None:
        """Call each candidate once so every shared weight exists before the optimizer is built."""
        widest = max(len(choice.candidates) for choice in self.space.nas_choices)
        for i in range(widest):
            for occurrence in self.parsed.occurrences:
                module = occurrence.module
                if isinstance(module, LayerChoice):
                    module.set_chosen([min(i, len(module) - 1)])
                elif isinstance(module, InputChoice):
                    module.set_chosen(
                        range(len(module)) if module.n_chosen is None else range(module.n_chosen)
                    )
            self.model(inputs, training=False)
        self.optimizer.build(self.model.trainable_variables)

    # -- the search --------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Search for ``num_epochs`` epochs, then export; returns the architecture (full form)."""
        first = next(iter(self.train_data))
        self._build_every_candidate(first[0])
        if self.log is not None:
            self.log.write_space(self.space.to_json())
        self._say(
            f"[enas] searching {len(self.space.nas_choices)} choices for {self.num_epochs} epochs (Keras)"
        )
        for epoch in range(self.num_epochs):
            start, losses = time.perf_counter(), []
            for inputs, labels in self.train_data:
                self.apply(self._sample().architecture)
                loss, acc = self._child_step(inputs, labels)
                losses.append(loss)
                self._step_done(epoch, {"train_loss": loss, "train_acc": acc})
            self._train_controller()
            metrics = self._epoch_end(epoch)
            figures = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            train = f"train_loss {sum(losses) / max(len(losses), 1):.4f}  "
            self._say(
                f"epoch {epoch + 1}/{self.num_epochs}  {train}{figures}  (val: super-net)  "
                f"{time.perf_counter() - start:.1f} s"
            )
        architecture = self.export()
        if self.log is not None:
            self.log.write_architecture(architecture)
            self.log.close()
        return architecture

    def _sample(self, greedy: bool = False) -> Sample:
        sample = self.controller.sample(greedy)
        for key, probs in sample.probabilities.items():
            total = self._window.setdefault(key, [0.0] * len(probs))
            for i, p in enumerate(probs):
                total[i] += p
        self._window_count += 1
        return sample

    def _child_step(self, inputs: Any, labels: Any) -> tuple[float, float]:
        with tf.GradientTape() as tape:
            logits = self.model(inputs, training=True)
            loss = self.loss_fn(labels, logits)
        pairs = [
            (g, v)
            for g, v in zip(
                tape.gradient(loss, self.model.trainable_variables),
                self.model.trainable_variables,
                strict=True,
            )
            if g is not None
        ]
        self.optimizer.apply_gradients(pairs)
        return float(loss), _accuracy(logits, labels)

    def _step_done(self, epoch: int, metrics: dict[str, float]) -> None:
        self.step += 1
        for name, value in metrics.items():
            self._train_sums[name] = self._train_sums.get(name, 0.0) + value
        self._train_count += 1
        if self.step % self.log_every == 0:
            self._log_window(epoch)

    def _log_window(self, epoch: int) -> None:
        if self.log is not None and self._train_count:
            self.log.log_metrics(
                self.step, epoch, {k: v / self._train_count for k, v in self._train_sums.items()}
            )
        if self.log is not None and self._window_count:
            self.log.log_weights(self.step, epoch, self.choice_weights())
        self._train_sums, self._train_count = {}, 0
        self._window, self._window_count = {}, 0

    def choice_weights(self) -> dict[str, list[float]]:
        """The controller's probabilities per key, averaged over its samples in this window."""
        if not self._window_count:
            return self.controller.sample(greedy=True).probabilities
        return {key: [v / self._window_count for v in values] for key, values in self._window.items()}

    def _reward(self, batch: Batch) -> float:
        logits = self.model(batch[0], training=True)  # batch statistics; no gradient is taken
        return _accuracy(logits, batch[1])

    def _train_controller(self) -> None:
        valid = _cycle(self.valid_data)
        variables: list[Any] | None = None
        grads_sum: list[Any] | None = None
        for index in range(self.controller_steps):
            with tf.GradientTape() as tape:
                sample = self._sample()
                self.apply(sample.architecture)
                reward = self._reward(next(valid)) + self.entropy_weight * float(sample.entropy)
                if self.baseline is None:
                    self.baseline = reward
                self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
                loss = -sample.log_prob * (reward - self.baseline) + self.skip_weight * sample.skip_penalty
                loss = loss / self.controller_aggregate
            variables = self.controller.trainable_variables
            grads = [
                tf.convert_to_tensor(g) if g is not None else tf.zeros_like(v)
                for g, v in zip(tape.gradient(loss, variables), variables, strict=True)
            ]
            grads_sum = grads if grads_sum is None else [a + b for a, b in zip(grads_sum, grads, strict=True)]
            if (index + 1) % self.controller_aggregate == 0 or index + 1 == self.controller_steps:
                self.controller_optimizer.apply_gradients(zip(grads_sum, variables, strict=True))
                grads_sum = None
            self._rewards.append(reward)

    def _say(self, line: str) -> None:
        """One progress line on stderr (``progress=False`` keeps the search quiet)."""
        if self.progress:
            print(line, file=sys.stderr, flush=True)

    def _epoch_end(self, epoch: int) -> dict[str, float]:
        self.apply(self.controller.sample(greedy=True).architecture)
        accuracies = [(self._reward(batch), len(batch[1])) for batch in self.valid_data]
        total = sum(n for _, n in accuracies)
        metrics = {"val_acc": sum(a * n for a, n in accuracies) / max(total, 1)}
        if self._rewards:
            metrics["controller_reward"] = sum(self._rewards) / len(self._rewards)
            self._rewards = []
        if self.log is not None:
            self.log.log_metrics(self.step, epoch, metrics)
        return metrics

    # -- export ------------------------------------------------------------------------------
    def export(self) -> dict[str, Any]:
        """The best of ``export_samples`` sampled architectures on the validation data (full form)."""
        best: tuple[float, dict[str, list[int]]] | None = None
        for _ in range(self.export_samples):
            architecture = self.controller.sample().architecture
            self.apply(architecture)
            scores = [(self._reward(batch), len(batch[1])) for batch in self.valid_data]
            score = sum(a * n for a, n in scores) / max(sum(n for _, n in scores), 1)
            if best is None or score > best[0]:
                best = (score, architecture)
        assert best is not None
        return architecture_to_json(self._decisions(best[1]))

    def _decisions(self, architecture: dict[str, list[int]]) -> dict[str, Any]:
        decisions: dict[str, Any] = {}
        for choice in self.space.nas_choices:
            indices = architecture[choice.key]
            if isinstance(choice, LayerChoiceSpec):
                decisions[choice.key] = LayerDecision(indices[0], choice.candidates[indices[0]])
            else:
                decisions[choice.key] = InputDecision(
                    tuple(indices), tuple(choice.candidates[i] for i in indices)
                )
        return decisions


def _accuracy(logits: Any, labels: Any) -> float:
    predicted = np.argmax(np.asarray(logits), axis=-1)
    return float(np.mean(predicted == np.asarray(labels))) if len(predicted) else math.nan


def _cycle(data: Iterable[Batch]) -> Any:
    while True:
        yield from data
