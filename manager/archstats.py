"""What the dashboard computes from an experiment's trials: which ops matter, and how choices moved.

Three views, each one query over the trials table (never over the metrics of every trial):

* :func:`final_metrics`: every trial's final metric in compact rows, then only what is new
  (a cursor over metric ids), for the metric-over-trials chart that updates live;
* :func:`choice_stats`: per choice key, how often each candidate was chosen among the top-k
  trials and among all, and the mean final metric of the trials that chose it;
* :func:`nas_view`: the classic experiment in the search-log shape of :mod:`manager.searchlog`,
  where a candidate's "weight" at a step is the share of the last ``window`` trials that chose it.

Decisions are read by index (``_idx``) when the trial carries it, else by name; a hyper-parameter
``choice`` counts by value. Rows never leave as ORM objects.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Text, func, select, type_coerce
from sqlalchemy.orm import Session

from manager.searchlog import DEFAULT_POINTS, pick_evenly, space_choices, supernet_from_space
from manager.store import ExperimentRecord, MetricRow, Store, TrialRow
from trials.metrics import FINAL
from trials.status import TrialStatus

T = TypeVar("T")
MAX_SCAN = 1_000_000  # metric ids one incremental call may scan


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


@dataclass(frozen=True)
class TrialChoices:
    """The little of a trial these views need."""

    sequence_id: int
    trial_id: str
    status: str
    metric: float | None  # finite final metric, else None
    parameters: Mapping[str, Any]


def load_trials(store: Store, experiment_id: str) -> list[TrialChoices]:
    """Every trial's sequence id, id, status, finite final metric and parameters, in order."""
    query = (
        select(TrialRow.sequence_id, TrialRow.id, TrialRow.status, TrialRow.final_metric, TrialRow.parameters)
        .where(TrialRow.experiment_id == experiment_id)
        .order_by(TrialRow.sequence_id)
    )

    def work(session: Session) -> list[TrialChoices]:
        return [
            TrialChoices(seq, tid, status, _finite(metric), params)
            for seq, tid, status, metric, params in session.execute(query)
        ]

    return store.read(work)


class TrialCache:
    """:func:`load_trials` again only when the experiment changed (10,000 trials take ~0.2 s to load),
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
        key = self._fingerprint(store, experiment_id)
        with self._lock:
            entry = self._entries.get(experiment_id)
            if entry is not None and entry[0] == key:
                self._entries.move_to_end(experiment_id)
                return entry
        entry = (key, load_trials(store, experiment_id), {})
        with self._lock:
            self._entries[experiment_id] = entry
            self._entries.move_to_end(experiment_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return entry

    @staticmethod
    def _fingerprint(store: Store, experiment_id: str) -> tuple[Any, ...]:
        def work(session: Session) -> tuple[Any, ...]:
            in_experiment = TrialRow.experiment_id == experiment_id
            # sequence ids are 0..n-1 (see store._status_counts): the count is max + 1, and the ended
            # trials are those less the unended ones (few): index lookups, no COUNT over every trial
            top = session.scalar(select(func.max(TrialRow.sequence_id)).where(in_experiment))
            count = 0 if top is None else top + 1
            unended = session.scalar(
                select(func.count()).select_from(TrialRow).where(in_experiment, TrialRow.end_time.is_(None))
            )
            ended = count - (unended or 0)
            latest = session.scalar(
                select(func.max(MetricRow.id)).where(MetricRow.experiment_id == experiment_id)
            )
            return (count, ended, latest)

        return store.read(work)


def _rank(trials: Iterable[TrialChoices], optimize_mode: str) -> list[TrialChoices]:
    """Succeeded trials with a metric, best first (ties by sequence id), as ``best_trials`` ranks them."""
    scored = [t for t in trials if t.metric is not None and t.status == TrialStatus.SUCCEEDED.value]
    sign = 1.0 if optimize_mode == "minimize" else -1.0
    return sorted(scored, key=lambda t: (sign * (t.metric or 0.0), t.sequence_id))


# -- final metrics ---------------------------------------------------------------------------------


def final_metrics(store: Store, experiment_id: str, since: int = 0) -> dict[str, Any]:
    """Final metrics as columns (``sequenceIds``, ``trialIds``, ``values``) and a cursor.

    ``since=0`` gives every trial that has a final result (from the trials table); a later call
    with the returned ``next`` gives only the final results stored after it (from the metrics
    table, through its (experiment, id) index), so live polling stays cheap at any size.
    A value is None for a NaN or infinite result. Columns, not objects: 10,000 trials are ~200 kB.
    """
    latest = select(func.max(MetricRow.id)).where(MetricRow.experiment_id == experiment_id)

    def snapshot(session: Session) -> dict[str, Any]:
        cursor = session.scalar(latest) or 0
        reported = type_coerce(TrialRow.final_metric_data, Text)  # JSON null and SQL NULL: no result
        query = (
            select(TrialRow.sequence_id, TrialRow.id, TrialRow.final_metric)
            .where(TrialRow.experiment_id == experiment_id, reported.is_not(None), reported != "null")
            .order_by(TrialRow.sequence_id)
        )
        return _columns(session.execute(query), cursor)

    def newer(session: Session) -> dict[str, Any]:
        top = min(session.scalar(latest) or since, since + MAX_SCAN)
        query = (
            select(TrialRow.sequence_id, MetricRow.trial_id, MetricRow.default_value)
            .join(TrialRow, TrialRow.id == MetricRow.trial_id)
            .where(
                MetricRow.experiment_id == experiment_id,
                MetricRow.id > since,
                MetricRow.id <= top,
                MetricRow.type == FINAL,
            )
            .order_by(MetricRow.id)
        )
        return _columns(session.execute(query), max(top, since))

    return store.read(snapshot if since <= 0 else newer)


def _columns(rows: Iterable[Sequence[Any]], cursor: int) -> dict[str, Any]:
    sequence_ids, trial_ids, values = [], [], []
    for row in rows:
        sequence_ids.append(row[0])
        trial_ids.append(row[1])
        values.append(_finite(row[2]))
    return {"sequenceIds": sequence_ids, "trialIds": trial_ids, "values": values, "next": cursor}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


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
