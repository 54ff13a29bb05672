"""PPO: a recurrent policy proposes one decision per step and learns from trial results.

The search space becomes a fixed sequence of categorical steps (:mod:`manager.tuners.actionspace`:
one per layer choice and categorical hyper-parameter, ``n_chosen`` ascending picks per input
choice, one yes/no per candidate when ``n_chosen`` is null). An LSTM reads the previous action
and emits the next step's logits and a value; an architecture is one episode whose only reward
comes after its last step. Training is PPO with a clipped surrogate, a clipped value loss and
GAE, as in NNI's port of OpenAI baselines ppo2, written in PyTorch (imported when the tuner is
built, never when the daemon starts; its small tensors run on one thread).

What differs from NNI's PPO tuner, and why:

- *Indices, not names*: actions are candidate indices, so equal names never collide, and input
  choices take any ``n_chosen``, null included.
- *No duplicates*: a step's actions that lead only to architectures already proposed are masked
  out, so the policy samples an unseen architecture directly; the masks are stored with the
  sample and reused in training, so the probabilities trained on are those sampled from. When
  every architecture has been proposed the tuner raises ``NoMoreTrials``.
- *Rewards* are ranks: a result (negated for ``minimize``) is rewarded with its centile among
  all results so far, centred on 0 and scaled to unit variance. The metric's scale and its
  outliers then do not matter (one diverged training at 10% does not dwarf the gap between 91%
  and 92%), and ``cliprange`` means the same for the value loss on any metric.
- *Failures*: a trial that fails, is cancelled, ends without a final result or reports NaN
  counts as finished with reward 0, the median's: it neither encourages nor discourages its
  choices (a failure may be the machine's fault), and the batch still completes. A result that
  arrives after such an end replaces the 0 if its batch has not been trained on yet.
- *Every slot busy at any concurrency*: ``generate_parameters`` never waits (no ``TunerBusy``).
  Each call samples from the current policy and keeps the log-probabilities, values and masks
  it was sampled with. An update runs as soon as ``trials_per_update`` trials have finished,
  whichever they are; trials still running belong to the next batch, where PPO's ratio
  ``pi_new / pi_sampled`` (clipped) corrects for the older policy that drew them. At
  concurrency 1 this is NNI's on-policy batch; above ``trials_per_update`` nothing waits for a
  barrier (NNI capped real concurrency at ``trials_per_update``).
- ``minibatch_size`` is, as in NNI, the *number* of minibatches per epoch; the batch need not
  divide evenly, only have at least that many trials.
- Defaults are NNI's except ``trials_per_update`` 10 (NNI 20), ``lr`` 0.01 (3e-4) and
  ``ent_coef`` 0.01 (0). With NNI's the policy hardly moves in the trials users can afford
  (Adam moves a weight by about ``lr`` per step, and 20 trials make 16 steps): on NAS-Bench-201
  (``bench/tuners.py``, 30 seeds) it gains 0.05 points over random search at 100 trials, these
  gain 0.28. Each is a class argument.
- ``import_data`` is accepted: earlier results count as seen, and are learned from as if the
  current policy had sampled them.

The checkpoint holds the whole state (weights, optimizer, random generator, pending and finished
samples, results), so a resumed experiment continues the same sequence.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import io
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from manager.tuners.actionspace import Actions, ActionSpace, SeenSequences
from manager.tuners.base import NoMoreTrials, Parameters, Tuner, TunerError, check_optimize_mode, signed_score
from manager.tuners.checkpoint import CheckpointFormat, rng_from_json, rng_to_json, space_fingerprint
from trials.searchspace import SearchSpace

if TYPE_CHECKING:
    import torch

CHECKPOINT = CheckpointFormat("PPOTuner", 1)
EMBEDDING_SIZE = 32
HIDDEN_SIZE = 64

_INT_ARGS = ("trials_per_update", "epochs_per_update", "minibatch_size")
_POSITIVE_ARGS = ("lr", "max_grad_norm", "cliprange")
_NON_NEGATIVE_ARGS = ("ent_coef", "vf_coef")
_UNIT_ARGS = ("gamma", "lam")


@dataclass
class _Sample:
    """One proposed architecture: what it was sampled with, and (once finished) its reward."""

    actions: Actions
    masks: tuple[int, ...]  # per step, a bit per allowed action
    logps: tuple[float, ...]
    values: tuple[float, ...]
    signed: float | None = None  # the result, negated for minimize; None: failed or not finished
    parameter_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "actions": list(self.actions),
            "masks": [format(m, "x") for m in self.masks],
            "logps": list(self.logps),
            "values": list(self.values),
            "signed": self.signed,
            "parameter_id": self.parameter_id,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> _Sample:
        return cls(
            tuple(int(a) for a in obj["actions"]),
            tuple(int(m, 16) for m in obj["masks"]),
            tuple(float(x) for x in obj["logps"]),
            tuple(float(x) for x in obj["values"]),
            None if obj["signed"] is None else float(obj["signed"]),
            None if obj.get("parameter_id") is None else int(obj["parameter_id"]),
        )


@dataclass
class _Ranks:
    """Every finite result so far, sorted; a result's reward is its centred centile rank among them."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        bisect.insort(self.values, value)

    def reward(self, value: float | None) -> float:
        """In about [-1.7, 1.7] with unit variance; 0 (the median) for no result."""
        count = len(self.values)
        if value is None or count < 2:
            return 0.0
        centile = (
            (bisect.bisect_left(self.values, value) + bisect.bisect_right(self.values, value)) / 2 / count
        )
        return (centile - 0.5) * math.sqrt(12)


