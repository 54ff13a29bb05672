"""``nasctl.Experiment``: run and read an experiment from a script or a notebook.

::

    import nasctl

    exp = nasctl.Experiment("configs/digits-random.yaml").start()   # or a dict, or attach(ID)
    exp.wait()                                  # progress bar in a terminal or a notebook
    best = exp.best()[0]
    print(best.value, best.choices)
    best.write_architecture("best.json")        # for apply_fixed_architecture / retrain.py
    df = exp.trials_dataframe()                 # with pandas installed

The experiment runs in the daemon of a home (``home=``, default ``$NASCTL_HOME`` else
``~/.nasctl``), started on demand as the CLI does; this object is only a handle on it, built on
``nasctl.client``. So the experiment outlives the script, and nothing here stops it unless asked:
not leaving a ``with`` block, not Ctrl-C during :meth:`Experiment.wait` (it stops the waiting).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nasctl.api.config_source import ConfigSource, read_config
from nasctl.api.errors import ExperimentNotFound, ExperimentStateError, InvalidConfig
from nasctl.api.progress import Progress, choose_progress, interactive
from nasctl.api.records import Trial, trials_dataframe
from nasctl.client import ApiError, Client, DaemonInfo, DaemonUnreachable, default_home
from trials.status import FINISHED_EXPERIMENT_STATUSES, ExperimentStatus, TrialStatus

if TYPE_CHECKING:
    import pandas

POLL_SECONDS = 1.0


class Experiment:
    """A handle on one experiment of a daemon: start it, wait for it, read its trials, stop it."""

    def __init__(
        self,
        config: Any,
        *,
        home: str | os.PathLike[str] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        """``config``: a YAML path, a dict with the YAML's content, or a parsed ``ExperimentConfig``.

        Relative paths in it resolve against the YAML's folder, else the current folder, or
        ``base_dir`` when given. Nothing is sent before :meth:`start`.
        """
        self._open(read_config(config, base_dir), home, None)

    @classmethod
    def attach(cls, experiment_id: str, home: str | os.PathLike[str] | None = None) -> Experiment:
        """A handle on an existing experiment (the home's daemon is started if none runs, as the CLI
        does); ``ExperimentNotFound`` if the home has none by that id."""
        exp = cls.__new__(cls)
        exp._open(None, home, experiment_id)
        exp.describe()
        return exp

    def _open(
        self, source: ConfigSource | None, home: str | os.PathLike[str] | None, experiment_id: str | None
    ) -> None:
        """The handle's state: a config to send (a new experiment) or the id of one (attached)."""
        self._source = source
        self._home = Path(home).expanduser() if home is not None else default_home()
        self._id = experiment_id
        self._last: dict[str, Any] | None = None
        self._info: DaemonInfo | None = None
        self._client: Client | None = None

    # -- what it is ----------------------------------------------------------------------------
    @property
    def id(self) -> str | None:
        """The daemon's id for it; None until :meth:`start`."""
        return self._id

    @property
    def home(self) -> Path:
        return self._home

    @property
    def status(self) -> ExperimentStatus:
        """The status now (asks the daemon)."""
        return ExperimentStatus(self.describe()["status"])

    @property
    def config(self) -> dict[str, Any]:
        """The normalized config the daemon stored once started; before that, the dict to send."""
        if self._last is not None:
            return dict(self._last.get("config") or {})
        assert self._source is not None
        return dict(self._source.config)

    @property
    def dashboard_url(self) -> str:
        """The dashboard's link, token included (it starts the daemon if none runs)."""
        return self._daemon().dashboard_url

    def describe(self) -> dict[str, Any]:
        """The REST ``Experiment`` object now (docs/rest.md): counts, best, times, error, folder."""
        exp_id = self._require_id()
        with self._translated():
            self._last = self._call(lambda c: c.get_experiment(exp_id))
        return dict(self._last)

    # -- what it does --------------------------------------------------------------------------
    def start(self) -> Experiment:
        """Send the config to the daemon (started if none runs); returns self, so ``.start().wait()``."""
        if self._id is not None:
            raise ExperimentStateError(f"experiment {self._id} was started already; resume() continues it")
        source = self._source
        assert source is not None
        try:
            created = self._call(lambda c: c.create_experiment(source.config, source.base_dir), retry=False)
        except ApiError as exc:
            if exc.status in (400, 422):
                detail = exc.detail
                if source.origin != "config":
                    detail = f"{source.origin}: {detail.removeprefix('config: ')}"
                raise InvalidConfig(detail) from None
            raise
        self._id, self._last = str(created["id"]), created
        return self

    def wait(
        self, timeout: float | None = None, progress: bool = True, poll: float = POLL_SECONDS
    ) -> ExperimentStatus:
        """Block until the experiment is DONE, STOPPED or ERROR, and return that status.

        ``progress`` shows a live bar in a terminal (stderr) or a notebook, and nothing elsewhere.
        After ``timeout`` seconds a ``TimeoutError`` is raised and the experiment runs on; Ctrl-C
        stops the waiting, not the experiment.
        """
        exp_id = self._require_id()
        display = choose_progress(progress)
        deadline = None if timeout is None else time.monotonic() + timeout
        failed_seen: set[str] = set()
        try:
            while True:
                experiment = self.describe()
                if display is not None:
                    self._show(display, experiment, failed_seen)
                status = ExperimentStatus(experiment["status"])
                if status in FINISHED_EXPERIMENT_STATUSES:
                    return status
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(
                            f"experiment {exp_id} is still {status.value} after {timeout:g} s; "
                            "it runs on (wait() again, or stop())"
                        )
                    time.sleep(min(poll, left))
                else:
                    time.sleep(poll)
        finally:
            if display is not None:
                display.close()

    def stop(self) -> Experiment:
        """Cancel its running trials and wait until they are gone (status STOPPED)."""
        exp_id = self._require_id()
        with self._translated():
            self._last = self._call(lambda c: c.stop(exp_id))
        return self

    def resume(self) -> Experiment:
        """Continue a STOPPED, DONE or ERROR experiment; ``ExperimentStateError`` for an active one."""
        exp_id = self._require_id()
        with self._translated():
            self._last = self._call(lambda c: c.resume(exp_id))
        return self

    # -- its results ---------------------------------------------------------------------------
    def trials(self, status: TrialStatus | str | None = None) -> list[Trial]:
        """Every trial (or those with ``status``) in the order they were created."""
        exp_id = self._require_id()
        wanted = None if status is None else TrialStatus(status).value
        with self._translated():
            items = self._call(lambda c: list(c.iter_trials(exp_id, status=wanted)))
        return [Trial.from_rest(item) for item in items]

    def best(self, k: int = 1) -> list[Trial]:
        """The ``k`` best succeeded trials, best first, in the experiment's optimize mode.

        ``best()[0].architecture`` is what ``nasctl trial ls --top 1`` shows and ``create
        --foreground`` writes to ``best_architecture.json``; empty when no trial succeeded.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"best: k must be a whole number >= 1, got {k!r}")
        exp_id = self._require_id()
        with self._translated():
            items = self._call(lambda c: c.best(exp_id, k))
        return [Trial.from_rest(item) for item in items]

    def trials_dataframe(self) -> pandas.DataFrame:
        """One row per trial: ``id sequence_id status value``, ``choice.<key>`` per decision,
        ``metric.<name>`` per key of a dict final result, ``duration reason``. Needs pandas."""
        return trials_dataframe(self.trials())

    # -- plumbing ------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection to the daemon; the experiment is not touched."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Experiment:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Closes the connection only: the experiment lives in the daemon, and stopping it is
        always asked for by name (``stop()``), never a side effect of leaving a block."""
        self.close()

    def __repr__(self) -> str:
        if self._id is None:
            return f"<nasctl.Experiment (not started) home={str(self._home)!r}>"
        status = (self._last or {}).get("status", "?")
        return f"<nasctl.Experiment {self._id} {status} home={str(self._home)!r}>"

    def _require_id(self) -> str:
        if self._id is None:
            raise ExperimentStateError("the experiment has not been started: call start() first")
        return self._id

    def _daemon(self) -> DaemonInfo:
        if self._info is None:
            from nasctl.launcher import ensure_daemon

            say = _stderr_line if interactive() else _silent
            self._info = ensure_daemon(self._home, notify=say)
        return self._info

    def _call(self, request: Any, retry: bool = True) -> Any:
        """``request(client)``; once more on a new connection if the daemon moved (restarted).

        A create is never retried: the first one may have reached the daemon before the answer was lost.
        """
        for attempt in (1, 2) if retry else (2,):
            if self._client is None:
                self._client = Client.from_info(self._daemon())
            try:
                return request(self._client)
            except DaemonUnreachable:
                self.close()
                self._info = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """The daemon's 404 and 409 as the built-in kinds a script expects."""
        try:
            yield
        except ApiError as exc:
            if exc.status == 404:
                raise ExperimentNotFound(f"{exc.detail} (home {self._home})") from None
            if exc.status == 409:
                raise ExperimentStateError(exc.detail) from None
            raise

    def _show(self, display: Progress, experiment: dict[str, Any], failed_seen: set[str]) -> None:
        exp_id = str(experiment["id"])
        counts = experiment.get("trialCounts") or {}
        if counts.get(TrialStatus.FAILED.value, 0) > len(failed_seen):
            for trial in self.trials(TrialStatus.FAILED):
                if trial.id not in failed_seen:
                    failed_seen.add(trial.id)
                    display.message(f"trial {trial.id} FAILED: {trial.reason or 'no reason given'}")
        best = self._call(lambda c: c.best(exp_id, display.top)) if experiment.get("bestTrialId") else []
        display.update(experiment, best)


def _stderr_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _silent(message: str) -> None:
    """Outside a terminal or a notebook, starting the daemon is not announced."""
