"""What the dashboard computes from an experiment's trials: which ops matter, and how choices moved.

Three views, each from one store query (never over the metrics of every trial):

* :func:`final_metrics`: every trial's final metric in compact rows, then only what is new
  (a cursor over metric ids), for the metric-over-trials chart that updates live;
* :func:`choice_stats`: per choice key, how often each candidate was chosen among the top-k
  trials and among all, and the mean final metric of the trials that chose it;
* :func:`nas_view`: the classic experiment in the search-log shape of :mod:`manager.views.searchlog`,
  where a candidate's "weight" at a step is the share of the last ``window`` trials that chose it.

Decisions are read by index (``_idx``) when the trial carries it, else by name; a hyper-parameter
``choice`` counts by value. The queries are the store's (``Store.trial_choices``,
``Store.trial_fingerprint``, ``Store.final_results``); this module only computes.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from manager.store import ExperimentRecord, Store, TrialChoices
from manager.views.searchlog import DEFAULT_POINTS, pick_evenly, space_choices, supernet_from_space
from trials.status import TrialStatus

T = TypeVar("T")


@dataclass(frozen=True)
class Choice:
    """A categorical key of the space: a layer or input choice, or a hyper-parameter ``choice``."""

    key: str
    type: str
    candidates: tuple[str, ...]
    values: tuple[Any, ...]  # the raw options of a hyper-parameter choice (names otherwise)


def categorical_choices(space: Mapping[str, Any] | None) -> list[Choice]:
    out = []
    for key, entry in (space or {}).items():
        if not isinstance(entry, Mapping):
            continue
        kind = entry.get("_type")
        if kind in ("layer_choice", "input_choice"):
            names = next(c["candidates"] for c in space_choices({key: entry}))
            out.append(Choice(str(key), kind, tuple(names), tuple(names)))
        elif kind == "choice" and isinstance(entry.get("_value"), list):
            values = tuple(entry["_value"])
            out.append(Choice(str(key), kind, tuple(_label(v) for v in values), values))
    return out


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def chosen(choice: Choice, decision: Any) -> list[int]:
    """Indices of the candidates a trial chose for ``choice`` (empty when unreadable)."""
    if choice.type == "choice":
        return [i for i, value in enumerate(choice.values) if value == decision][:1]
    if isinstance(decision, Mapping):
        index = decision.get("_idx")
        if index is not None:
            indices = index if isinstance(index, list) else [index]
            return [i for i in indices if isinstance(i, int) and 0 <= i < len(choice.candidates)]
        decision = decision.get("_value")
    names = decision if isinstance(decision, list) else [decision]
    out = []
    for name in names:
        if isinstance(name, str) and name in choice.candidates:
            out.append(choice.candidates.index(name))
        elif isinstance(name, int) and not isinstance(name, bool) and 0 <= name < len(choice.candidates):
            out.append(name)
    return out


class TrialCache:
    """``Store.trial_choices`` again only when the experiment changed (10,000 trials take ~0.2 s to load),
    and each view computed from them once per change (:meth:`view`).

    The fingerprint (trial count, ended trials, newest metric id) costs three index lookups; it
    moves with every new trial, every stored result and every trial that ends.
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[tuple[Any, ...], list[TrialChoices], dict[Any, Any]]] = (
            OrderedDict()
        )

    def get(self, store: Store, experiment_id: str) -> list[TrialChoices]:
        return self._entry(store, experiment_id)[1]

    def view(
        self, store: Store, experiment_id: str, name: Any, compute: Callable[[list[TrialChoices]], T]
    ) -> T:
        """``compute(trials)``, remembered under ``name`` until the experiment changes."""
        _, trials, memo = self._entry(store, experiment_id)
        if name not in memo:
            memo[name] = compute(trials)
        return memo[name]

    def _entry(
        self, store: Store, experiment_id: str
    ) -> tuple[tuple[Any, ...], list[TrialChoices], dict[Any, Any]]:
        key = store.trial_fingerprint(experiment_id)
        with self._lock:
            entry = self._entries.get(experiment_id)
            if entry is not None and entry[0] == key:
                self._entries.move_to_end(experiment_id)
                return entry
        entry = (key, store.trial_choices(experiment_id), {})
        with self._lock:
            self._entries[experiment_id] = entry
            self._entries.move_to_end(experiment_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return entry


def _rank(trials: Iterable[TrialChoices], optimize_mode: str) -> list[TrialChoices]:
    """Succeeded trials with a metric, best first (ties by sequence id), as ``best_trials`` ranks them."""
    scored = [t for t in trials if t.metric is not None and t.status == TrialStatus.SUCCEEDED.value]
    sign = 1.0 if optimize_mode == "minimize" else -1.0
    return sorted(scored, key=lambda t: (sign * (t.metric or 0.0), t.sequence_id))


# -- final metrics ---------------------------------------------------------------------------------


def final_metrics(store: Store, experiment_id: str, since: int = 0) -> dict[str, Any]:
    """Final metrics as columns (``sequenceIds``, ``trialIds``, ``values``) and a cursor.

    ``since=0`` gives every trial that has a final result; a later call with the returned
    ``next`` gives only the final results stored after it (``Store.final_results``), so live
    polling stays cheap at any size. A value is None for a NaN or infinite result. Columns, not
    objects: 10,000 trials are ~200 kB.
    """
    results = store.final_results(experiment_id, since)
    return {
        "sequenceIds": [row[0] for row in results.rows],
        "trialIds": [row[1] for row in results.rows],
        "values": [row[2] for row in results.rows],
        "next": results.cursor,
    }


# -- which ops matter ------------------------------------------------------------------------------


def choice_stats(trials: Sequence[TrialChoices], record: ExperimentRecord, top_k: int) -> dict[str, Any]:
    """Per categorical key: counts among all trials and the top ``top_k``, mean and best metric."""
    ranked = _rank(trials, record.optimize_mode)
    top = ranked[:top_k]
    better = min if record.optimize_mode == "minimize" else max
    keys = []
    for choice in categorical_choices(record.search_space):
        size = len(choice.candidates)
        counts, top_counts = [0] * size, [0] * size
        sums, scored, best = [0.0] * size, [0] * size, [None] * size
        for trial in trials:
            for i in chosen(choice, trial.parameters.get(choice.key)):
                counts[i] += 1
                if trial.metric is not None and trial.status == TrialStatus.SUCCEEDED.value:
                    sums[i] += trial.metric
                    scored[i] += 1
                    best[i] = trial.metric if best[i] is None else better(best[i], trial.metric)
        for trial in top:
            for i in chosen(choice, trial.parameters.get(choice.key)):
                top_counts[i] += 1
        keys.append(
            {
                "key": choice.key,
                "type": choice.type,
                "candidates": list(choice.candidates),
                "all": counts,
                "top": top_counts,
                "scored": scored,
                "mean": [sums[i] / scored[i] if scored[i] else None for i in range(size)],
                "best": best,
            }
        )
    return {
        "trials": len(trials),
        "scored": len(ranked),
        "topK": len(top),
        "optimizeMode": record.optimize_mode,
        "keys": keys,
    }


# -- the classic experiment as a search log --------------------------------------------------------


def choice_history(
    trials: Sequence[TrialChoices], choices: Sequence[Choice], points: int, optimize_mode: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(weight steps, metric steps, window): shares of each candidate over a sliding window."""
    count = len(trials)
    window = max(5, math.ceil(count / 20))
    ends = pick_evenly(list(range(1, count + 1)), points)
    decided = [[chosen(c, t.parameters.get(c.key)) for c in choices] for t in trials]
    better = min if optimize_mode == "minimize" else max
    running_best: list[float | None] = []
    best: float | None = None
    for trial in trials:
        if trial.metric is not None and trial.status == TrialStatus.SUCCEEDED.value:
            best = trial.metric if best is None else better(best, trial.metric)
        running_best.append(best)
    steps, metrics = [], []
    for end in ends:
        start = max(0, end - window)
        size = end - start
        weights = {}
        for j, choice in enumerate(choices):
            shares = [0] * len(choice.candidates)
            for row in decided[start:end]:
                for i in row[j]:
                    shares[i] += 1
            weights[choice.key] = [round(s / size, 6) for s in shares]
        steps.append({"step": end, "epoch": None, "weights": weights})
        scored = [t.metric for t in trials[start:end] if t.metric is not None]
        metrics.append(
            {
                "step": end,
                "best_so_far": running_best[end - 1],
                "window_mean": sum(scored) / len(scored) if scored else None,
            }
        )
    return steps, metrics, window


def nas_view(
    trials: Sequence[TrialChoices], record: ExperimentRecord, points: int = DEFAULT_POINTS
) -> dict[str, Any]:
    """The NAS view of a classic experiment, in the shape :meth:`SearchLog.view` returns."""
    space = record.search_space
    choices = [c for c in categorical_choices(space) if c.type != "choice"]
    steps, metrics, window = choice_history(trials, choices, points, record.optimize_mode)
    ranked = _rank(trials, record.optimize_mode)
    best = ranked[0] if ranked else None
    architecture = (
        {c.key: best.parameters[c.key] for c in choices if c.key in best.parameters}
        if best is not None
        else None
    )
    return {
        "source": "experiment",
        "title": record.name or record.id,
        "experimentId": record.id,
        "searchSpace": space,
        "graph": supernet_from_space(space),
        "architecture": architecture,
        "architectureTrial": best.trial_id if best is not None else None,
        "weights": {"total": len(trials), "items": steps},
        "metrics": {"total": len(trials), "items": metrics},
        "window": window,
        "finished": not record.status.is_active,
        "problems": [] if space is not None else ["the experiment has no search space yet"],
    }
