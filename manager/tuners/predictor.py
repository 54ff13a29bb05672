"""Predictor-guided local search for finite NAS spaces (BANANAS's ensemble and acquisition).

Proposals are random (by the Random tuner, so never repeated) until ``initial_trials`` results
are in and at least as many as there are trials still running. From then on each proposal is
chosen among *candidates*: every unseen
neighbour (one key changed, :mod:`manager.tuners.predictor_encoding`) of the ``parents`` best
architectures observed so far, plus a few random unseen ones. An ensemble of small MLPs
(:mod:`manager.tuners.predictor_model`) fitted to every result so far scores the candidates, and
independent Thompson sampling picks one: each candidate draws a value from a normal with the
ensemble's mean and spread, and the highest draw wins. So the tuner walks the neighbourhoods of
the best architectures, as local search does (strong on NAS-Bench-201, White et al. 2020), but
tries first the neighbours the predictor rates instead of all of them in turn. With
``predictor: none`` it is that plain local search: a random unseen neighbour of the best
architecture that still has one.

A network knows nothing of a value no result has shown (a one-hot input that was always 0), and
an ensemble of them hardly disagrees about it, so such a value would almost never be tried: a
candidate with a feature outside the range of every result so far draws with at least the spread
of the scores themselves, the prior's uncertainty. (Without it, a choice that decides the score
but was missing from the random start stayed untried in most searches of the tests.)

Asynchronous: a pending architecture counts as proposed, so it is never a candidate again, and
the random draws of Thompson sampling make consecutive proposals differ while results are out;
every call proposes at once (no ``TunerBusy``). The random start waits for as many results as
there are trials running: at concurrency 8, guiding eight proposals by the first one or two
results spent them around one mediocre architecture (CIFAR-10, N=30: 90.76 against 90.98; on
ImageNet16-120 the lowest gain over RegularizedEvolution went from -0.42 to -0.09). A trial
lost without an end only lengthens the random start until more results than that are in. Failed trials, and results that are not finite,
teach nothing. ``NoMoreTrials`` comes only when the space is exhausted.

The ensemble is refitted once the results have grown by a tenth since the last fit; a fit is a
pure function of the results it used and the seed, so the checkpoint (results, proposals,
generator, how many results the fit used) restores a tuner that proposes exactly what the
uninterrupted one would. Continuous types are refused, naming the key; ``layer_choice``,
``input_choice`` (``n_chosen`` fixed or ``null``), ``choice`` and ``randint`` are searched.

Defaults (``initial_trials`` 5, ``parents`` 5, five members of two hidden layers of 32, Thompson
sampling) were chosen on NAS-Bench-201 CIFAR-10 only (``bench/tuners.py``, 30 search seeds, N=30
and N=100 at concurrency 1): 5 random trials first rather than 10 (91.19 and 91.54 against 91.16
and 91.41); with 10, neither 10 parents (91.07, 91.41) nor candidates two keys away (91.04,
91.46) paid; greedy choice by the mean lost with 5 (91.07, 91.38). Differences under about 0.1
are within the noise of 30 seeds (60 seeds moved the same tuner by 0.07).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from manager.tuners.base import Parameters, Tuner, TunerError, check_optimize_mode, signed_score
from manager.tuners.checkpoint import CheckpointFormat, rng_from_json, rng_to_json
from manager.tuners.predictor_encoding import Genome, GenomeSpace
from manager.tuners.predictor_model import EnsembleSettings, FittedEnsemble, fit_ensemble
from manager.tuners.random import RandomTuner
from trials.searchspace import SearchSpace

CHECKPOINT = CheckpointFormat("PredictorTuner", 1)
OWNER = "PredictorTuner"
PREDICTORS = ("ensemble", "none")
#: The ensemble is refitted once the results have grown by this fraction since its last fit (or by one).
REFIT_GROWTH = 0.1
#: Most candidates scored per proposal (5 parents of a 6-key NAS-Bench-201 cell give 120).
MAX_CANDIDATES = 600
#: Random unseen architectures added to the candidates of each proposal (exploration beyond the neighbourhoods).
RANDOM_CANDIDATES = 10


class PredictorTuner(Tuner):
    """Neighbourhoods of the best architectures, ranked by an MLP ensemble; see the module docstring."""

    def __init__(
        self,
        optimize_mode: str = "maximize",
        initial_trials: int = 5,
        parents: int = 5,
        predictor: str = "ensemble",
        seed: int | None = None,
    ) -> None:
        self.validate_class_args(
            optimize_mode=optimize_mode,
            initial_trials=initial_trials,
            parents=parents,
            predictor=predictor,
            seed=seed,
        )
        self.optimize_mode = optimize_mode
        self.initial_trials = initial_trials
        self.parents = parents
        self.predictor = predictor
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.settings = EnsembleSettings()
        self._rng = random.Random(self.seed)
        self._random = RandomTuner(seed=self._rng.randrange(2**31))
        self._genomes: GenomeSpace | None = None
        #: (genome, score to maximise) per result, in the order they came
        self._observed: list[tuple[Genome, float]] = []
        self._observed_set: set[Genome] = set()
        self._proposed: set[Genome] = set()
        #: parameter ids proposed whose trial has neither reported nor ended
        self._pending: set[int] = set()
        #: how many of the first results the current ensemble was fitted on (0: none yet), and it
        self._fitted_on = 0
        self._fitted: FittedEnsemble | None = None

    @classmethod
    def validate_class_args(cls, **class_args: Any) -> None:
        check_optimize_mode(class_args.get("optimize_mode", "maximize"))
        for name, low in (("initial_trials", 1), ("parents", 1)):
            value = class_args.get(name, low)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise TunerError(f"tuner.classArgs.{name}: must be a whole number >= {low}, got {value!r}")
        predictor = class_args.get("predictor", "ensemble")
        if predictor not in PREDICTORS:
            raise TunerError(f"tuner.classArgs.predictor: must be ensemble or none, got {predictor!r}")
        seed = class_args.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TunerError(f"tuner.classArgs.seed: must be a whole number or null, got {seed!r}")

    # -- Tuner -----------------------------------------------------------------------------------
    def update_search_space(self, space: SearchSpace) -> None:
        genomes = GenomeSpace(space, OWNER)  # refuses what it cannot search before anything changes
        self._random.update_search_space(space)
        if self._genomes is not None and space.to_json() != self._genomes.space.to_json():
            self._observed, self._observed_set, self._proposed = [], set(), set()
        self._genomes = genomes
        self._fitted = None
        self._fitted_on = min(self._fitted_on, len(self._observed))

    def generate_parameters(self, parameter_id: int) -> Parameters:
        if self._genomes is None:
            raise TunerError(f"{OWNER}: update_search_space must come before generate_parameters")
        child = None
        if self._observed and len(self._observed) >= max(self.initial_trials, len(self._pending)):
            child = self._guided()
        if child is None:
            parameters = self._random.generate_parameters(parameter_id)  # NoMoreTrials when exhausted
            self._proposed.add(self._genomes.encode(parameters))
        else:
            self._proposed.add(child)
            parameters = self._genomes.decode(child)
            self._random.import_data([{"parameter": parameters}])
        self._pending.add(parameter_id)
        return parameters

    def receive_trial_result(self, parameter_id: int, parameters: Parameters, value: Any) -> None:
        self._pending.discard(parameter_id)
        self._admit(parameters, value)

    def trial_end(self, parameter_id: int, success: bool) -> None:
        self._pending.discard(parameter_id)

    def import_data(self, records: list[dict[str, Any]]) -> None:
        """Earlier results are learnt from in their order; their architectures count as proposed."""
        for record in records:
            if isinstance(record, Mapping) and self._admit(record.get("parameter"), record.get("value")):
                self._random.import_data([{"parameter": record.get("parameter")}])

    def save_checkpoint(self) -> dict[str, Any]:
        return CHECKPOINT.envelope(
            seed=self.seed,
            rng=rng_to_json(self._rng),
            random=self._random.save_checkpoint(),
            observed=[[list(genome), score] for genome, score in self._observed],
            proposed=sorted(list(genome) for genome in self._proposed),
            fitted_on=self._fitted_on,
            pending=sorted(self._pending),
        )

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        state = CHECKPOINT.open(state)
        with CHECKPOINT.reading():
            seed = int(state["seed"])
            rng = rng_from_json(state["rng"])
            observed = [(_genome(genome), float(score)) for genome, score in state["observed"]]
            proposed = {_genome(genome) for genome in state["proposed"]}
            fitted_on = int(state["fitted_on"])
            pending = {int(parameter_id) for parameter_id in state["pending"]}
            if not 0 <= fitted_on <= len(observed):
                raise ValueError(f"fitted_on {fitted_on} is not between 0 and {len(observed)}")
            fallback = RandomTuner()
            if self._genomes is not None:
                fallback.update_search_space(self._genomes.space)
            fallback.load_checkpoint(state["random"])  # a TunerError of its own if damaged
        self.seed, self._rng, self._random = seed, rng, fallback
        self._observed, self._observed_set = observed, {genome for genome, _ in observed}
        self._proposed, self._fitted_on, self._fitted = proposed, fitted_on, None
        self._pending = pending

    # -- search ----------------------------------------------------------------------------------
    def _admit(self, parameters: Any, value: Any) -> bool:
        """Learn from one result; True when ``parameters`` fit the space (then it counts as proposed)."""
        assert self._genomes is not None
        try:
            genome = self._genomes.encode(parameters)
        except (ValueError, TypeError, KeyError):
            return False
        self._proposed.add(genome)
        score = signed_score(value, self.optimize_mode)
        if score is not None and genome not in self._observed_set:
            self._observed.append((genome, score))
            self._observed_set.add(genome)
        return True

    def _guided(self) -> Genome | None:
        """The next genome by the predictor (or plain local search); None: fall back to random."""
        assert self._genomes is not None
        ranked = sorted(self._observed, key=lambda item: item[1], reverse=True)
        if self.predictor == "none":
            for genome, _ in ranked:
                unseen = [n for n in self._genomes.neighbours(genome, self._rng) if n not in self._proposed]
                if unseen:
                    return self._rng.choice(unseen)
            return None
        ensemble = self._ensemble()
        candidates = dict.fromkeys(
            n
            for genome, _ in ranked[: self.parents]
            for n in self._genomes.neighbours(genome, self._rng)
            if n not in self._proposed
        )
        for _ in range(RANDOM_CANDIDATES):
            drawn = self._genomes.random(self._rng)
            if drawn not in self._proposed:
                candidates[drawn] = None
        if not candidates:
            return None
        pool = list(candidates)
        if len(pool) > MAX_CANDIDATES:  # a space of many keys: score a sample, keep a call cheap
            pool = self._rng.sample(pool, MAX_CANDIDATES)
        features = [self._genomes.features(g) for g in pool]
        prediction = ensemble.predict(features)
        spread = _novelty_spread([self._genomes.features(g) for g, _ in self._observed], self._observed)
        draws = []
        for row, mean, std in zip(features, prediction.mean, prediction.std, strict=True):
            if spread is not None and spread.novel(row):
                std = max(std, spread.prior_std)
            draws.append(mean + std * self._rng.gauss(0.0, 1.0))
        return pool[max(range(len(pool)), key=draws.__getitem__)]

    def _ensemble(self) -> FittedEnsemble:
        """The ensemble fitted to the first ``_fitted_on`` results, refitted once enough new ones came.

        Refitting at every result would cost a fit per proposal; after :data:`REFIT_GROWTH` more
        results the fit is recent enough and most proposals cost only a prediction. A restored
        tuner refits on the same first results with the same seed: the same networks.
        """
        assert self._genomes is not None
        count = len(self._observed)
        if count >= self._fitted_on + max(1, int(REFIT_GROWTH * self._fitted_on)):
            self._fitted_on, self._fitted = count, None
        if self._fitted is None:
            used = self._observed[: self._fitted_on]
            features = [self._genomes.features(genome) for genome, _ in used]
            scores = [score for _, score in used]
            fit_seed = (self.seed * 1_000_003 + self._fitted_on) % 2**63
            self._fitted = fit_ensemble(features, scores, fit_seed, self.settings)
        return self._fitted


@dataclass(frozen=True)
class _Seen:
    """The range of each feature over the results, and the spread of the scores."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    prior_std: float

    def novel(self, row: list[float]) -> bool:
        """True when ``row`` lies outside what any result showed (a value never tried, say)."""
        return any(v < lo or v > hi for v, lo, hi in zip(row, self.low, self.high, strict=True))


def _novelty_spread(rows: list[list[float]], observed: list[tuple[Genome, float]]) -> _Seen | None:
    """What the predictor cannot know: a candidate with a feature no result had gets the scores' own spread."""
    if len(rows) < 2:
        return None
    columns = list(zip(*rows, strict=True))
    scores = [score for _, score in observed]
    mean = sum(scores) / len(scores)
    prior = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    return _Seen(tuple(map(min, columns)), tuple(map(max, columns)), prior)


def _genome(obj: Any) -> Genome:
    if not isinstance(obj, list) or not all(isinstance(gene, int) for gene in obj):
        raise ValueError(f"a genome is a list of whole numbers, got {obj!r}")
    return tuple(obj)
