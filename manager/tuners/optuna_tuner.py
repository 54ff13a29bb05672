"""Optuna's samplers (TPE, GP, NSGA-II, QMC, CMA-ES, random) as a nasctl tuner, through ask and tell.

The well-kept library does the searching; this module maps our space to Optuna distributions
(:mod:`manager.tuners.optuna_space`), keeps one Optuna trial per parameter id, and adds what the
Tuner contract promises on top of Optuna:

- **Asynchronous**: ``generate_parameters`` asks, ``receive_trial_result`` tells the value (or
  the objectives' values), ``trial_end(success=False)`` without a result tells FAIL; results may
  come in any order and after the trial's end. A trial that succeeded without a result stays
  running for Optuna (TPE's constant liar then counts it as pending).
- **Never twice**: an architecture already proposed is asked again once (the repeat is told
  FAIL, which no sampler learns from; :data:`MAX_REPEATS`); if Optuna repeats itself again, an
  unseen neighbour of its proposal is proposed instead (one parameter changed, then two, ...),
  enqueued in the study so the sampler learns from its result; when no neighbour is unseen, an
  unseen random architecture; ``NoMoreTrials`` when a finite space is exhausted. Multivariate
  TPE on NAS-Bench-201 repeats itself from about 100 trials on: the neighbour keeps the search
  where TPE wants it (a random fallback there made TPE's late trials random search).
- **Deterministic and resumable**: before every ask the sampler's generators are reseeded from
  ``(seed, number of trials in the study)``, so what it proposes depends only on the seed and the
  study's trials, not on its generators' history. The checkpoint holds the study's trials
  (parameters, state, values, attributes; no timestamps) and is replayed into a new in-memory
  study on resume (``study.add_trial``): a resumed TPE, NSGA-II, QMC or random study continues
  exactly as the uninterrupted one would have (GP's kernel fit warm-starts from its previous
  one, which a resumed sampler lacks: the same in law, not bit for bit). The repeats told FAIL
  stay in the study (they count in the seeding): at 300 NAS-Bench-201 trials the study holds
  about 650 trials, a checkpoint of 160 KiB written in 3 ms.
- **Several objectives**: the study takes the objectives' directions; a constraint
  ``metric <= bound`` is Optuna's constraint ``metric - bound`` (feasible when <= 0).

``optuna`` is an optional dependency (``pip install 'nasctl[optuna]'``): this module is imported
only when an experiment names the tuner, and a missing optuna is refused at create time.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import json
import math
import random
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from manager.tuners.base import Parameters, Tuner, TunerError, check_optimize_mode
from manager.tuners.checkpoint import CheckpointFormat, space_fingerprint
from manager.tuners.random import RandomTuner
from trials.errors import SearchSpaceError
from trials.messages import did_you_mean, one_line
from trials.objectives import Objectives
from trials.searchspace import SearchSpace, architecture_to_json

try:
    import optuna
except ImportError:  # the optional extra is missing: refused in validate_class_args
    optuna = None
else:
    try:  # a private class of Optuna's: without it each ask builds its sampler afresh (same outcome)
        from optuna.samplers._lazy_random_state import LazyRandomState
    except ImportError:
        LazyRandomState = None

    from manager.tuners import optuna_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # Optuna's own logger: no INFO per trial

CHECKPOINT = CheckpointFormat("OptunaTuner", 1)
INSTALL = "tuner Optuna needs optuna: pip install 'nasctl[optuna]'"
#: Optuna's sampler class per ``sampler`` name.
SAMPLERS = {
    "TPE": "TPESampler",
    "GP": "GPSampler",
    "NSGAII": "NSGAIISampler",
    "QMC": "QMCSampler",
    "CmaEs": "CmaEsSampler",
    "Random": "RandomSampler",
}
#: What each sampler needs beyond optuna.
NEEDS = {"GP": ("torch", "scipy"), "QMC": ("scipy",), "CmaEs": ("cmaes",)}
#: Samplers that search numbers only (their categoricals would be sampled at random).
NUMERIC_ONLY = ("QMC", "CmaEs")
#: Samplers of one objective only.
SINGLE_OBJECTIVE = ("CmaEs",)
#: Our defaults per sampler, before the user's ``sampler_args``: multivariate TPE models the
#: choices jointly (NAS choices interact); constant liar keeps concurrent asks apart.
DEFAULT_ARGS: dict[str, dict[str, Any]] = {"TPE": {"multivariate": True, "constant_liar": True}}
#: Constructor arguments that are not JSON (callables, samplers, trials) or that the tuner sets.
NOT_PASSED = frozenset(
    (
        "seed",
        "constraints_func",
        "gamma",
        "weights",
        "mutation",
        "crossover",
        "independent_sampler",
        "source_trials",
        "elite_population_selection_strategy",
        "child_generation_strategy",
        "after_trial_strategy",
    )
)
#: Asks that may repeat a proposed architecture before a neighbour of the repeat is proposed.
MAX_REPEATS = 1
#: Neighbours tried with one changed parameter before two are changed, and so on.
ATTEMPTS_PER_DEPTH = 16
_STATES = ("RUNNING", "COMPLETE", "FAIL")
#: How Optuna names a trial's constraint in its attributes (what ``Trial.set_constraint`` writes).
CONSTRAINT_PREFIX = "constraints:"
#: The constraint value of a metric that is NaN or infinite: violated, and still JSON.
WORST = 1e300


class OptunaTuner(Tuner):
    """Optuna's ``sampler`` driven through ask and tell; see the module docstring.

    ``sampler``: TPE (default), GP, NSGAII, Random on any space; QMC and CmaEs on spaces of
    numbers only (``uniform``, ``randint``, ...). ``sampler_args``: the sampler's constructor
    arguments (e.g. ``{"n_startup_trials": 20}``). ``seed`` makes the search reproducible.
    """

    multi_objective = True

    def __init__(
        self,
        sampler: str = "TPE",
        sampler_args: dict[str, Any] | None = None,
        seed: int | None = None,
        optimize_mode: str = "maximize",
    ) -> None:
        self.validate_class_args(
            sampler=sampler, sampler_args=sampler_args, seed=seed, optimize_mode=optimize_mode
        )
        self.sampler = sampler
        self.sampler_args = {**DEFAULT_ARGS.get(sampler, {}), **(sampler_args or {})}
        self.optimize_mode = optimize_mode
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self._space: SearchSpace | None = None
        self._axes: list[Any] = []
        self._distributions: dict[str, Any] = {}
        self._study: Any = None
        #: The study's sampler, kept between asks; None: build one at the next ask.
        self._live: Any = None
        self._random = RandomTuner(seed=self.seed)
        #: parameter id -> Optuna trial number, while Optuna waits for the trial's outcome
        self._open: dict[int, int] = {}
        self._proposed: set[str] = set()

    @classmethod
    def validate_class_args(cls, **class_args: Any) -> None:
        if optuna is None:
            raise TunerError(INSTALL)
        check_optimize_mode(class_args.get("optimize_mode", "maximize"))
        seed = class_args.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TunerError(f"tuner.classArgs.seed: must be a whole number or null, got {seed!r}")
        name = class_args.get("sampler", "TPE")
        if name not in SAMPLERS:
            raise TunerError(
                f"tuner.classArgs.sampler: unknown sampler {name!r}{did_you_mean(str(name), SAMPLERS)}; "
                f"allowed: {', '.join(SAMPLERS)}"
            )
        missing = [module for module in NEEDS.get(name, ()) if importlib.util.find_spec(module) is None]
        if missing:
            raise TunerError(
                f"tuner.classArgs.sampler: Optuna's {name} sampler needs {missing[0]}: pip install {missing[0]}"
            )
        args = class_args.get("sampler_args") or {}
        if not isinstance(args, Mapping):
            raise TunerError(
                f"tuner.classArgs.sampler_args: must be a mapping of argument names, got {args!r}"
            )
        accepted = sampler_arguments(name)
        for key in args:
            if key not in accepted:
                raise TunerError(
                    f"tuner.classArgs.sampler_args.{key}: Optuna's {name} sampler takes no argument {key!r}"
                    f"{did_you_mean(str(key), accepted)}; accepted: {', '.join(accepted)}"
                )
        try:
            _sampler(name, {**DEFAULT_ARGS.get(name, {}), **args}, 0)
        except Exception as exc:
            raise TunerError(
                f"tuner.classArgs.sampler_args: Optuna's {name} sampler refused them: {one_line(exc)}"
            ) from None

    # -- Tuner -----------------------------------------------------------------------------------
    def update_objectives(self, objectives: Objectives) -> None:
        if self.sampler in SINGLE_OBJECTIVE and len(objectives.objectives) > 1:
            raise TunerError(
                f"tuner.classArgs.sampler: Optuna's {self.sampler} searches one objective; use NSGAII or TPE"
            )
        self.objectives = objectives

    def update_search_space(self, space: SearchSpace) -> None:
        axes = optuna_space.axes_for(list(space), "Optuna")
        if self.sampler in NUMERIC_ONLY:
            for axis in axes:
                if any(
                    isinstance(d, optuna.distributions.CategoricalDistribution)
                    for d in axis.distributions.values()
                ):
                    raise SearchSpaceError(
                        f"search space: '{axis.key}': Optuna's {self.sampler} sampler searches numbers only "
                        f"(uniform, randint, ...), not {axis.choice.to_json()['_type']}"
                        "; use sampler TPE or GP"
                    )
        self._random.update_search_space(space)
        if self._space is not None and space.to_json() == self._space.to_json():
            return
        self._space, self._axes = space, axes
        self._distributions = {name: d for axis in axes for name, d in axis.distributions.items()}
        self._study, self._open, self._proposed = self._new_study(), {}, set()
        self._live = None

    def generate_parameters(self, parameter_id: int) -> Parameters:
        if self._study is None:
            raise TunerError("OptunaTuner: update_search_space must come before generate_parameters")
        study = self._study
        for _ in range(MAX_REPEATS + 1):
            trial = self._ask()
            architecture = self._decode(trial.params)
            identity = self._identity(architecture)
            if identity not in self._proposed:
                break
            with _quiet():
                study.tell(trial.number, state=optuna.trial.TrialState.FAIL)  # a repeat; learned from by none
        else:
            architecture = self._unseen_near(trial.params, parameter_id)
            identity = self._identity(architecture)
            study.enqueue_trial(self._encode(architecture))
            trial = self._ask()
        self._random.import_data([{"parameter": architecture}])
        self._proposed.add(identity)
        self._open[parameter_id] = trial.number
        return architecture

    def receive_trial_result(self, parameter_id: int, parameters: Parameters, value: Any) -> None:
        number = self._open.pop(parameter_id, None)
        if number is None or self._study is None:
            return
        values = self._values(value)
        with _quiet():
            if values is None:
                self._study.tell(number, state=optuna.trial.TrialState.FAIL)
                return
            constraints = self._constraints(value)
            if constraints:
                trial = _trial(self._study, number)
                for name, excess in constraints.items():
                    trial.set_constraint(name.removeprefix(CONSTRAINT_PREFIX), excess)
            self._study.tell(number, values if len(values) > 1 else values[0])

    def trial_end(self, parameter_id: int, success: bool) -> None:
        if success or self._study is None:
            return  # its result may still come
        number = self._open.pop(parameter_id, None)
        if number is not None:
            with _quiet():
                self._study.tell(number, state=optuna.trial.TrialState.FAIL)

    def import_data(self, records: list[dict[str, Any]]) -> None:
        """Earlier results join the study as finished trials; their architectures count as proposed."""
        if self._study is None:
            return
        for record in records:
            if not isinstance(record, Mapping) or self._space is None:
                continue
            try:
                decisions = self._space.parse_architecture(record.get("parameter"))
            except (ValueError, TypeError):
                continue
            architecture = architecture_to_json(decisions)
            self._proposed.add(self._identity(architecture))
            self._random.import_data([{"parameter": architecture}])
            values = self._values(record.get("value"))
            if values is not None:
                params = self._encode(architecture)
                distributions = {name: self._distributions[name] for name in params}
                attrs = self._constraints(record.get("value"))
                with _quiet():
                    self._study.add_trial(
                        optuna.trial.create_trial(
                            params=params, distributions=distributions, values=values, system_attrs=attrs
                        )
                    )

    def save_checkpoint(self) -> dict[str, Any]:
        trials = (
            [
                [trial.state.name, trial.params, trial.values, _kept_attrs(trial)]
                for trial in self._study.get_trials(deepcopy=False)
            ]
            if self._study is not None
            else []
        )
        return CHECKPOINT.envelope(
            seed=self.seed,
            space=space_fingerprint(self._space) if self._space is not None else None,
            trials=trials,
            study_attrs=_study_attrs(self._study) if self._study is not None else {},
            open={str(parameter_id): number for parameter_id, number in self._open.items()},
            proposed=sorted(self._proposed),
            random=self._random.save_checkpoint(),
        )

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        state = CHECKPOINT.open(state)
        fingerprint = space_fingerprint(self._space) if self._space is not None else None
        CHECKPOINT.check_space(state, fingerprint)
        with CHECKPOINT.reading(AttributeError, IndexError):
            seed = int(state["seed"])
            study = self._new_study()
            for name, value in dict(state["study_attrs"]).items():
                _set_study_attr(study, str(name), value)
            for state_name, params, values, attrs in state["trials"]:
                study.add_trial(self._frozen(state_name, dict(params), values, dict(attrs)))
            opened = {int(parameter_id): int(number) for parameter_id, number in dict(state["open"]).items()}
            proposed = {str(identity) for identity in state["proposed"]}
            fallback = RandomTuner()
            assert self._space is not None
            fallback.update_search_space(self._space)
            fallback.load_checkpoint(state["random"])
        self._live = None
        self.seed, self._study, self._open, self._proposed, self._random = (
            seed,
            study,
            opened,
            proposed,
            fallback,
        )

    def _unseen_near(self, params: Mapping[str, Any], parameter_id: int) -> Parameters:
        """An unseen architecture near Optuna's repeated proposal ``params``: one parameter changed,
        then two, ... (:data:`ATTEMPTS_PER_DEPTH` tries each); else an unseen random one."""
        rng = random.Random(_draw(self.seed, len(self._study.get_trials(deepcopy=False))))
        names = [name for name, d in self._distributions.items() if not d.single()]
        for depth in range(1, len(names) + 1):
            for _ in range(ATTEMPTS_PER_DEPTH):
                moved = optuna_space.neighbour(params, self._distributions, rng.sample(names, depth), rng)
                architecture = self._decode(moved)
                if self._identity(architecture) not in self._proposed:
                    return architecture
        return self._random.generate_parameters(parameter_id)  # NoMoreTrials when exhausted

    # -- Optuna -----------------------------------------------------------------------------------
    def _new_study(self) -> Any:
        if self.objectives is not None:
            directions = [objective.mode for objective in self.objectives.objectives]
        else:
            directions = [self.optimize_mode]
        with _quiet():
            return optuna.create_study(directions=directions, sampler=optuna.samplers.RandomSampler(seed=0))

    def _ask(self) -> Any:
        """One Optuna trial, from a sampler seeded by (seed, trials so far): see the module docstring.

        The sampler is kept between asks (its caches make an ask cheap: TPE's search space is not
        recomputed from every trial) and its generators are reseeded in place; a sampler whose
        generators are not found is built afresh for every ask instead, with the same outcome.
        """
        study = self._study
        draw = _draw(self.seed, len(study.get_trials(deepcopy=False)))
        if self._live is None or not _reseed(self._live, draw):
            # built afresh, then reseeded as a kept one is: resuming changes nothing
            self._live = _sampler(
                self.sampler, self.sampler_args, self.seed if self.sampler == "QMC" else draw
            )
            _reseed(self._live, draw)
        study.sampler = self._live
        with _quiet():
            return study.ask(self._distributions)

    def _frozen(self, state_name: str, params: dict[str, Any], values: Any, attrs: dict[str, Any]) -> Any:
        if state_name not in _STATES:
            raise ValueError(f"trial state {state_name!r}")
        trial_state = optuna.trial.TrialState[state_name]
        distributions = {name: self._distributions[name] for name in params}
        values = [float(v) for v in values] if values is not None else None
        with _quiet():
            return optuna.trial.create_trial(
                state=trial_state,
                params=params,
                distributions=distributions,
                values=values,
                system_attrs=attrs,
            )

    # -- mapping ------------------------------------------------------------------------------------
    def _decode(self, params: Mapping[str, Any]) -> Parameters:
        return {axis.key: axis.decode(params) for axis in self._axes}

    def _encode(self, architecture: Parameters) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for axis in self._axes:
            params.update(axis.encode(architecture[axis.key]))
        return params

    def _identity(self, architecture: Parameters) -> str:
        return json.dumps([architecture[axis.key] for axis in self._axes], sort_keys=True, default=repr)

    def _constraints(self, value: Any) -> dict[str, float]:
        """Optuna's constraint attributes of a result (``constraints:<constraint>``: its excess)."""
        if self.objectives is None or not isinstance(value, Mapping):
            return {}
        return {f"{CONSTRAINT_PREFIX}{c}": _excess(c, value[c.metric]) for c in self.objectives.constraints}

    def _values(self, value: Any) -> list[float] | None:
        """The values to tell, or None when the result cannot be told (FAIL)."""
        if self.objectives is not None:
            if not isinstance(value, Mapping) or self.objectives.missing(value):
                return None
            numbers = [float(value[objective.metric]) for objective in self.objectives.objectives]
        else:
            try:
                numbers = [float(value)]
            except (TypeError, ValueError):
                return None
        return numbers if all(math.isfinite(number) for number in numbers) else None


