"""TensorBoard for one-shot searches: ``trainer = DartsTrainer(..., callbacks=[TensorBoardCallback()])``.

The callback works only through the :class:`~trials.nas.oneshot.callbacks.Callback` hooks and
``trainer.choice_weights()``, so it serves every trainer, present and future. It writes scalars:

* ``step/<metric>`` (``step/loss``, ``step/acc``, ...): the metrics of every ``every``-th
  optimisation step, at that step (``trainer.step``);
* ``epoch/<metric>`` (``epoch/train_loss``, ``epoch/val_acc``, ``epoch/train_s``, ...): each
  epoch's summary, at the epoch (counted from 0, as in ``metrics.jsonl``);
* ``weights/<key>/<candidate>``: each candidate's architecture weight (what ``weights.jsonl``
  records), at the same steps and at every epoch end (once per step). A candidate name that
  repeats within its choice gets ``#<index>``;
* ``search/<metric>`` (SPOS: ``search/search_best_acc``, ...): each round of a search that runs
  after the training (SPOS' evolution), at its step, with the weights of that step.

TensorBoard is optional: it is imported when the callback is built, never by ``import
trials.nas.oneshot``. The writer is flushed at every epoch end. A resumed search hides what the
crashed run wrote after its checkpoint (``purge_step``), so every step shows once; a fresh search
hides what an earlier run left in the same folder, as the search log starts afresh too.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trials.nas.oneshot.callbacks import Callback

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

    from trials.nas.oneshot.base import OneShotTrainer

#: The one line a missing TensorBoard gets (the extra installs it).
MISSING_TENSORBOARD = "TensorBoardCallback needs TensorBoard: pip install 'nasctl[tensorboard]'"
#: Modules whose absence means "TensorBoard is not installed" (not a broken install).
_TENSORBOARD_MODULES = ("tensorboard", "torch.utils.tensorboard")


def _summary_writer_class() -> type[SummaryWriter]:
    """``SummaryWriter``, or one clear line when TensorBoard is missing (a broken one raises as is)."""
    try:
        import tensorboard  # noqa: F401 - torch's wrapper hides which import failed
        from torch.utils.tensorboard import SummaryWriter
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if not any(missing == m or missing.startswith(m + ".") for m in _TENSORBOARD_MODULES):
            raise
        raise ModuleNotFoundError(MISSING_TENSORBOARD, name="tensorboard") from None
    return SummaryWriter


def default_log_dir(trainer: OneShotTrainer) -> Path:
    """``<search log>/tensorboard``, beside the files it mirrors; else a new ``runs/<algorithm>-<time>``."""
    if trainer.log is not None:
        return trainer.log.directory / "tensorboard"
    return Path("runs") / f"{trainer.algorithm}-{time.strftime('%Y%m%d-%H%M%S')}"


def _after_existing_files(directory: Path) -> None:
    """Wait (under a second) until a new event file sorts after those in ``directory``.

    The reader takes the files in name order, which starts with the second a file was made; only
    a file read after the old ones can drop their stale steps (``purge_step``).
    """
    stamps = [
        int(part)
        for path in directory.glob("events.out.tfevents.*")
        if (part := path.name.split(".")[3]).isdigit()
    ]
    wait = max(stamps, default=0) + 1 - time.time()
    if 0 < wait <= 1:
        time.sleep(wait)


def _numeric(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _tag_names(candidates: tuple[str, ...]) -> list[str]:
    """One tag name per candidate; ``#<index>`` tells repeated names apart."""
    return [
        f"{name}#{index}" if candidates.count(name) > 1 else name for index, name in enumerate(candidates)
    ]


class TensorBoardCallback(Callback):
    """Writes a search's metrics and architecture weights as TensorBoard scalars (module docstring).

    ``log_dir``: where the event files go (default: :func:`default_log_dir`, chosen when the
    search begins; ``directory`` then says where). ``every``: write the step metrics and weights
    every this many steps (default: the trainer's ``log_every``, the steps of ``weights.jsonl``).
    """

    def __init__(self, log_dir: str | Path | None = None, every: int | None = None) -> None:
        if every is not None and every < 1:
            raise ValueError(f"TensorBoardCallback: every must be >= 1, got {every}")
        self._writer_class = _summary_writer_class()
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.every = every
        self.directory: Path | None = None
        self._writer: SummaryWriter | None = None
        self._every = every or 1
        self._tags: dict[str, list[str]] = {}
        self._weights_step: int | None = None  # the step whose weights were written last

    def on_search_begin(self, trainer: OneShotTrainer) -> None:
        self.close()  # the writer of an earlier search with this callback that raised
        self.directory = self.log_dir if self.log_dir is not None else default_log_dir(trainer)
        self._every = self.every or trainer.log_every
        # the whole space's candidates: what choice_weights() reports even after P-DARTS drops some
        self._tags = {
            choice.key: _tag_names(tuple(choice.candidates)) for choice in trainer.space.nas_choices
        }
        self._weights_step = None
        # Resumed: steps after the checkpoint's are redone, so the reader drops what the crashed
        # run wrote from the first of them on. Fresh: whatever an earlier run left here is dropped.
        resumed = trainer.epoch > 0 or trainer.step > 0
        purge_step = trainer.step + 1 if resumed else 0
        _after_existing_files(self.directory)
        self._writer = self._writer_class(log_dir=str(self.directory), purge_step=purge_step)

    def on_step_end(self, trainer: OneShotTrainer, step: int, metrics: Mapping[str, float]) -> None:
        if self._writer is None or step % self._every:
            return
        for name, value in metrics.items():
            if _numeric(value):
                self._writer.add_scalar(f"step/{name}", float(value), step)
        self._write_weights(trainer, step)

    def on_epoch_end(self, trainer: OneShotTrainer, epoch: int, metrics: Mapping[str, float]) -> None:
        if self._writer is None:
            return
        for name, value in metrics.items():
            if _numeric(value):
                self._writer.add_scalar(f"epoch/{name}", float(value), epoch)
        if self._weights_step != trainer.step:
            self._write_weights(trainer, trainer.step)
        self._writer.flush()

    def on_search_round(
        self, trainer: OneShotTrainer, step: int, round: int, rounds: int, metrics: Mapping[str, float]
    ) -> None:
        if self._writer is None:
            return
        for name, value in metrics.items():
            if _numeric(value):
                self._writer.add_scalar(f"search/{name}", float(value), step)
        self._write_weights(trainer, step)
        self._writer.flush()

    def on_search_end(self, trainer: OneShotTrainer, architecture: Mapping[str, Any]) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the event file (the search's end does it)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _write_weights(self, trainer: OneShotTrainer, step: int) -> None:
        assert self._writer is not None
        for key, values in trainer.choice_weights().items():
            names = self._tags.get(key) or [str(index) for index in range(len(values))]
            for name, value in zip(names, values, strict=False):
                self._writer.add_scalar(f"weights/{key}/{name}", float(value), step)
        self._weights_step = step
