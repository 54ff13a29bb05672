"""Reading a search log (docs/architecture.md, "Search log") and the super-net graph the NAS view draws.

A search log is a folder that a one-shot trainer fills while it searches:

``search_space.json``
    the space, in the ss_gen format.
``graph.json``
    the super-net, small on purpose::

        {"nodes": [{"id": "input", "type": "input"},
                   {"id": "stem", "type": "module", "label": "conv 3x3"},
                   {"id": "conv1", "type": "layer_choice", "key": "conv1",
                    "candidates": ["conv3x3", "conv5x5", "maxpool"]},
                   {"id": "skip", "type": "input_choice", "key": "skip",
                    "candidates": ["stem", "conv1"], "n_chosen": 1},
                   {"id": "output", "type": "output"}],
         "edges": [{"source": "input", "target": "stem"}, {"source": "stem", "target": "conv1"}, ...]}

    ``type`` is one of :data:`NODE_TYPES`; a choice node names its search-space ``key`` and its
    ``candidates`` (for an input choice, the nodes that feed it, by id or key); any node may name
    a ``parent`` node of type ``scope`` (a cell) to be drawn inside it. Edges are data flow; an
    edge into an input choice may say which ``candidate`` (position) it is, which is exact where
    a name is not (a key placed in several cells). A key may have several nodes (one per
    placement): the same weights restyle them all. The one-shot trainers write this shape
    (``trials/nas/oneshot/graph.py``, which adds ``version`` and ``traced``).
``weights.jsonl``
    one line per logging step: ``{"step": 120, "epoch": 3, "weights": {key: [one float per
    candidate]}}``, the candidates' weights or probabilities at that step.
``metrics.jsonl``
    one line per step with training and validation metrics (any numeric fields, flat or under
    ``"metrics"``).
``architecture.json``
    the exported architecture, written at the end.

The trainer may still be writing: a half-written last line is not an error (it is read once
complete), and a line that is not a JSON object is counted as skipped. Graphs written by other
tools are read leniently (``name`` for ``id``, ``[source, target]`` edges, ``kind`` for ``type``)
and a missing ``graph.json`` is replaced by one drawn from the search space, flagged ``derived``.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trials.searchlog_files import (
    ARCHITECTURE_FILE,
    GRAPH_FILE,
    METRICS_FILE,
    SEARCH_SPACE_FILE,
    WEIGHTS_FILE,
)

NODE_TYPES = ("input", "output", "module", "layer_choice", "input_choice", "scope")
CHOICE_TYPES = ("layer_choice", "input_choice")
DEFAULT_POINTS = 400
MAX_POINTS = 5000


class SearchLogError(ValueError):
    """The folder is not a search log; the message is one line naming the folder."""


# -- downsampling ---------------------------------------------------------------------------------


def pick_evenly(items: Sequence[Any], points: int) -> list[Any]:
    """At most ``points`` items spread evenly, always the first and the last (the newest step)."""
    count = len(items)
    if count <= points:
        return list(items)
    if points == 1:
        return [items[-1]]
    indices = sorted({round(i * (count - 1) / (points - 1)) for i in range(points)})
    return [items[i] for i in indices]


# -- append-only JSON lines -----------------------------------------------------------------------


class JsonLines:
    """An append-only JSON-lines file read incrementally: each call parses only the new bytes.

    A file that shrank or was replaced is read again from the start. Thread-safe.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._offset = 0
        self._identity: tuple[int, int] | None = None
        self._items: list[dict[str, Any]] = []
        self._skipped = 0

    def read(self) -> tuple[list[dict[str, Any]], int]:
        """(every complete line that is a JSON object, number of lines skipped as invalid)."""
        with self._lock:
            try:
                stat = os.stat(self.path)
            except FileNotFoundError:
                self._reset(None)
                return [], 0
            identity = (stat.st_dev, stat.st_ino)
            if identity != self._identity or stat.st_size < self._offset:
                self._reset(identity)
            if stat.st_size > self._offset:
                self._consume()
            return self._items, self._skipped

    def _reset(self, identity: tuple[int, int] | None) -> None:
        self._identity, self._offset, self._items, self._skipped = identity, 0, [], 0

    def _consume(self) -> None:
        with open(self.path, "rb") as file:
            file.seek(self._offset)
            data = file.read()
        end = data.rfind(b"\n")
        if end < 0:
            return  # no complete line yet
        for raw in data[: end + 1].splitlines():
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except ValueError:
                self._skipped += 1
                continue
            if isinstance(value, dict):
                self._items.append(value)
            else:
                self._skipped += 1
        self._offset += end + 1


