"""The TensorBoard runs of a classic experiment, written by ``nasctl tensorboard``.

One run (a folder of the log folder) per trial, named by the trial id and its chosen ops
(``a1B2c3_conv3x3-maxpool-in1``), holding

* the trial's reported results as scalars: every intermediate result at its sequence number
  (``intermediate/default``, and ``intermediate/<key>`` for each numeric key of a metric dict),
  the final result at the step after the last intermediate one (``final/default``, ...);
* ``trial``: a link to the trial's own output folder (``NASCTL_OUTPUT_DIR``), so what the trial
  logs itself shows as the run ``<run>/trial`` (TensorBoard's directory walk follows links).

The data comes from the daemon's REST API (:mod:`nasctl.client`), so every training service is
served alike. :meth:`TensorBoardRuns.reset` removes what an earlier call wrote (only folders
marked as nasctl's), then :meth:`TensorBoardRuns.refresh` writes what is new since its last
call: a trial's writer stays open while the trial may still report, and is closed once it has
ended. Written with ``tensorboard.summary.Writer`` (numpy, no torch, no TensorFlow), imported
only when a run is written.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from trials import env
from trials.metrics import FINAL, PERIODICAL
from trials.status import TrialStatus

if TYPE_CHECKING:
    from tensorboard.summary import Writer

#: The one line a missing TensorBoard gets (the extra installs it).
MISSING_TENSORBOARD = "nasctl tensorboard needs TensorBoard: pip install 'nasctl[tensorboard]'"
#: In a run folder: says nasctl made it, so :meth:`TensorBoardRuns.reset` may remove it.
RUN_MARKER = ".nasctl-run"
#: In a run folder: the link to the trial's own output folder.
TRIAL_LINK = "trial"
#: The ops part of a run name is at most this long (the trial id makes the name unique anyway).
MAX_OPS_CHARS = 60
#: One choice's value is cut to this many characters.
MAX_OP_CHARS = 16
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")
_ENDED = frozenset(s.value for s in TrialStatus if s not in (TrialStatus.WAITING, TrialStatus.RUNNING))


class RunSource(Protocol):
    """What the runs are read from: the part of :class:`nasctl.client.Client` they use."""

    def iter_trials(self, experiment_id: str) -> Iterable[dict[str, Any]]: ...

    def metrics(self, experiment_id: str, since: int = 0, limit: int | None = None) -> dict[str, Any]: ...


def tensorboard_missing() -> str | None:
    """:data:`MISSING_TENSORBOARD` when TensorBoard cannot be imported, else None (a broken
    install, where TensorBoard is there but one of its own imports fails, raises as is)."""
    try:
        import tensorboard.summary  # noqa: F401
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] == "tensorboard":
            return MISSING_TENSORBOARD
        raise
    return None


def _short(value: Any) -> str:
    """One choice's value in a run name: the op's name, a number in short, lists joined by ``+``."""
    if isinstance(value, Mapping) and "_value" in value:
        value = value["_value"]
    if isinstance(value, (list, tuple)):
        text = "+".join(_short(v) for v in value) or "none"
    elif isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return _UNSAFE.sub("_", text).strip("_.")[:MAX_OP_CHARS] or "_"


def run_name(trial_id: str, parameters: Mapping[str, Any] | None) -> str:
    """``<trial id>_<op>-<op>-...`` in the order of the choices; when the ops would pass
    :data:`MAX_OPS_CHARS`, those that fit and ``+N`` for the N left out."""
    ops = [_short(v) for k, v in (parameters or {}).items() if not str(k).startswith("_")]
    trial = _UNSAFE.sub("_", trial_id)
    if not ops:
        return trial
    kept: list[str] = []
    for i, op in enumerate(ops):
        rest = len(ops) - i - 1
        suffix = len(f"-+{rest}") if rest else 0
        if len("-".join([*kept, op])) + suffix > MAX_OPS_CHARS:
            break
        kept.append(op)
    left = len(ops) - len(kept)
    return f"{trial}_{'-'.join(kept)}" + (f"-+{left}" if left else "")


def scalars(value: Any) -> dict[str, float]:
    """The finite numbers of a reported result by key: a number is ``default``; other values
    (text, NaN, nested data) are left out, as TensorBoard draws only numbers."""
    items = value.items() if isinstance(value, Mapping) else [("default", value)]
    out = {}
    for key, item in items:
        if isinstance(item, numbers.Real) and not isinstance(item, bool) and math.isfinite(item):
            out[_UNSAFE.sub("_", str(key))] = float(item)
    return out


@dataclass(frozen=True)
class Refreshed:
    """What one :meth:`TensorBoardRuns.refresh` did."""

    runs: int  # runs in the log folder now
    new_runs: int
    points: int  # scalar points written by this call
    linked: int  # trial output folders linked by this call


@dataclass
class _Run:
    folder: Path
    trial_dir: str | None = None
    linked: bool = False
    intermediates: int = 0  # the step of a final result: after the last intermediate one
    writer: Writer | None = field(default=None, repr=False)


class TensorBoardRuns:
    """The runs of one experiment in ``logdir``; see the module docstring."""

    def __init__(self, logdir: Path, experiment_id: str) -> None:
        self.logdir = logdir
        self.experiment_id = experiment_id
        self._runs: dict[str, _Run] = {}
        self._since = 0

    def reset(self) -> int:
        """Remove the runs an earlier call wrote (folders holding :data:`RUN_MARKER` only, so a
        ``--logdir`` that holds other things keeps them); returns how many."""
        removed = 0
        if self.logdir.is_dir():
            for marker in self.logdir.glob(f"*/{RUN_MARKER}"):
                link = marker.parent / TRIAL_LINK
                if link.is_symlink():
                    link.unlink()  # never followed: the trial's own files stay
                shutil.rmtree(marker.parent)
                removed += 1
        self.logdir.mkdir(parents=True, exist_ok=True)
        return removed

    def refresh(self, source: RunSource) -> Refreshed:
        """Add the trials and results that are new since the last call.

        The metrics are read before the trials, so every metric's trial is in the list; a trial
        that ends between the two reads may get its last result into a second event file.
        """
        metrics: list[dict[str, Any]] = []
        while True:
            page = source.metrics(self.experiment_id, since=self._since)
            items = page.get("items", [])
            metrics.extend(items)
            self._since = int(page.get("next", self._since))
            if not items:
                break
        trials = list(source.iter_trials(self.experiment_id))
        before = len(self._runs)
        linked = sum(self._track(trial) for trial in trials)
        points = sum(self._write(metric) for metric in metrics)
        for trial in trials:
            run = self._runs[trial["id"]]
            if run.writer is not None and trial.get("status") in _ENDED:
                run.writer.close()
                run.writer = None
        for run in self._runs.values():
            if run.writer is not None:
                run.writer.flush()
        return Refreshed(len(self._runs), len(self._runs) - before, points, linked)

    def close(self) -> None:
        """Close every open writer (their files are complete)."""
        for run in self._runs.values():
            if run.writer is not None:
                run.writer.close()
                run.writer = None

    def _track(self, trial: Mapping[str, Any]) -> int:
        """Make the trial's run folder if new; link its output folder once it exists (1 if now)."""
        run = self._runs.get(trial["id"])
        if run is None:
            folder = self.logdir / run_name(trial["id"], trial.get("parameters"))
            folder.mkdir(parents=True, exist_ok=True)
            (folder / RUN_MARKER).write_text(f"{self.experiment_id} {trial['id']}\n")
            run = self._runs[trial["id"]] = _Run(folder)
        run.trial_dir = trial.get("trialDir") or run.trial_dir
        if run.linked or not run.trial_dir:
            return 0
        output = Path(run.trial_dir) / env.OUTPUT_DIR_NAME
        if not output.is_dir():  # not launched yet, or a service whose output stays on its node
            return 0
        with contextlib.suppress(FileExistsError):
            (run.folder / TRIAL_LINK).symlink_to(output, target_is_directory=True)
        run.linked = True
        return 1

    def _write(self, metric: Mapping[str, Any]) -> int:
        run = self._runs.get(metric["trialId"])
        if run is None:  # deleted between the two reads
            return 0
        if metric["type"] == PERIODICAL:
            prefix, step = "intermediate", int(metric["sequence"])
            run.intermediates = max(run.intermediates, step + 1)
        elif metric["type"] == FINAL:
            prefix, step = "final", run.intermediates
        else:
            return 0
        values = scalars(metric["value"])
        if not values:
            return 0
        if run.writer is None:
            from tensorboard.summary import Writer

            run.writer = Writer(str(run.folder))
        wall_time = float(metric["time"]) / 1000 if metric.get("time") else None
        for key, number in values.items():
            run.writer.add_scalar(f"{prefix}/{key}", number, step, wall_time=wall_time)
        return len(values)
