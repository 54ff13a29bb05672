"""The store's one writer thread: two lanes, so that a flood of metric ingests neither starves
a launch nor costs a transaction each.

Urgent jobs (every write but a metric ingest: a launch, a trial's end, the REST routes' writes)
run first, one at a time, in submission order. Grouped jobs (metric ingests) wait until no
urgent job does; then the writer takes all of them that are queued (up to :data:`MAX_GROUP`) and
hands them to the group runner at once, which stores them in one transaction. A grouped job's
future resolves only after the group's transaction committed: no caller hears "stored" of a write
that a crash could still undo.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
G = TypeVar("G")

#: The most grouped jobs in one transaction: an urgent job waits for at most one group.
MAX_GROUP = 200


@dataclass(frozen=True)
class Outcome:
    """What one grouped job came to: its result, or the exception it raised."""

    result: Any = None
    error: BaseException | None = None


@dataclass(frozen=True)
class _Job:
    run: Callable[[], Any]
    future: Future[Any]


class WriterThread(Generic[G]):
    """One thread that runs urgent jobs first and grouped jobs together. Thread-safe.

    ``run_group`` gets the queued grouped jobs' items (1 to :data:`MAX_GROUP`, in submission
    order) and returns one :class:`Outcome` each; when it raises, every job of the group fails
    with that exception.
    """

    def __init__(self, name: str, run_group: Callable[[Sequence[G]], Sequence[Outcome]]) -> None:
        self._run_group = run_group
        self._urgent: deque[_Job] = deque()
        self._grouped: deque[tuple[G, Future[Any]]] = deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        # a store left open at exit still writes what was queued (as a ThreadPoolExecutor does)
        atexit.register(_shutdown_if_alive, weakref.ref(self))

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` on the writer, before any grouped job still queued."""
        future: Future[T] = Future()
        with self._wake:
            self._check_open()
            self._urgent.append(_Job(lambda: fn(*args, **kwargs), future))
            self._wake.notify()
        return future

    def submit_grouped(self, item: G) -> Future[Any]:
        """Queue ``item`` for the group runner; the future resolves with its :class:`Outcome`'s
        result (or raises its error) once its group is stored."""
        future: Future[Any] = Future()
        with self._wake:
            self._check_open()
            self._grouped.append((item, future))
            self._wake.notify()
        return future

    def shutdown(self) -> None:
        """Run what is queued, then stop the thread; later submissions raise RuntimeError."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _check_open(self) -> None:
        if self._stopping:
            raise RuntimeError("cannot write to a closed store")

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._urgent and not self._grouped and not self._stopping:
                    self._wake.wait()
                if self._urgent:
                    job: _Job | None = self._urgent.popleft()
                    group: list[tuple[G, Future[Any]]] = []
                elif self._grouped:
                    job = None
                    group = [self._grouped.popleft() for _ in range(min(MAX_GROUP, len(self._grouped)))]
                else:
                    return  # stopping, and nothing is left
            if job is not None:
                _run(job)
            else:
                self._serve_group(group)

    def _serve_group(self, group: list[tuple[G, Future[Any]]]) -> None:
        live = [(item, future) for item, future in group if future.set_running_or_notify_cancel()]
        if not live:
            return
        items = [item for item, _ in live]
        futures = [future for _, future in live]
        try:
            outcomes = self._run_group(items)
        except BaseException as exc:
            for future in futures:
                future.set_exception(exc)
            return
        for future, outcome in zip(futures, outcomes, strict=True):
            if outcome.error is not None:
                future.set_exception(outcome.error)
            else:
                future.set_result(outcome.result)


def _run(job: _Job) -> None:
    if not job.future.set_running_or_notify_cancel():
        return
    try:
        result = job.run()
    except BaseException as exc:
        job.future.set_exception(exc)
    else:
        job.future.set_result(result)


def _shutdown_if_alive(ref: weakref.ref[WriterThread[Any]]) -> None:
    writer = ref()
    if writer is not None:
        writer.shutdown()