class PPOTuner(Tuner):
    """Proximal Policy Optimization over layer choices, input choices and categorical hyper-parameters.

    Options as NNI's PPO tuner (``optimize_mode`` is required); see the module docstring for the
    defaults that differ and why. ``seed`` makes the sequence reproducible.
    """

    def __init__(
        self,
        optimize_mode: str,
        trials_per_update: int = 10,
        epochs_per_update: int = 4,
        minibatch_size: int = 4,
        ent_coef: float = 0.01,
        lr: float = 0.01,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        gamma: float = 0.99,
        lam: float = 0.95,
        cliprange: float = 0.2,
        seed: int | None = None,
    ) -> None:
        args = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.validate_class_args(**args)
        self.optimize_mode = optimize_mode
        self.trials_per_update = trials_per_update
        self.epochs_per_update = epochs_per_update
        self.minibatch_size = minibatch_size
        self.ent_coef = float(ent_coef)
        self.lr = float(lr)
        self.vf_coef = float(vf_coef)
        self.max_grad_norm = float(max_grad_norm)
        self.gamma = float(gamma)
        self.lam = float(lam)
        self.cliprange = float(cliprange)
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self._torch = _import_torch()
        self._space: SearchSpace | None = None
        self._fingerprint: str | None = None
        self._actions: ActionSpace | None = None
        self._seen: SeenSequences | None = None
        self._policy: Any = None
        self._optimizer: Any = None
        self._rng = random.Random(self.seed)
        self._pending: dict[int, _Sample] = {}
        self._finished: list[_Sample] = []
        self._ranks = _Ranks()
        self._updates = 0
        self._weights_blob: str | None = None

    @classmethod
    def validate_class_args(cls, **class_args: Any) -> None:
        check_optimize_mode(class_args.get("optimize_mode"))
        for name in _INT_ARGS:
            value = class_args.get(name, 1)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 99_999:
                raise TunerError(
                    f"tuner.classArgs.{name}: must be a whole number from 1 to 99999, got {value!r}"
                )
        if class_args.get("minibatch_size", 1) > class_args.get("trials_per_update", 10):
            raise TunerError(
                "tuner.classArgs.minibatch_size: the number of minibatches cannot exceed trials_per_update "
                f"({class_args.get('trials_per_update', 10)}), got {class_args['minibatch_size']}"
            )
        for name, low_ok, high in (
            *((n, False, None) for n in _POSITIVE_ARGS),
            *((n, True, None) for n in _NON_NEGATIVE_ARGS),
            *((n, True, 1.0) for n in _UNIT_ARGS),
        ):
            if name not in class_args:
                continue
            value = class_args[name]
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            ok = ok and (value >= 0 if low_ok else value > 0) and (high is None or value <= high)
            if not ok:
                allowed = (
                    "a number > 0"
                    if not low_ok
                    else "a number >= 0"
                    if high is None
                    else "a number in [0, 1]"
                )
                raise TunerError(f"tuner.classArgs.{name}: must be {allowed}, got {value!r}")
        seed = class_args.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TunerError(f"tuner.classArgs.seed: must be a whole number or null, got {seed!r}")

    @property
    def updates(self) -> int:
        """How many times the policy has been trained (one batch of ``trials_per_update`` each)."""
        return self._updates

    # -- Tuner -----------------------------------------------------------------------------------
    def update_search_space(self, space: SearchSpace) -> None:
        actions = ActionSpace(space, "PPO")
        fingerprint = space_fingerprint(space)
        self._space = space
        if fingerprint == self._fingerprint:
            return
        self._fingerprint = fingerprint
        self._actions = actions
        self._seen = SeenSequences(actions)
        self._pending, self._finished = {}, []
        self._ranks = _Ranks()
        self._build(actions)

    def generate_parameters(self, parameter_id: int) -> Parameters:
        if self._actions is None or self._seen is None:
            raise TunerError("PPOTuner: update_search_space must come before generate_parameters")
        if self._seen.exhausted():
            raise NoMoreTrials(
                f"all {self._actions.size} architectures of the search space have been proposed"
            )
        sample = self._sample() if self._actions.length else _Sample((), (), (), ())
        self._seen.add(sample.actions)
        self._pending[parameter_id] = sample
        return self._actions.decode(sample.actions)

    def receive_trial_result(self, parameter_id: int, parameters: Parameters, value: float) -> None:
        signed = self._signed(value)
        if signed is not None:
            self._ranks.add(signed)
        sample = self._pending.pop(parameter_id, None)
        if sample is None:
            late = next((s for s in self._finished if s.parameter_id == parameter_id), None)
            if late is not None and late.signed is None:
                late.signed = signed
            else:
                self._remember(parameters)
            return
        sample.signed, sample.parameter_id = signed, parameter_id
        self._finish(sample)

    def trial_end(self, parameter_id: int, success: bool) -> None:
        sample = self._pending.pop(parameter_id, None)
        if sample is None:
            return
        sample.parameter_id = parameter_id
        self._finish(sample)

    def import_data(self, records: list[dict[str, Any]]) -> None:
        """Earlier results count as seen, and are learned from as if this policy had sampled them."""
        for record in records:
            if not isinstance(record, Mapping):
                continue
            sequence = self._encode(record.get("parameter"))
            if sequence is None or self._seen is None:
                continue
            self._seen.add(sequence)
            signed = self._signed(record.get("value"))
            if signed is None:
                continue
            self._ranks.add(signed)
            sample = self._evaluate(sequence)
            sample.signed = signed
            self._finish(sample)

    def save_checkpoint(self) -> dict[str, Any]:
        torch = self._torch
        if self._weights_blob is None and self._policy is not None:
            buffer = io.BytesIO()
            torch.save(
                {"policy": self._policy.state_dict(), "optimizer": self._optimizer.state_dict()}, buffer
            )
            self._weights_blob = base64.b64encode(buffer.getvalue()).decode()
        return CHECKPOINT.envelope(
            seed=self.seed,
            space=self._fingerprint,
            weights=self._weights_blob,
            rng=rng_to_json(self._rng),
            pending={str(pid): s.to_json() for pid, s in self._pending.items()},
            finished=[s.to_json() for s in self._finished],
            seen=[list(seq) for seq in self._seen] if self._seen is not None else [],
            ranks=self._ranks.values,
            updates=self._updates,
        )

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        state = CHECKPOINT.open(state)
        CHECKPOINT.check_space(state, self._fingerprint)
        assert self._actions is not None  # a fingerprint comes with the space's actions
        torch = self._torch
        with CHECKPOINT.reading(RuntimeError):  # torch.load of damaged weights raises RuntimeError
            seed = int(state["seed"])
            saved = None
            if state["weights"] is not None:
                saved = torch.load(io.BytesIO(base64.b64decode(state["weights"])), weights_only=True)
            rng = rng_from_json(state["rng"])
            pending = {int(pid): _Sample.from_json(s) for pid, s in state["pending"].items()}
            finished = [_Sample.from_json(obj) for obj in state["finished"]]
            seen = SeenSequences(self._actions)
            for sequence in state["seen"]:
                seen.add(tuple(int(a) for a in sequence))
            ranks = _Ranks(sorted(float(v) for v in state["ranks"]))
            updates = int(state["updates"])
            if saved is not None and self._policy is not None:
                self._policy.load_state_dict(saved["policy"])
                self._optimizer.load_state_dict(saved["optimizer"])
        self.seed, self._rng = seed, rng
        self._pending, self._finished, self._seen, self._ranks = pending, finished, seen, ranks
        self._updates = updates
        self._weights_blob = state["weights"]

    # -- policy ----------------------------------------------------------------------------------
    def _build(self, actions: ActionSpace) -> None:
        torch = self._torch
        self._rng = random.Random(self.seed)
        self._updates = 0
        self._weights_blob = None
        self._policy = self._optimizer = None
        if not actions.length:
            return
        with torch.random.fork_rng(devices=[]), _one_thread(torch):
            torch.manual_seed(self.seed)
            self._policy = _make_policy(torch, actions.widths)
        self._optimizer = torch.optim.Adam(self._policy.parameters(), lr=self.lr, eps=1e-5)

    def _sample(self) -> _Sample:
        """Draw one unseen architecture from the current policy, step by step.

        The loop only needs each step's logits (one LSTM cell each); the log-probabilities and
        values kept for training are then computed in one pass, exactly as training computes them.
        """
        torch = self._torch
        assert self._actions is not None and self._seen is not None
        policy = self._policy
        prefix: list[int] = []
        masks: list[int] = []
        state = None
        token = 0
        with torch.no_grad(), _one_thread(torch):
            for t in range(self._actions.length):
                logits, state = policy.step(token, t, state)
                allowed = self._seen.open_actions(tuple(prefix))
                action = _draw(self._rng, [logits[a] for a in allowed])
                action = allowed[action]
                prefix.append(action)
                masks.append(sum(1 << a for a in allowed))
                token = policy.token(t, action)
        return self._evaluate(tuple(prefix), tuple(masks))

    def _evaluate(self, sequence: Actions, masks: tuple[int, ...] | None = None) -> _Sample:
        """The sample of ``sequence`` under the current policy (``masks``: structural if not given)."""
        torch = self._torch
        assert self._actions is not None
        if masks is None:
            masks = tuple(
                sum(1 << a for a in self._actions.allowed(sequence[:t])) for t in range(len(sequence))
            )
        with torch.no_grad(), _one_thread(torch):
            logp, _, values = self._policy.evaluate(
                torch.tensor([sequence]), _mask_tensor(torch, [masks], self._actions.widths)
            )
        return _Sample(sequence, masks, tuple(logp[0].tolist()), tuple(values[0].tolist()))

    def _finish(self, sample: _Sample) -> None:
        if self._policy is None:  # a space with nothing to decide: nothing to learn
            return
        self._finished.append(sample)
        while len(self._finished) >= self.trials_per_update:
            batch, self._finished = (
                self._finished[: self.trials_per_update],
                self._finished[self.trials_per_update :],
            )
            with _one_thread(self._torch):
                self._update(batch)

    def _update(self, batch: list[_Sample]) -> None:
        """PPO epochs on one batch of finished samples (ppo2's losses, GAE over the steps)."""
        torch = self._torch
        assert self._actions is not None
        widths = self._actions.widths
        steps = len(widths)
        rewards = torch.tensor([self._ranks.reward(s.signed) for s in batch])
        old_values = torch.tensor([s.values for s in batch])
        old_logps = torch.tensor([s.logps for s in batch])
        advantages = torch.zeros_like(old_values)
        last = torch.zeros(len(batch))
        for t in reversed(range(steps)):
            if t == steps - 1:
                delta = rewards - old_values[:, t]
            else:
                delta = self.gamma * old_values[:, t + 1] - old_values[:, t]
            last = delta + self.gamma * self.lam * last
            advantages[:, t] = last
        returns = advantages + old_values
        actions = torch.tensor([s.actions for s in batch])
        masks = _mask_tensor(torch, [s.masks for s in batch], widths)
        chunks = min(self.minibatch_size, len(batch))
        self._policy.train()
        for _ in range(self.epochs_per_update):
            order = list(range(len(batch)))
            self._rng.shuffle(order)
            for part in torch.tensor_split(torch.tensor(order), chunks):
                logp, entropy, values = self._policy.evaluate(actions[part], masks[part])
                adv = advantages[part]
                scale = adv if adv.numel() > 1 else advantages  # one value alone would normalize to 0
                adv = (adv - scale.mean()) / (scale.std(unbiased=False) + 1e-8)
                ratio = torch.exp(logp - old_logps[part])
                clipped = torch.clamp(ratio, 1.0 - self.cliprange, 1.0 + self.cliprange)
                pg_loss = torch.max(-adv * ratio, -adv * clipped).mean()
                old_v = old_values[part]
                v_clipped = old_v + torch.clamp(values - old_v, -self.cliprange, self.cliprange)
                target = returns[part]
                vf_loss = 0.5 * torch.max((values - target) ** 2, (v_clipped - target) ** 2).mean()
                loss = pg_loss - self.ent_coef * entropy.mean() + self.vf_coef * vf_loss
                self._optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self._policy.parameters(), self.max_grad_norm)
                self._optimizer.step()
        self._policy.eval()
        self._updates += 1
        self._weights_blob = None

    # -- helpers ---------------------------------------------------------------------------------
    def _signed(self, value: Any) -> float | None:
        return signed_score(value, self.optimize_mode)

    def _encode(self, parameters: Any) -> Actions | None:
        if self._actions is None or self._space is None:
            return None
        try:
            return self._actions.encode(parameters, self._space)
        except (ValueError, TypeError):
            return None

    def _remember(self, parameters: Any) -> None:
        sequence = self._encode(parameters)
        if sequence is not None and self._seen is not None:
            self._seen.add(sequence)


