"""The digits example's space as a lookup table for the tuner replay (``bench/tuners.py --dataset digits``).

``bench/data/digits_curves.json`` (``bench/make_digits_curves.py``) holds, for each of the 96
architectures of ``examples/digits``, the validation accuracy after every epoch for each training
seed. Here only the final epoch counts: a trial observes one seed's final accuracy (in %, drawn
from ``(search seed, parameter id)`` as NAS-Bench-201's replay draws it) and takes that run's
training seconds on the simulated clock; an architecture is judged by its mean over seeds. The
interface is the one :func:`_nb201.replay` reads (``search_space``, ``code``, ``observe``,
``mean``, ``optimum``, ``size``), so the same replay and the same table print.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from _es_replay import REPO, CurveTable, arch_key, load_curves
from _nb201 import Observation  # one "training run" of an entry, as the NAS-Bench-201 table returns it

from trials.searchspace import SearchSpace

TABLE = REPO / "bench" / "data" / "digits_curves.json"


@dataclass(frozen=True)
class DigitsTable:
    """Final accuracies (%) per architecture and training seed; see the module docstring."""

    curves: CurveTable
    label: str = "digits example (final validation accuracy)"

    @property
    def size(self) -> int:
        return len(self.curves.curves)

    def search_space(self) -> SearchSpace:
        return self.curves.space

    def code(self, parameters: Mapping[str, Any]) -> str:
        """The table key of an architecture in the full ``{_value, _idx}`` form."""
        return arch_key({key: value["_value"] for key, value in parameters.items()})

    def accuracies(self, code: str) -> tuple[float, ...]:
        return tuple(100.0 * run.accuracy[-1] for run in self.curves.curves[code])

    def mean(self, code: str) -> float:
        values = self.accuracies(code)
        return sum(values) / len(values)

    @property
    def optimum(self) -> float:
        return max(self.mean(code) for code in self.curves.curves)

    def observe(self, code: str, noise_seed: int, parameter_id: int) -> Observation:
        runs = self.curves.curves[code]
        index = int(np.random.default_rng([noise_seed, parameter_id]).integers(len(runs)))
        return Observation(100.0 * runs[index].accuracy[-1], sum(runs[index].seconds), index)


@cache
def load_digits_table() -> DigitsTable:
    return DigitsTable(load_curves(TABLE))