# -- the graph ------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _candidates_of(entry: Any) -> list[str]:
    """Candidate names of a search-space entry (layer_choice list, input_choice object, choice)."""
    if not isinstance(entry, Mapping):
        return []
    value = entry.get("_value")
    if isinstance(value, Mapping):
        value = value.get("candidates")
    if isinstance(value, list):
        return [v if isinstance(v, str) else json.dumps(v) for v in value]
    return []


def space_choices(space: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The NAS choices of a search space in order: key, type, candidates (n_chosen for inputs)."""
    out = []
    for key, entry in (space or {}).items():
        if not isinstance(entry, Mapping) or entry.get("_type") not in CHOICE_TYPES:
            continue
        choice: dict[str, Any] = {
            "key": str(key),
            "type": entry["_type"],
            "candidates": _candidates_of(entry),
        }
        if entry["_type"] == "input_choice" and isinstance(entry.get("_value"), Mapping):
            choice["n_chosen"] = entry["_value"].get("n_chosen")
        out.append(choice)
    return out


def supernet_from_space(space: Mapping[str, Any] | None) -> dict[str, Any]:
    """A super-net drawn from the search space alone (classic NAS has no traced graph).

    Layer choices are chained in key order; an input choice is fed by the earlier choices its
    candidates name (or by an input of that name); whatever feeds nothing feeds the output. The
    real wiring lives in the model, so the result is flagged ``derived``.
    """
    nodes: list[dict[str, Any]] = [{"id": "input", "type": "input", "label": "input"}]
    edges: list[dict[str, Any]] = []
    ids = {"input"}
    previous = "input"
    for choice in space_choices(space):
        node_id = choice["key"]
        if node_id in ids:
            node_id = f"choice:{node_id}"
        node = {"id": node_id, "label": choice["key"], **choice}
        nodes.append(node)
        ids.add(node_id)
        if choice["type"] == "layer_choice":
            edges.append({"source": previous, "target": node_id})
            previous = node_id
            continue
        for position, candidate in enumerate(choice["candidates"]):
            source = candidate if candidate in ids else f"in:{candidate}"
            if source not in ids:
                nodes.append({"id": source, "type": "input", "label": candidate})
                ids.add(source)
            edges.append({"source": source, "target": node_id, "candidate": position})
    nodes.append({"id": "output", "type": "output", "label": "output"})
    feeding = {edge["source"] for edge in edges}
    edges.extend({"source": n["id"], "target": "output"} for n in nodes[:-1] if n["id"] not in feeding)
    return {"nodes": nodes, "edges": edges, "derived": True}


def normalize_graph(raw: Any, space: Mapping[str, Any] | None) -> dict[str, Any]:
    """The canonical graph of the module docstring from a leniently read ``graph.json``.

    Choice nodes get their candidates from the search space when the graph leaves them out;
    edges to unknown nodes are dropped; an input choice's candidate that names no node gets an
    input node of its own. Raises :class:`ValueError` when ``raw`` has no usable node list or no
    edge (an untraced model: the space draws a better picture).
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("nodes"), list):
        raise ValueError("graph.json: must be an object with a 'nodes' list")
    by_key = {c["key"]: c for c in space_choices(space)}
    nodes: list[dict[str, Any]] = []
    ids: set[str] = set()
    for index, entry in enumerate(raw["nodes"]):
        if not isinstance(entry, Mapping):
            continue
        node_id = _text(entry.get("id", entry.get("name"))) or f"node{index}"
        if node_id in ids:
            continue
        kind = str(entry.get("type", entry.get("kind", "module")))
        key = _text(entry.get("key"))
        if kind not in NODE_TYPES:
            kind = "module"
        node: dict[str, Any] = {
            "id": node_id,
            "type": kind,
            "label": _text(entry.get("label")) or key or node_id,
        }
        if entry.get("parent") is not None:
            node["parent"] = str(entry["parent"])
        if kind in CHOICE_TYPES:
            key = key or node_id
            candidates = entry.get("candidates", entry.get("choices"))
            if not isinstance(candidates, list):
                candidates = by_key.get(key, {}).get("candidates", [])
            node["key"] = key
            node["candidates"] = [str(c) for c in candidates]
            if kind == "input_choice":
                node["n_chosen"] = entry.get("n_chosen", by_key.get(key, {}).get("n_chosen"))
        nodes.append(node)
        ids.add(node_id)
    for node in nodes:  # a parent must exist and be a scope
        parent = node.get("parent")
        if parent is not None and not any(n["id"] == parent and n["type"] == "scope" for n in nodes):
            del node["parent"]
    edges = []
    for entry in raw.get("edges") or []:
        if isinstance(entry, Mapping):
            source = entry.get("source", entry.get("from", entry.get("src")))
            target = entry.get("target", entry.get("to", entry.get("dst")))
        elif isinstance(entry, (list, tuple)) and len(entry) >= 2:
            source, target = entry[0], entry[1]
        else:
            continue
        source, target = _text(source), _text(target)
        if source in ids and target in ids and source != target:
            edge: dict[str, Any] = {"source": source, "target": target}
            candidate = entry.get("candidate") if isinstance(entry, Mapping) else None
            if isinstance(candidate, int) and not isinstance(candidate, bool):
                edge["candidate"] = candidate
            edges.append(edge)
    if not edges:
        raise ValueError(f"{GRAPH_FILE} has no edges (the model could not be traced): drawn from the space")
    _wire_input_candidates(nodes, edges, ids)
    return {"nodes": nodes, "edges": edges, "derived": False}