@contextlib.contextmanager
def _one_thread(torch: Any) -> Iterator[None]:
    """Run tiny tensor work on one thread, then restore the process's setting.

    Trials compete for the cores; torch's thread pool on tensors this small only adds
    hand-offs, and under load it made the policy's work ten times slower.
    """
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise TunerError("tuner PPO: needs PyTorch; install torch") from None
    return torch


def _draw(rng: random.Random, logits: list[float]) -> int:
    """An index drawn with probability softmax(logits)."""
    top = max(logits)
    weights = [math.exp(x - top) for x in logits]
    point = rng.random() * sum(weights)
    for index, weight in enumerate(weights):
        point -= weight
        if point < 0:
            return index
    return len(weights) - 1


def _mask_tensor(torch: Any, masks: list[tuple[int, ...]], widths: tuple[int, ...]) -> torch.Tensor:
    """(samples, steps, max width) booleans: which actions each step allowed."""
    most = max(widths)
    rows = [[[bool(m >> a & 1) for a in range(most)] for m in sample] for sample in masks]
    return torch.tensor(rows, dtype=torch.bool)


def _make_policy(torch: Any, widths: tuple[int, ...]) -> Any:
    """An LSTM over the previous action's embedding, with a logits head and a value head.

    Tokens: 0 is the start; action ``a`` of step ``t`` is ``1 + offset[t] + a``, so every
    step has its own tokens and its own slice of the logits head.
    """
    nn = torch.nn

    class Policy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            offsets = [0]
            for width in widths:
                offsets.append(offsets[-1] + width)
            self.offsets = offsets
            self.widths = widths
            total = offsets[-1]
            most = max(widths)
            self.embedding = nn.Embedding(total + 1, EMBEDDING_SIZE)
            self.lstm = nn.LSTM(EMBEDDING_SIZE, HIDDEN_SIZE, batch_first=True)
            self.logits = nn.Linear(HIDDEN_SIZE, total)
            self.value = nn.Linear(HIDDEN_SIZE, 1)
            index = [[offsets[t] + min(a, width - 1) for a in range(most)] for t, width in enumerate(widths)]
            self.register_buffer("gather_index", torch.tensor(index), persistent=False)
            self.register_buffer("offset_tensor", torch.tensor(offsets[:-1]), persistent=False)

        def token(self, step: int, action: int) -> int:
            return 1 + self.offsets[step] + action

        def step(self, token: int, step: int, state: Any) -> tuple[list[float], Any]:
            """The logits of ``step`` (as floats) after reading ``token``; one LSTM cell, no graph."""
            lstm = self.lstm
            if state is None:
                zeros = torch.zeros(1, HIDDEN_SIZE)
                state = (zeros, zeros)
            state = torch.lstm_cell(
                self.embedding.weight[token : token + 1],
                state,
                lstm.weight_ih_l0,
                lstm.weight_hh_l0,
                lstm.bias_ih_l0,
                lstm.bias_hh_l0,
            )
            start = self.offsets[step]
            head = self.logits
            logits = torch.nn.functional.linear(
                state[0][0],
                head.weight[start : start + self.widths[step]],
                head.bias[start : start + self.widths[step]],
            )
            return logits.tolist(), state

        def evaluate(self, actions: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, ...]:
            """Log-probabilities of ``actions`` (samples, steps), entropies and values per step."""
            tokens = 1 + self.offset_tensor + actions
            inputs = torch.cat([torch.zeros_like(tokens[:, :1]), tokens[:, :-1]], dim=1)
            out, _ = self.lstm(self.embedding(inputs))
            every = self.logits(out)
            index = self.gather_index.unsqueeze(0).expand(len(actions), -1, -1)
            logits = every.gather(2, index).masked_fill(~masks, -math.inf)
            log_probs = torch.log_softmax(logits, dim=2)
            logp = log_probs.gather(2, actions.unsqueeze(2)).squeeze(2)
            probs = log_probs.exp()
            entropy = -(probs * log_probs.masked_fill(~masks, 0.0)).sum(dim=2)
            return logp, entropy, self.value(out).squeeze(2)

    policy = Policy()
    policy.eval()
    return policy
