"""The search log a one-shot trainer writes and ``nasctl view-nas --logdir DIR`` reads.

Files in the log folder (docs/architecture.md, "Search log"):

* ``search_space.json``: the super-net's search space, in the ss_gen format.
* ``graph.json``: the super-net's graph (shape in :mod:`trials.nas.oneshot.graph`).
* ``weights.jsonl``: one line per logging step,
  ``{"step": 40, "epoch": 1, "weights": {"<key>": [one float per candidate], ...}}``;
  candidates in the order of ``search_space.json``. DARTS writes softmax weights, ENAS the
  controller's probabilities, SPOS how often each candidate is in the evolving population.
  For an input choice that keeps any number of inputs (``n_chosen: null``) each float is the
  probability that the input is kept, so they need not sum to 1.
* ``metrics.jsonl``: one line per logging step,
  ``{"step": 40, "epoch": 1, "metrics": {"train_loss": 0.41, "train_acc": 0.87}}`` (means
  over the steps since the previous line), and one per epoch end with the ``val_`` metrics
  (the super-net on the validation data). A trainer may add its own names (ENAS:
  ``controller_reward``, the mean reward of the epoch's controller phase; SPOS:
  ``search_best_acc`` and ``search_mean_acc`` per generation of its evolution). These are search-time numbers of a shared
  super-net, not the accuracy of the exported architecture trained on its own.
* ``architecture.json``: the export, in the full ``{"_value", "_idx"}`` form, written last.
* ``architectures.jsonl`` (trainers that export as they go, CDARTS): one line per epoch end,
  ``{"step": 120, "epoch": 3, "architecture": {<the export at that moment, full form>}}``.

``step`` is the number of optimisation steps done so far in the run (SPOS' evolution, which
trains nothing, goes on counting one per generation); ``epoch`` counts from 0. Every line is
flushed when written, so a reader may follow the files while the search runs. A resumed
search first cuts the ``.jsonl`` files back to its checkpoint, so no step appears twice.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from trials.searchlog_files import (
    ARCHITECTURE_FILE,
    ARCHITECTURES_FILE,
    GRAPH_FILE,
    METRICS_FILE,
    SEARCH_SPACE_FILE,
    WEIGHTS_FILE,
)

#: The files a search appends to, which a resumed search cuts back to its checkpoint.
_APPENDED = (WEIGHTS_FILE, METRICS_FILE, ARCHITECTURES_FILE)


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class SearchLog:
    """Writes one search's log folder (see the module docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, IO[str]] = {}

    def _write_json(self, name: str, obj: Any) -> None:
        path = self.directory / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
        os.replace(tmp, path)

    def _append(self, name: str, record: Mapping[str, Any]) -> None:
        handle = self._files.get(name)
        if handle is None:
            handle = self._files[name] = open(self.directory / name, "a")  # noqa: SIM115 (kept open)
        handle.write(json.dumps(record) + "\n")
        handle.flush()

    def write_space(self, space_json: Mapping[str, Any]) -> None:
        path = self.directory / SEARCH_SPACE_FILE
        path.write_text(json.dumps(space_json, sort_keys=True, indent=2) + "\n")

    def write_graph(self, graph: Mapping[str, Any]) -> None:
        self._write_json(GRAPH_FILE, graph)

    def log_weights(self, step: int, epoch: int, weights: Mapping[str, Sequence[float]]) -> None:
        clean = {key: [_finite(v) for v in values] for key, values in weights.items()}
        self._append(WEIGHTS_FILE, {"step": step, "epoch": epoch, "weights": clean})

    def log_metrics(self, step: int, epoch: int, metrics: Mapping[str, float]) -> None:
        clean = {name: _finite(value) for name, value in metrics.items()}
        self._append(METRICS_FILE, {"step": step, "epoch": epoch, "metrics": clean})

    def log_architecture(self, step: int, epoch: int, architecture: Mapping[str, Any]) -> None:
        self._append(ARCHITECTURES_FILE, {"step": step, "epoch": epoch, "architecture": architecture})

    def write_architecture(self, architecture: Mapping[str, Any]) -> None:
        self._write_json(ARCHITECTURE_FILE, architecture)

    def positions(self) -> dict[str, int]:
        """The size of each ``.jsonl`` file now; a checkpoint stores it to cut back to on resume."""
        return {
            name: (self.directory / name).stat().st_size
            for name in _APPENDED
            if (self.directory / name).exists()
        }

    def truncate(self, positions: Mapping[str, int]) -> None:
        """Cut the ``.jsonl`` files back to ``positions`` (a resumed search redoes what follows)."""
        self.close()
        for name in _APPENDED:
            path = self.directory / name
            if path.exists():
                with open(path, "r+b") as handle:
                    handle.truncate(min(positions.get(name, 0), path.stat().st_size))
        (self.directory / ARCHITECTURE_FILE).unlink(missing_ok=True)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
