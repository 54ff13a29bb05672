"""ENAS' LSTM controller in Keras: samples one architecture of a search space at a time.

The same policy as the PyTorch controller (:mod:`trials.nas.oneshot.enas`): one LSTM cell decides
the keys in the search space's order; a layer choice is a softmax over its candidates; an input
choice attends over the hidden states recorded when its candidates' keys were decided (a learned
vector stands in for an input without one). ``n_chosen=k`` draws ``k`` distinct inputs one after
another; ``n_chosen=None`` keeps each input with its own sigmoid probability, pulled towards
``skip_target`` by a KL penalty. Draws come from a seeded NumPy generator, so a seed repeats a
search; the log-probabilities are TensorFlow ops, so REINFORCE differentiates them under a tape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from trials.nas.tensorflow._keras import keras, tf
from trials.searchspace import InputChoiceSpec, LayerChoiceSpec


@dataclass
class Sample:
    """One architecture drawn by the controller, with what REINFORCE needs."""

    architecture: dict[str, list[int]]
    log_prob: Any
    entropy: Any
    skip_penalty: Any
    probabilities: dict[str, list[float]]


class Controller(keras.Model):
    """The LSTM policy over ``choices`` (a search space's layer and input choices, in order)."""

    def __init__(
        self,
        choices: tuple[LayerChoiceSpec | InputChoiceSpec, ...],
        hidden: int = 64,
        temperature: float | None = None,
        tanh_constant: float | None = 1.5,
        skip_target: float = 0.4,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.choices = choices
        self.hidden = hidden
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.skip_target = skip_target
        self.rng = np.random.default_rng(seed)
        init = keras.initializers.RandomUniform(-0.1, 0.1, seed=seed)
        self.lstm = keras.layers.LSTMCell(hidden, kernel_initializer=init, recurrent_initializer=init)
        self.start = self.add_weight(shape=(1, hidden), initializer="zeros", name="start")
        self.heads: list[Any] = []
        self.embeddings: list[Any] = []
        self.anchors: list[Any] = []
        for index, choice in enumerate(choices):
            n = len(choice.candidates)
            layer = isinstance(choice, LayerChoiceSpec)
            self.heads.append(keras.layers.Dense(n, kernel_initializer=init) if layer else None)
            self.embeddings.append(
                keras.layers.Embedding(n, hidden, embeddings_initializer=init) if layer else None
            )
            self.anchors.append(self.add_weight(shape=(n, hidden), initializer=init, name=f"anchors_{index}"))
        self.attend_anchor = keras.layers.Dense(hidden, use_bias=False, kernel_initializer=init)
        self.attend_query = keras.layers.Dense(hidden, use_bias=False, kernel_initializer=init)
        self.attend_v = keras.layers.Dense(1, use_bias=False, kernel_initializer=init)

    def _shape(self, logits: Any) -> Any:
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * tf.tanh(logits)
        return logits

    def sample(self, greedy: bool = False) -> Sample:
        """Draw one architecture (the most likely decision at every step when ``greedy``)."""
        state = [tf.zeros((1, self.hidden)), tf.zeros((1, self.hidden))]
        inputs = self.start
        decided: dict[str, Any] = {}
        log_prob = entropy = skip_penalty = tf.constant(0.0)
        architecture: dict[str, list[int]] = {}
        probabilities: dict[str, list[float]] = {}
        for index, choice in enumerate(self.choices):
            h, state = self.lstm(inputs, state)
            if isinstance(choice, LayerChoiceSpec):
                logits = self._shape(self.heads[index](h)[0])
                picked = self._draw(tf.nn.softmax(logits).numpy(), greedy)
                log_p = tf.nn.log_softmax(logits)
                log_prob += log_p[picked]
                entropy -= tf.reduce_sum(tf.exp(log_p) * log_p)
                architecture[choice.key] = [picked]
                probabilities[choice.key] = [float(p) for p in tf.nn.softmax(logits).numpy()]
                inputs = self.embeddings[index](tf.constant([picked]))
            else:
                anchors = tf.stack(
                    [
                        decided[name][0] if name in decided else self.anchors[index][i]
                        for i, name in enumerate(choice.candidates)
                    ]
                )
                query = tf.tanh(self.attend_anchor(anchors) + self.attend_query(h))
                logits = self._shape(self.attend_v(query)[:, 0])
                chosen, step_log_prob, step_entropy, probs = self._pick_inputs(choice, logits, greedy)
                log_prob, entropy = log_prob + step_log_prob, entropy + step_entropy
                if choice.n_chosen is None:
                    p = tf.sigmoid(logits)
                    q = self.skip_target
                    skip_penalty += tf.reduce_sum(
                        p * tf.math.log(p / q + 1e-9) + (1 - p) * tf.math.log((1 - p) / (1 - q) + 1e-9)
                    )
                architecture[choice.key] = chosen
                probabilities[choice.key] = probs
                inputs = (
                    tf.reduce_mean(tf.gather(anchors, chosen), axis=0, keepdims=True)
                    if chosen
                    else self.start
                )
            decided[choice.key] = h
        return Sample(architecture, log_prob, entropy, skip_penalty, probabilities)

    def _draw(self, probs: np.ndarray, greedy: bool) -> int:
        if greedy:
            return int(np.argmax(probs))
        probs = np.asarray(probs, dtype="float64")
        return int(self.rng.choice(len(probs), p=probs / probs.sum()))

    def _pick_inputs(
        self, choice: InputChoiceSpec, logits: Any, greedy: bool
    ) -> tuple[list[int], Any, Any, list[float]]:
        if choice.n_chosen is None:
            p = tf.sigmoid(logits).numpy()
            keep = (p > 0.5) if greedy else (self.rng.random(len(p)) < p)
            on = tf.constant(keep.astype("float32"))
            log_on, log_off = tf.math.log_sigmoid(logits), tf.math.log_sigmoid(-logits)
            log_prob = tf.reduce_sum(on * log_on + (1 - on) * log_off)
            entropy = -tf.reduce_sum(tf.sigmoid(logits) * log_on + tf.sigmoid(-logits) * log_off)
            return [i for i, k in enumerate(keep) if k], log_prob, entropy, [float(v) for v in p]
        chosen: list[int] = []
        log_prob = entropy = tf.constant(0.0)
        masked = logits
        for _ in range(choice.n_chosen):
            log_p = tf.nn.log_softmax(masked)
            picked = self._draw(tf.exp(log_p).numpy(), greedy)
            log_prob += log_p[picked]
            entropy -= tf.reduce_sum(tf.where(tf.math.is_finite(log_p), tf.exp(log_p) * log_p, 0.0))
            chosen.append(picked)
            masked = tf.where(tf.one_hot(picked, len(choice.candidates)) > 0, -np.inf, masked)
        return sorted(chosen), log_prob, entropy, [float(v) for v in tf.nn.softmax(logits).numpy()]
