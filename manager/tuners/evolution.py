"""Regularized (aging) evolution, Real et al. 2019, run asynchronously.

The population is the last ``population_size`` trials that returned a result, oldest first.
To propose, the tuner samples ``sample_size`` members (with replacement, as in the paper), takes
the best as the parent and mutates one decision; when a result comes back the child joins the
population and the oldest member leaves, whatever its score (the "aging" that regularizes:
a lucky score does not live forever). There is no generation barrier: every call proposes
at once from the population as it stands, so any number of trials run in parallel.

Until the population holds ``sample_size`` members, proposals are random (by the Random
tuner, so never repeated). NNI first spent ``population_size`` (100) trials on random samples;
starting after ``sample_size`` puts evolution to work at the budgets users run. The defaults,
``population_size`` 50 and ``sample_size`` 10 (NNI: 100 and 25), were chosen on NAS-Bench-201
with ``bench/tuners.py``: after 30 trials 90.97 against 90.76 for 100/25 (60 seeds), the same
from 100 trials on.

A mutation changes exactly one key, so a child always differs from its parent: a layer choice
or ``choice`` takes another candidate, an input choice swaps one chosen input for an unchosen
one (or, with ``n_chosen: null``, adds or drops one), ``randint`` and the continuous types move
by a random step within their range (a tenth of the range, or half the sigma of a normal type).
A child already proposed is mutated again (a second key, then more); if every neighbour has
been tried, a random unseen architecture is proposed instead, and ``NoMoreTrials`` comes only
when the space is exhausted. Failed trials, and results that are not finite, never join the
population.

With several objectives (:meth:`update_objectives`) a result is the trial's metric dict and the
order is NSGA-II's (:mod:`manager.tuners.ranking`): each member's constrained non-dominated rank,
then its crowding distance, computed over the population as it stands. The tournament's winner
is the sample's best by (rank, -crowding). The population still ages: when it overflows, the
oldest member leaves whatever its rank, as with one objective (the regularization of Real et
al.; the daemon's Pareto front keeps every trial, so an old Pareto-optimal architecture is not
lost, it only stops being a parent). Without objectives the single-objective code path runs
unchanged.
"""

from __future__ import annotations

import json
import math
import random
from collections import deque
from collections.abc import Mapping
from typing import Any

from manager.tuners.base import Parameters, Tuner, TunerError, check_optimize_mode, signed_score
from manager.tuners.checkpoint import CheckpointFormat, rng_from_json, rng_to_json
from manager.tuners.random import RandomTuner
from manager.tuners.ranking import standings
from trials.searchspace import (
    ChoiceSpec,
    HyperParameterSpec,
    InputChoiceSpec,
    InputDecision,
    LayerChoiceSpec,
    LayerDecision,
    SearchSpace,
    architecture_to_json,
)

CHECKPOINT = CheckpointFormat("RegularizedEvolutionTuner", 1)
#: Mutation attempts with one changed key before a second key is changed too, and so on.
ATTEMPTS_PER_DEPTH = 16
#: A bounded number moves by about this fraction of its range; a normal one by five times this of its sigma.
STEP_FRACTION = 0.1