def _wire_input_candidates(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], ids: set[str]) -> None:
    """Give every candidate of an input choice an edge into it, marked with its position.

    A choice with any edge that says its ``candidate`` was wired by its writer and is left alone
    (cells share keys, so names would find the wrong cell); otherwise the candidate's name finds
    its node (by id, key or label); a name that finds none gets an input node of its own.
    """
    lookup: dict[str, str] = {}
    near: dict[tuple[Any, str], str] = {}  # (parent, name): a key placed in several cells
    for node in nodes:
        for name in (node.get("key"), node.get("label"), node["id"]):
            if name is not None:
                lookup.setdefault(str(name), node["id"])
                near.setdefault((node.get("parent"), str(name)), node["id"])
    for node in [n for n in nodes if n["type"] == "input_choice"]:
        into = [e for e in edges if e["target"] == node["id"]]
        marked = {e["candidate"] for e in into if "candidate" in e}
        if (
            marked
        ):  # the writer wired this choice itself (nasctl's trainers do): names may repeat across cells
            continue
        feeding = {e["source"] for e in into}
        for position, candidate in enumerate(node["candidates"]):
            if position in marked:
                continue
            source = near.get((node.get("parent"), candidate), lookup.get(candidate))
            marked_here = next((e for e in into if e["source"] == source and "candidate" not in e), None)
            if marked_here is not None:
                marked_here["candidate"] = position
                continue
            if source is None:
                source = f"in:{candidate}"
                if source not in ids:
                    nodes.append({"id": source, "type": "input", "label": candidate})
                    ids.add(source)
                    lookup[candidate] = source
            if source not in feeding and source != node["id"]:
                edges.append({"source": source, "target": node["id"], "candidate": position})
                feeding.add(source)


# -- the search log -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchLogSummary:
    """What is in a log folder right now (for a one-line description)."""

    steps: int
    metric_lines: int
    has_graph: bool
    finished: bool


