"""Reading a batch ahead (the graph trace, the metrics check) without taking it from training.

A ``DataLoader`` or a list gives a new iterator on every pass, so reading its first batch costs
nothing. A loader whose iterator is itself (NNI's DALI wrapper, any iterator or generator) would
lose that batch from the pass in progress, so :func:`peek` wraps it in a :class:`Replay` that
hands the batch back first. Such loaders restart after each pass (DALI) or are spent after one
(a generator); a spent one is refused with :class:`EmptyDataError` by whoever finds it empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

Batch = Any
_END = object()


class EmptyDataError(ValueError):
    """Data yielded no batch where one was needed; the message names the data and the fix."""


def no_batch(what: str) -> EmptyDataError:
    """The error for data (``what`` names it) that yielded no batch."""
    return EmptyDataError(
        f"{what} yielded no batch; it may be a one-pass iterator (a generator) that is already "
        "exhausted: pass a DataLoader or a list, which can be iterated again every epoch"
    )


class Replay:
    """``source``, with ``pending`` batches (read ahead from it) handed back first on the next pass.

    Everything else (``len``, a ``DataLoader``'s ``sampler``) is ``source``'s.
    """

    def __init__(self, source: Iterable[Batch], pending: list[Batch]) -> None:
        self.source = source
        self.pending = pending

    def __iter__(self) -> Iterator[Batch]:
        while self.pending:
            yield self.pending.pop(0)
        yield from self.source

    def __len__(self) -> int:
        return len(self.source)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        if name in ("source", "pending"):  # not set yet (copying): no recursion into source
            raise AttributeError(name)
        return getattr(self.source, name)


def one_pass(data: Iterable[Batch]) -> Iterator[Batch]:
    """One pass over ``data``. A self-iterating loader that a reader left at the very end of a pass
    (a cycle that stopped there) ends that pass at once, and restarts: its next pass is taken then."""
    iterator = iter(data)
    first = next(iterator, _END)
    if first is _END and (iterator is data or isinstance(data, Replay)):
        iterator = iter(data)
        first = next(iterator, _END)
    if first is _END:
        return
    yield first
    yield from iterator


def peek(data: Iterable[Batch], what: str) -> tuple[Batch, Iterable[Batch]]:
    """The next batch of ``data``, and what to iterate from now on so that it is not lost:
    ``data`` itself when it re-iterates, else a :class:`Replay` of it. ``what`` names the data
    for the :class:`EmptyDataError` raised when it yields nothing."""
    if isinstance(data, Replay) and data.pending:
        return data.pending[0], data
    source = data.source if isinstance(data, Replay) else data
    iterator = iter(source)
    try:
        batch = next(iterator)
    except StopIteration:
        raise no_batch(what) from None
    if iterator is not source:  # a fresh iterator per pass: nothing was taken from a pass
        return batch, data
    if isinstance(data, Replay):
        data.pending.append(batch)
        return batch, data
    return batch, Replay(source, [batch])