def sampler_arguments(name: str) -> list[str]:
    """The ``sampler_args`` names the sampler ``name`` takes (its constructor's, less :data:`NOT_PASSED`)."""
    cls = getattr(optuna.samplers, SAMPLERS[name])
    return [p for p in inspect.signature(cls).parameters if p not in NOT_PASSED]


def _draw(seed: int, trials: int) -> int:
    """The seed of the ask that follows ``trials`` trials."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{trials}".encode()).digest()[:4], "big")


def _reseed(sampler: Any, seed: int) -> bool:
    """Seed every generator of ``sampler`` (and of the samplers it holds) in place; False if none.

    Optuna's samplers draw from ``LazyRandomState`` objects, which they may share with their
    helpers (NSGA-II's crossover), hence in place. QMC's scramble seed is an int and stays.
    """
    found = False
    if LazyRandomState is None:
        return found
    for value in vars(sampler).values():
        if isinstance(value, LazyRandomState):
            value.rng.seed(seed)
            found = True
        elif isinstance(value, optuna.samplers.BaseSampler):
            found = _reseed(value, (seed + 1) % 2**32) or found
    return found


def _sampler(name: str, args: Mapping[str, Any], seed: int) -> Any:
    """Optuna's sampler ``name`` with ``args`` and ``seed`` (less its warnings for our use)."""
    cls = getattr(optuna.samplers, SAMPLERS[name])
    extra = (
        {"warn_independent_sampling": False}
        if "warn_independent_sampling" in inspect.signature(cls).parameters
        else {}
    )
    if name == "QMC":
        extra["warn_asynchronous_seeding"] = False
    with _quiet():
        return cls(**{**extra, **args, "seed": seed})


def _excess(constraint: Any, value: Any) -> float:
    """Optuna's constraint value, <= 0 when ``metric op bound`` holds; finite, so the checkpoint
    stays plain JSON (NaN or an infinite metric: :data:`WORST`)."""
    number = float(value)
    excess = number - constraint.bound if constraint.op == "<=" else constraint.bound - number
    return excess if math.isfinite(excess) and excess < WORST else WORST


def _kept_attrs(trial: Any) -> dict[str, Any]:
    """A trial's system attributes for the checkpoint: less the proposal TPE and GP share while
    a trial runs (``*:relative_params:*``), which nothing reads once it is finished."""
    if not trial.state.is_finished():
        return dict(trial.system_attrs)
    return {name: value for name, value in trial.system_attrs.items() if ":relative_params:" not in name}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Optuna's experimental and per-trial warnings stay out of the daemon's log."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# Optuna keeps study-wide attributes (QMC's sequence position, NSGA-II's parent cache) and a
# trial's constraints in its storage; its public API reads them only through deprecated names.
def _study_attrs(study: Any) -> dict[str, Any]:
    return dict(study._storage.get_study_system_attrs(study._study_id))


def _set_study_attr(study: Any, name: str, value: Any) -> None:
    study._storage.set_study_system_attr(study._study_id, name, value)


def _trial(study: Any, number: int) -> Any:
    """The live trial ``number`` (to set its constraints before telling it)."""
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return optuna.trial.Trial(study, trial_id)


class TPETuner(OptunaTuner):
    """``name: TPE`` (NNI users' first tuner): Optuna with its TPE sampler; takes no ``sampler``."""

    def __init__(
        self,
        sampler_args: dict[str, Any] | None = None,
        seed: int | None = None,
        optimize_mode: str = "maximize",
    ) -> None:
        super().__init__("TPE", sampler_args, seed, optimize_mode)