class RegularizedEvolutionTuner(Tuner):
    """Aging evolution with tournament selection; see the module docstring."""

    multi_objective = True

    def __init__(
        self,
        optimize_mode: str = "maximize",
        population_size: int = 50,
        sample_size: int = 10,
        seed: int | None = None,
    ) -> None:
        self.validate_class_args(
            optimize_mode=optimize_mode, population_size=population_size, sample_size=sample_size, seed=seed
        )
        self.optimize_mode = optimize_mode
        self.population_size = population_size
        self.sample_size = sample_size
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self._rng = random.Random(self.seed)
        self._random = RandomTuner(seed=self._rng.randrange(2**31))
        self._space: SearchSpace | None = None
        #: (architecture, score): a float, or with objectives the metric dict of the result
        self._population: deque[tuple[Parameters, Any]] = deque()
        self._proposed: set[str] = set()

    @classmethod
    def validate_class_args(cls, **class_args: Any) -> None:
        check_optimize_mode(class_args.get("optimize_mode", "maximize"))
        for name in ("population_size", "sample_size"):
            value = class_args.get(name, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TunerError(f"tuner.classArgs.{name}: must be a whole number >= 1, got {value!r}")
        population, sample = class_args.get("population_size", 50), class_args.get("sample_size", 10)
        if sample > population:
            raise TunerError(
                f"tuner.classArgs.sample_size: must not exceed population_size ({population}), got {sample}"
            )
        seed = class_args.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TunerError(f"tuner.classArgs.seed: must be a whole number or null, got {seed!r}")

    # -- Tuner -----------------------------------------------------------------------------------
    def update_search_space(self, space: SearchSpace) -> None:
        self._random.update_search_space(space)
        if self._space is not None and space.to_json() != self._space.to_json():
            self._population.clear()
            self._proposed.clear()
        self._space = space

    def generate_parameters(self, parameter_id: int) -> Parameters:
        if self._space is None:
            raise TunerError(
                "RegularizedEvolutionTuner: update_search_space must come before generate_parameters"
            )
        child = None
        if len(self._population) >= self.sample_size:
            child = self._mutate_unseen(self._tournament())
        if child is None:
            child = self._random_unseen(parameter_id)
        else:
            self._random.import_data([{"parameter": child}])
        self._proposed.add(self._identity(child))
        return child

    def receive_trial_result(self, parameter_id: int, parameters: Parameters, value: Any) -> None:
        self._admit(parameters, value)

    def import_data(self, records: list[dict[str, Any]]) -> None:
        """Earlier results join the population in their order; their architectures count as proposed."""
        for record in records:
            if not isinstance(record, Mapping):
                continue
            parameters = self._canonical(record.get("parameter"))
            if parameters is None:
                continue
            self._proposed.add(self._identity(parameters))
            self._random.import_data([{"parameter": parameters}])
            self._admit(parameters, record.get("value"))

    def save_checkpoint(self) -> dict[str, Any]:
        return CHECKPOINT.envelope(
            seed=self.seed,
            rng=rng_to_json(self._rng),
            random=self._random.save_checkpoint(),
            population=[[parameters, score] for parameters, score in self._population],
            proposed=sorted(self._proposed),
        )

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        state = CHECKPOINT.open(state)
        with CHECKPOINT.reading():
            seed = int(state["seed"])
            rng = rng_from_json(state["rng"])
            population = deque((dict(p), _stored_score(score)) for p, score in state["population"])
            proposed = {str(identity) for identity in state["proposed"]}
            fallback = RandomTuner()
            if self._space is not None:
                fallback.update_search_space(self._space)
            fallback.load_checkpoint(state["random"])  # a TunerError of its own if damaged
        self.seed, self._rng, self._random = seed, rng, fallback
        self._population, self._proposed = population, proposed

    # -- evolution -------------------------------------------------------------------------------
    def _admit(self, parameters: Any, value: Any) -> None:
        if self.objectives is not None:
            self._admit_result(parameters, value)
            return
        score = signed_score(value, self.optimize_mode)
        canonical = self._canonical(parameters)
        if score is None or canonical is None:
            return
        self._population.append((canonical, score))
        while len(self._population) > self.population_size:
            self._population.popleft()

    def _tournament(self) -> Parameters:
        if self.objectives is not None:
            return self._pareto_tournament()
        members = [self._rng.choice(self._population) for _ in range(self.sample_size)]
        return max(members, key=lambda member: member[1])[0]

    # -- several objectives (NSGA-II order) ---------------------------------------------------------
    def _admit_result(self, parameters: Any, value: Any) -> None:
        """A metric dict joins with the metrics the objectives name; the oldest member leaves."""
        assert self.objectives is not None
        canonical = self._canonical(parameters)
        if canonical is None or not isinstance(value, Mapping) or self.objectives.missing(value):
            return
        metrics = {name: float(value[name]) for name in self.objectives.metrics}
        if not all(math.isfinite(number) for number in metrics.values()):
            return
        self._population.append((canonical, metrics))
        while len(self._population) > self.population_size:
            self._population.popleft()

    def _pareto_tournament(self) -> Parameters:
        """The sample's best by (constrained rank, -crowding) over the whole population."""
        assert self.objectives is not None
        ranked = standings(self.objectives, [score for _, score in self._population])
        sample = [self._rng.randrange(len(self._population)) for _ in range(self.sample_size)]
        return self._population[min(sample, key=lambda i: ranked[i].key)][0]

    def _mutate_unseen(self, parent: Parameters) -> Parameters | None:
        assert self._space is not None
        mutable = [choice for choice in self._space if _can_mutate(choice)]
        for depth in range(1, len(mutable) + 1):
            for _ in range(ATTEMPTS_PER_DEPTH):
                child = dict(parent)
                for choice in self._rng.sample(mutable, depth):
                    child[choice.key] = _mutate(choice, child[choice.key], self._rng)
                if self._identity(child) not in self._proposed:
                    return child
        return None

    def _random_unseen(self, parameter_id: int) -> Parameters:
        """A random architecture never proposed (Random never repeats; imported ones are marked)."""
        while True:
            candidate = self._random.generate_parameters(parameter_id)  # NoMoreTrials when exhausted
            if self._identity(candidate) not in self._proposed:
                return candidate

    def _canonical(self, parameters: Any) -> Parameters | None:
        """Full form with input indices sorted; None for something that does not fit the space."""
        if self._space is None:
            return None
        try:
            decisions = self._space.parse_architecture(parameters)
        except (ValueError, TypeError):
            return None
        for key, decision in decisions.items():
            if isinstance(decision, InputDecision):
                order = sorted(range(len(decision.indices)), key=lambda i: decision.indices[i])
                decisions[key] = InputDecision(
                    tuple(decision.indices[i] for i in order), tuple(decision.names[i] for i in order)
                )
        return architecture_to_json(decisions)

    def _identity(self, parameters: Parameters) -> str:
        """One string per architecture, whatever the order of its keys or inputs."""
        parts = []
        assert self._space is not None
        for choice in self._space:
            value = parameters[choice.key]
            if isinstance(choice, LayerChoiceSpec):
                parts.append(value["_idx"])
            elif isinstance(choice, InputChoiceSpec):
                parts.append(sorted(value["_idx"]))
            else:
                parts.append(value)
        return json.dumps(parts, default=repr)


# -- mutation of one decision --------------------------------------------------------------------


def _can_mutate(choice: ChoiceSpec) -> bool:
    if isinstance(choice, LayerChoiceSpec):
        return len(choice.candidates) > 1
    if isinstance(choice, InputChoiceSpec):
        n, k = len(choice.candidates), choice.n_chosen
        return n > 0 if k is None else 0 < k < n
    if choice.type == "choice":
        return len(choice.args) > 1
    if choice.type == "randint":
        return int(choice.args[1]) - int(choice.args[0]) > 1
    return True


def _mutate(choice: ChoiceSpec, value: Any, rng: random.Random) -> Any:
    """A value for ``choice`` different from ``value`` (``_can_mutate`` must hold)."""
    if isinstance(choice, LayerChoiceSpec):
        index = rng.choice([i for i in range(len(choice.candidates)) if i != value["_idx"]])
        return LayerDecision(index, choice.candidates[index]).to_json()
    if isinstance(choice, InputChoiceSpec):
        chosen = set(value["_idx"])
        if choice.n_chosen is None:
            chosen ^= {rng.randrange(len(choice.candidates))}
        else:
            chosen.remove(rng.choice(sorted(chosen)))
            chosen.add(
                rng.choice([i for i in range(len(choice.candidates)) if i not in chosen | set(value["_idx"])])
            )
        indices = tuple(sorted(chosen))
        return InputDecision(indices, tuple(choice.candidates[i] for i in indices)).to_json()
    if choice.type == "choice":
        return rng.choice([option for option in choice.args if option != value])
    return _perturb(choice, value, rng)


def _perturb(choice: HyperParameterSpec, value: Any, rng: random.Random) -> Any:
    """A numeric value moved by a random step, kept in range, and never equal to ``value``."""
    kind, args = choice.type, choice.args
    if kind == "randint":
        low, high = int(args[0]), int(args[1]) - 1
        scale = max(1, round(STEP_FRACTION * (high - low + 1)))
        while True:
            step = rng.randint(-scale, scale)
            moved = min(max(int(value) + step, low), high)
            if moved != value:
                return moved
    log = kind in ("loguniform", "qloguniform", "lognormal", "qlognormal")
    bounded = kind in ("uniform", "quniform", "loguniform", "qloguniform")
    from_axis = math.exp if log else float
    if bounded:
        low, high = (math.log(args[0]), math.log(args[1])) if log else (float(args[0]), float(args[1]))
        sigma = STEP_FRACTION * (high - low)
    else:
        low, high = -math.inf, math.inf
        sigma = 5 * STEP_FRACTION * args[1]
    current = float(value)
    if log:  # on the log axis; a q-type may have rounded down to 0
        current = math.log(value) if value > 0 else (low if bounded else float(args[0]))
    for attempt in range(64):
        point = current + rng.gauss(0.0, sigma * (1 + attempt))
        point = min(max(point, low), high)
        moved: Any = from_axis(min(point, 709.0) if log else point)
        if kind.startswith("q"):
            q = args[-1]
            steps = round(moved / q)
            moved = int(steps) * q if isinstance(q, int) else steps * q
        if bounded:  # also where exp(log(high)) lands a hair above high
            moved = min(max(moved, args[0]), args[1])
        if moved != value:
            return moved
    return value  # a range too narrow to move in: the caller's other keys still change


def _stored_score(score: Any) -> Any:
    """A checkpoint's score: a float, or (several objectives) a dict of floats."""
    if isinstance(score, dict):
        return {str(name): float(number) for name, number in score.items()}
    return float(score)