class SearchLog:
    """One search-log folder, read on demand (the trainer may still be appending to it)."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder).expanduser()
        if not self.folder.exists():
            raise SearchLogError(f"{self.folder}: no such folder")
        if not self.folder.is_dir():
            raise SearchLogError(f"{self.folder}: not a folder; give the search log's folder")
        if not any((self.folder / name).exists() for name in (SEARCH_SPACE_FILE, GRAPH_FILE, WEIGHTS_FILE)):
            raise SearchLogError(
                f"{self.folder}: not a search log (no {SEARCH_SPACE_FILE}, {GRAPH_FILE} or {WEIGHTS_FILE}); "
                "give the folder a one-shot trainer writes its log to"
            )
        self.folder = self.folder.resolve()
        self._weights = JsonLines(self.folder / WEIGHTS_FILE)
        self._metrics = JsonLines(self.folder / METRICS_FILE)

    def _json_file(self, name: str) -> tuple[Any, str | None]:
        """(content or None, a problem to show or None)."""
        path = self.folder / name
        try:
            return json.loads(path.read_text()), None
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError) as exc:
            return None, f"{name}: unreadable ({type(exc).__name__}: {exc})"

    def search_space(self) -> Mapping[str, Any] | None:
        space, _ = self._json_file(SEARCH_SPACE_FILE)
        return space if isinstance(space, Mapping) else None

    def weights(self) -> tuple[list[dict[str, Any]], int]:
        """Steps with a ``weights`` object (other lines count as skipped)."""
        items, skipped = self._weights.read()
        good = [item for item in items if isinstance(item.get("weights"), Mapping)]
        return good, skipped + len(items) - len(good)

    def summary(self) -> SearchLogSummary:
        steps, _ = self.weights()
        metrics, _ = self._metrics.read()
        return SearchLogSummary(
            steps=len(steps),
            metric_lines=len(metrics),
            has_graph=(self.folder / GRAPH_FILE).exists(),
            finished=(self.folder / ARCHITECTURE_FILE).exists(),
        )

    def view(self, points: int = DEFAULT_POINTS) -> dict[str, Any]:
        """Everything the NAS view shows, with at most ``points`` weight and metric steps."""
        problems: list[str] = []
        space, problem = self._json_file(SEARCH_SPACE_FILE)
        if problem:
            problems.append(problem)
        if space is not None and not isinstance(space, Mapping):
            problems.append(f"{SEARCH_SPACE_FILE}: not a JSON object")
            space = None
        raw_graph, problem = self._json_file(GRAPH_FILE)
        if problem:
            problems.append(problem)
        graph = None
        if raw_graph is not None:
            try:
                graph = normalize_graph(raw_graph, space)
            except ValueError as exc:
                problems.append(str(exc))
        if graph is None:
            graph = supernet_from_space(space or _space_from_weights(self.weights()[0]))
        architecture, problem = self._json_file(ARCHITECTURE_FILE)
        if problem:
            problems.append(problem)
        steps, skipped = self.weights()
        if skipped:
            problems.append(f"{WEIGHTS_FILE}: {skipped} line(s) skipped (not a step with 'weights')")
        metrics, metric_skipped = self._metrics.read()
        if metric_skipped:
            problems.append(f"{METRICS_FILE}: {metric_skipped} line(s) skipped (not a JSON object)")
        return json_safe(
            {
                "source": "searchlog",
                "title": self.folder.name,
                "logdir": str(self.folder),
                "searchSpace": space,
                "graph": graph,
                "architecture": architecture,
                "weights": {"total": len(steps), "items": pick_evenly(steps, points)},
                "metrics": {"total": len(metrics), "items": pick_evenly(metrics, points)},
                "finished": architecture is not None,
                "problems": problems,
            }
        )


def _space_from_weights(steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """With no search_space.json, name the candidates by position from the first step."""
    if not steps:
        return {}
    weights = steps[0].get("weights") or {}
    return {
        str(key): {"_type": "layer_choice", "_value": [str(i) for i in range(len(value))]}
        for key, value in weights.items()
        if isinstance(value, list)
    }


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None (a gap in a chart)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
