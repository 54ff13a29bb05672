"""Hooks into a one-shot search, and the progress display that uses them.

A callback overrides the hooks it needs; every hook does nothing by default. Hooks run in the
trainer's process and thread, between steps, so they may read the trainer freely (its
``step``, ``epoch``, ``choice_weights()``) and may call ``trainer.request_stop()`` to end the
search after the current epoch (the architecture is still exported).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trials.nas.oneshot.base import OneShotTrainer


class Callback:
    """Base of search callbacks; see the module docstring."""

    def on_search_begin(self, trainer: OneShotTrainer) -> None:
        """Before the first epoch (also when a search resumes)."""

    def on_epoch_begin(self, trainer: OneShotTrainer, epoch: int) -> None:
        """Before ``epoch`` (counted from 0)."""

    def on_step_end(self, trainer: OneShotTrainer, step: int, metrics: Mapping[str, float]) -> None:
        """After every optimisation step; ``metrics`` are that step's (e.g. ``loss``, ``acc``)."""

    def on_epoch_end(self, trainer: OneShotTrainer, epoch: int, metrics: Mapping[str, float]) -> None:
        """After ``epoch`` and its checkpoint; ``metrics`` hold the epoch's ``train_*`` means, the
        ``val_*`` figures, and ``train_s``/``val_s``, the seconds the two phases took."""

    def on_search_round(
        self, trainer: OneShotTrainer, step: int, round: int, rounds: int, metrics: Mapping[str, float]
    ) -> None:
        """After each round of a search that runs once the training is over (SPOS' evolution: a
        generation), ``round`` of ``rounds`` counted from 1; ``step`` goes on counting from the
        last training step, as in the search log, and ``metrics`` are the round's (SPOS:
        ``search_best_acc``, ``search_mean_acc``)."""

    def on_search_end(self, trainer: OneShotTrainer, architecture: Mapping[str, Any]) -> None:
        """After the export; ``architecture`` is what ``architecture.json`` holds."""


def _format(metrics: Mapping[str, float]) -> str:
    """``name value`` pairs: counts (a stage, a depth) as integers, measures to four decimals."""
    return "  ".join(
        f"{name} {value}" if isinstance(value, int) else f"{name} {value:.4f}"
        for name, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    )


def _note(trainer: OneShotTrainer) -> str:
    note = trainer.progress_note()
    return f" ({note})" if note else ""


class ProgressPrinter(Callback):
    """One line per epoch; on a terminal also a live line that shows the step.

    Validation figures are the super-net's (shared weights, or a sampled path), so the line
    says so: they are not the accuracy of the exported architecture trained on its own.
    """

    def __init__(self, stream: IO[str] | None = None, interval_s: float = 0.5) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s = interval_s
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._epoch_start = 0.0
        self._last_draw = 0.0
        self._epoch_steps = 0

    def on_search_begin(self, trainer: OneShotTrainer) -> None:
        resumed = f", resumed at epoch {trainer.epoch}" if trainer.epoch else ""
        print(
            f"[{trainer.algorithm}] searching {len(trainer.groups)} choices for {trainer.num_epochs} epochs "
            f"on {trainer.device}{resumed}",
            file=self.stream,
            flush=True,
        )

    def on_epoch_begin(self, trainer: OneShotTrainer, epoch: int) -> None:
        self._epoch_start = time.perf_counter()
        self._epoch_steps = 0

    def on_step_end(self, trainer: OneShotTrainer, step: int, metrics: Mapping[str, float]) -> None:
        self._epoch_steps += 1
        now = time.perf_counter()
        if self.live and now - self._last_draw >= self.interval_s:
            self._last_draw = now
            line = f"epoch {trainer.epoch + 1}/{trainer.num_epochs}{_note(trainer)}  step {self._epoch_steps}  {_format(metrics)}"
            print("\r" + line[:150].ljust(150), end="", file=self.stream, flush=True)

    def on_epoch_end(self, trainer: OneShotTrainer, epoch: int, metrics: Mapping[str, float]) -> None:
        elapsed = time.perf_counter() - self._epoch_start
        prefix = "\r" if self.live else ""
        figures = {k: v for k, v in metrics.items() if k not in ("train_s", "val_s")}
        timing = f"{elapsed:.1f} s"
        if "train_s" in metrics:
            timing += f" (train {metrics['train_s']:.1f} s, {self._epoch_steps} steps)"
        print(
            f"{prefix}epoch {epoch + 1}/{trainer.num_epochs}{_note(trainer)}  {_format(figures)}  (val: super-net)  {timing}",
            file=self.stream,
            flush=True,
        )

    def on_search_round(
        self, trainer: OneShotTrainer, step: int, round: int, rounds: int, metrics: Mapping[str, float]
    ) -> None:
        print(f"search round {round}/{rounds}  {_format(metrics)}", file=self.stream, flush=True)

    def on_search_end(self, trainer: OneShotTrainer, architecture: Mapping[str, Any]) -> None:
        short = {key: value["_value"] for key, value in architecture.items()}
        print(f"[{trainer.algorithm}] exported: {short}", file=self.stream, flush=True)
