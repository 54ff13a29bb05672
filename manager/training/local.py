"""The local training service: every trial is a process on this machine.

A trialCommand that is plain words naming a program (``python3 model.py --epochs 3``) is run
directly; anything else (quotes, ``$VAR``, ``;``, ``|``, a shell builtin...) through ``sh -c``. The
shell would change nothing for the first kind but cost a process per trial, and its exit codes
hide signals (128+N).

A trial's folder ``<experimentDir>/trials/<trialId>/`` holds ``parameter.json`` (the packed
parameter), ``stdout`` and ``stderr`` (the raw streams: the OS writes them to the files, so any
language's output lands there, nothing passes through the daemon), ``metrics.jsonl`` (the
SDK's records) and ``output/`` (the trial's own files, ``NASCTL_OUTPUT_DIR``; a launch again
keeps what an earlier launch wrote there, as a trial may resume from its checkpoints). The process starts in a new session (its own process group) with
cwd = trialCodeDirectory, so a kill reaches everything it started: SIGTERM to the group and to
every descendant (also ones that made their own session), a grace period, then SIGKILL for
whatever is left. Exits are awaited through asyncio's child watcher, never polled.

The streams are opened in append mode, so :meth:`LocalTrainingService.trim_logs` can cut a log
that passed ``max_log_bytes`` back to nothing while the trial keeps writing (a trial that floods
its stdout costs bounded disk and no daemon memory).

Exactly-once launch (docs/architecture.md, "Crash recovery"): before the process starts, the
daemon takes an exclusive ``flock`` on the trial's ``.launch.lock`` and hands that open file to
the process, which holds the lock as long as it (or anything it started) lives. The process is a
tiny ``sh`` that writes its pid to ``.pid`` and then ``exec``s the trial's command (same pid, so
the trial's process is still the one started). A later daemon reads the launch from the folder
alone (:func:`find_launch_in`): lock free and no ``.pid``: no code of the trial ever ran, nor
will; ``.pid`` written: the trial started, and that pid (if it is still the process that wrote
the file) runs it; lock held without ``.pid``: the ``sh`` is about to write it, wait.

With ``trialPreload`` a ``python script.py`` trial is forked from a server that has imported
torch already (:mod:`manager.training.warm_launch`); it writes ``<pid> warm`` to ``.pid`` itself and
behaves as above in everything else. The trial's :class:`TrialProcess` says which way it started.

A trial started by an earlier daemon (which crashed) is *adopted*: :meth:`adopt` checks that its
pid still is the same process (same start time), and its end is awaited through a pidfd (Linux)
or, elsewhere, psutil in a thread. It is not our child, so its exit status cannot be known:
:class:`TrialExit` says so (``observed=False``), and the experiment decides by its final result.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from manager.training.base import (
    LOG_STREAMS,
    FoundLaunch,
    LaunchState,
    MetricsChunk,
    TrainingService,
    TrialExit,
    TrialProcess,
    TrialSpec,
)
from manager.training.metric_channel import read_metrics_file
from manager.training.registry import DEFAULT_KILL_GRACE, DEFAULT_MAX_LOG_BYTES, ServiceSettings
from manager.training.warm_launch import COLD, WARM, WarmLauncher, WarmProcess, warm_command
from trials import env

if TYPE_CHECKING:
    from manager.config import TrainingServiceConfig

log = logging.getLogger(__name__)

#: Two start times of one process, read twice by psutil, agree to well within this (seconds).
SAME_PROCESS_TOLERANCE = 0.05
SHELL = "/bin/sh"
#: In the trial's folder: the lock its process holds while it lives, and the pid it writes first.
LAUNCH_LOCK_NAME = ".launch.lock"
PID_FILE_NAME = ".pid"
#: ``sh -c`` script that records the pid (``$1``) and becomes the trial's command (the rest).
_RECORD_PID_THEN_EXEC = 'echo $$ > "$1" && shift && exec "$@"'
#: How long a launch whose lock is held may take to write its pid before recovery gives up.
LAUNCH_SETTLE_SECONDS = 10.0
#: Words made of these characters mean the same to sh as to a plain split on spaces.
_PLAIN_COMMAND = re.compile(r"[A-Za-z0-9_./:,+@%=-]+(?: +[A-Za-z0-9_./:,+@%=-]+)*")


def command_argv(command: str, cwd: Path, path: str | None) -> tuple[list[str], bool]:
    """``(argv, via_shell)`` to start ``command`` in ``cwd`` with, ``path`` being the trial's PATH.

    Plain words whose first one is a program (found on ``path`` by an absolute folder, or a path
    from ``cwd``; not a variable assignment, not a builtin such as ``exit`` or ``cd``) run
    directly; everything else goes through ``sh -c``.
    """
    stripped = command.strip()
    if not _PLAIN_COMMAND.fullmatch(stripped):
        return [SHELL, "-c", command], True
    words = stripped.split()
    program = words[0]
    if "/" in program:  # exec resolves it from the trial's folder, as sh would
        candidate = Path(program) if os.path.isabs(program) else cwd / program
        found = str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    else:
        found = shutil.which(program, path=path)
    if "=" in program or found is None or not os.path.isabs(found):
        return [SHELL, "-c", command], True
    return words, False


def inherited_environment(source: Mapping[str, str]) -> dict[str, str]:
    """What every trial inherits: ``source`` (the daemon's environment) minus nasctl's variables."""
    out = {k: v for k, v in source.items() if not k.startswith("NASCTL_") or k == "NASCTL_HOME"}
    out.setdefault("PYTHONUNBUFFERED", "1")  # so `nasctl trial log` shows prints as they happen
    # CUDA numbers GPUs fastest first unless told otherwise; nvidia-smi (whose indices we hand out)
    # numbers them by PCI bus: on a machine with mixed GPUs a trial would land on another GPU.
    out.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    return out


def trial_environment(
    spec: TrialSpec, base: Mapping[str, str] | None = None, *, inherited: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a trial: the daemon's own (minus nasctl's variables; ``inherited``: that,
    computed once), the spec's extra variables, then the NASCTL_* set and CUDA_VISIBLE_DEVICES
    ("" for a CPU trial)."""
    if inherited is None:
        inherited = inherited_environment(os.environ if base is None else base)
    out = dict(inherited)
    out.update(spec.env)
    out.update(
        {
            env.EXPERIMENT_ID: spec.experiment_id,
            env.TRIAL_ID: spec.trial_id,
            env.SEQUENCE_ID: str(spec.sequence_id),
            env.TRIAL_DIR: str(spec.trial_dir),
            env.OUTPUT_DIR: str(spec.trial_dir / env.OUTPUT_DIR_NAME),
            env.PARAMETER_FILE: str(spec.trial_dir / env.PARAMETER_FILE_NAME),
            env.CUDA_VISIBLE_DEVICES: ",".join(str(g) for g in spec.gpus),
        }
    )
    return out


@dataclass
class _Running:
    spec: TrialSpec
    process: asyncio.subprocess.Process | WarmProcess | None  # None for an adopted trial (not our child)
    pid: int
    pgid: int
    create_time: float
    killing: bool = False
    ended: asyncio.Future[None] | None = None  # an adopted trial's end
    log_trims: dict[str, int] = field(default_factory=dict)
    via_shell: bool = True  # sh reports a child killed by signal N as exit code 128+N

    async def wait_ended(self) -> None:
        if self.process is not None:
            await self.process.wait()
        elif self.ended is not None:
            await asyncio.shield(self.ended)

    @property
    def main_alive(self) -> bool:
        if self.process is not None:
            return self.process.returncode is None
        return self.ended is None or not self.ended.done()


class LocalTrainingService(TrainingService):
    """Runs trials as local subprocesses; see the module docstring for the layout."""

    def __init__(
        self,
        kill_grace: float = DEFAULT_KILL_GRACE,
        base_env: Mapping[str, str] | None = None,
        max_log_bytes: int | None = DEFAULT_MAX_LOG_BYTES,
        preload: tuple[str, ...] = (),
    ):
        """``preload``: modules a warm launcher's server imports for the trials (empty: all cold)."""
        self.kill_grace = kill_grace
        self.max_log_bytes = max_log_bytes
        self._base_env = base_env
        #: The daemon's environment does not change while it runs: filtered once, not per trial.
        self._inherited = inherited_environment(os.environ if base_env is None else base_env)
        self._running: dict[str, _Running] = {}
        self.warm = WarmLauncher(preload) if preload else None

    async def submit(self, spec: TrialSpec, parameter: Mapping[str, Any]) -> TrialProcess:
        if spec.trial_id in self._running:
            raise RuntimeError(f"trial {spec.trial_id} is already running")
        trial_dir = spec.trial_dir
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / env.PARAMETER_FILE_NAME).write_text(json.dumps(dict(parameter), allow_nan=True))
        (trial_dir / env.METRICS_FILE_NAME).write_bytes(b"")  # a launch again starts an empty channel
        (trial_dir / env.OUTPUT_DIR_NAME).mkdir(exist_ok=True)  # kept across launches: the trial's own
        if not spec.working_dir.is_dir():
            raise FileNotFoundError(f"trialCodeDirectory {spec.working_dir} does not exist")
        pid_file = trial_dir / PID_FILE_NAME
        pid_file.unlink(missing_ok=True)  # a partial one, from a launch that never got to run
        with (
            _open_log(trial_dir / env.STDOUT_FILE_NAME) as out,
            _open_log(trial_dir / env.STDERR_FILE_NAME) as err,
            _launch_lock(trial_dir) as lock,
        ):
            environment = trial_environment(spec, inherited=self._inherited)
            command, via_shell = command_argv(spec.command, spec.working_dir, environment.get("PATH"))
            warm = (
                None
                if via_shell or self.warm is None
                else warm_command(command, spec.working_dir, environment.get("PATH"))
            )
            if warm is not None and self.warm is not None:
                fds = (out.fileno(), err.fileno(), lock)
                forked = await self.warm.launch(warm, spec.working_dir, environment, pid_file, fds)
                if forked is not None:
                    return self._started(spec, forked, False, WARM)
            # dash runs a script without a #! line as a shell script, as a shell would
            process = await asyncio.create_subprocess_exec(
                *(SHELL, "-c", _RECORD_PID_THEN_EXEC, "nasctl-trial", str(pid_file), *command),
                cwd=spec.working_dir,
                env=environment,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                pass_fds=(lock,),
            )
        return self._started(spec, process, via_shell, COLD)

    def _started(
        self, spec: TrialSpec, process: asyncio.subprocess.Process | WarmProcess, via_shell: bool, launch: str
    ) -> TrialProcess:
        try:
            create_time = psutil.Process(process.pid).create_time()
        except psutil.Error:  # already gone (and reaped): the clock is close enough
            create_time = time.time()
        self._running[spec.trial_id] = _Running(
            spec, process, process.pid, process.pid, create_time, via_shell=via_shell
        )
        return TrialProcess(spec.trial_id, process.pid, create_time, launch)

    async def is_alive(self, spec: TrialSpec, process: TrialProcess) -> bool:
        return await asyncio.to_thread(is_same_process, process.pid, process.create_time)

    async def adopt(self, spec: TrialSpec, process: TrialProcess) -> bool:
        """Take over a trial an earlier daemon started; False when its pid no longer is that process."""
        if spec.trial_id in self._running:
            raise RuntimeError(f"trial {spec.trial_id} is already running")
        pid, create_time = process.pid, process.create_time
        found = await asyncio.to_thread(_find_trial_process, pid, create_time)
        if found is None:
            return False
        pidfd, pgid = found
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()
        running = _Running(spec, None, pid, pgid, create_time, ended=ended)
        if pidfd is not None:

            def on_exit() -> None:
                loop.remove_reader(pidfd)
                os.close(pidfd)
                if not ended.done():
                    ended.set_result(None)

            loop.add_reader(pidfd, on_exit)
        else:  # no pidfd on this system: psutil waits (polling) in a thread
            watcher = asyncio.ensure_future(asyncio.to_thread(_wait_gone, pid, create_time))
            watcher.add_done_callback(lambda _: ended.done() or ended.set_result(None))
        self._running[spec.trial_id] = running
        return True

    async def find_launch(self, spec: TrialSpec) -> FoundLaunch:
        return await asyncio.to_thread(find_launch_in, spec.trial_id, spec.trial_dir)

    async def kill_stale(self, spec: TrialSpec, process: TrialProcess) -> bool:
        return await asyncio.to_thread(kill_stale_trial, process.pid, process.create_time, self.kill_grace)

    async def wait(self, trial_id: str) -> TrialExit:
        running = self._running[trial_id]
        if running.process is None:
            await running.wait_ended()
            if not running.killing:
                _signal_group(running.pgid, signal.SIGTERM)
                asyncio.get_running_loop().call_later(
                    self.kill_grace, _signal_group, running.pgid, signal.SIGKILL
                )
            self._running.pop(trial_id, None)
            return TrialExit.unobserved()
        returncode = await running.process.wait()
        if not running.killing:
            # The main process is gone; whatever it left in its group goes too (no orphans).
            _signal_group(running.pgid, signal.SIGTERM)
            asyncio.get_running_loop().call_later(
                self.kill_grace, _signal_group, running.pgid, signal.SIGKILL
            )
        self._running.pop(trial_id, None)
        if returncode is None:  # a warm trial whose server died before it: as for an adopted one
            return TrialExit.unobserved()
        return TrialExit.from_returncode(returncode, via_shell=running.via_shell)

    async def kill(self, trial_id: str, grace: float | None = None) -> None:
        running = self._running.get(trial_id)
        if running is None or running.killing:
            if running is not None:
                await running.wait_ended()
            return
        running.killing = True
        grace = self.kill_grace if grace is None else grace
        await asyncio.to_thread(kill_tree, running.pid, running.pgid, grace, running.main_alive)
        await running.wait_ended()

    def read_metrics(self, spec: TrialSpec, offset: int, final: bool = False) -> MetricsChunk:
        return read_metrics_file(spec.trial_dir / env.METRICS_FILE_NAME, offset, final)

    @property
    def trims_logs(self) -> bool:
        return self.max_log_bytes is not None

    def trim_logs(self, spec: TrialSpec) -> tuple[str, ...]:
        """Cut a log that passed ``max_log_bytes`` back to one line saying so; says what it cut."""
        if self.max_log_bytes is None:
            return ()
        notes = []
        for stream in LOG_STREAMS:
            path = spec.trial_dir / stream
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if size <= self.max_log_bytes:
                continue
            try:
                with open(path, "r+b") as file:
                    file.truncate(0)
                with open(path, "ab") as file:
                    file.write(
                        f"[nasctl: {size} bytes of {stream} were dropped: it passed the limit of "
                        f"{self.max_log_bytes} bytes]\n".encode()
                    )
            except OSError as exc:
                log.warning("trial %s: cannot trim %s: %s", spec.trial_id, stream, exc)
                continue
            notes.append(f"{stream} passed {self.max_log_bytes} bytes: {size} bytes were dropped")
        return tuple(notes)

    def running_trials(self) -> list[str]:
        return list(self._running)

    async def close(self) -> None:
        await asyncio.gather(*(self.kill(trial_id) for trial_id in list(self._running)))
        if self.warm is not None:
            await self.warm.close()


def create_local_service(config: TrainingServiceConfig, settings: ServiceSettings) -> LocalTrainingService:
    """The registry's factory for ``platform: local`` (GPU sharing is the loop's, not the service's)."""
    return LocalTrainingService(
        kill_grace=settings.kill_grace, max_log_bytes=settings.max_log_bytes, preload=config.trial_preload
    )


# -- process trees ----------------------------------------------------------------------------


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            pass
    return out


def kill_tree(pid: int, pgid: int, grace: float, main_alive: bool = True) -> None:
    """SIGTERM a trial's process group and all descendants of ``pid``, wait up to ``grace``
    seconds, then SIGKILL every one still there. Blocking: run it in a thread.

    The descendants are listed before the first signal, because a child whose parent dies is
    re-parented to init and can no longer be found from ``pid``; those that started their own
    session are not in the group, so they are signalled one by one.
    """
    tree = _descendants(pid) if main_alive else []
    _signal_group(pgid, signal.SIGTERM)
    if main_alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    delay = 0.01
    while time.monotonic() < deadline:
        main_running = main_alive and _pid_alive(pid)
        if not main_running and not _alive(tree):
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    # Anything started during the grace period is a descendant of a survivor.
    survivors = _alive(tree)
    for proc in list(survivors):
        survivors.extend(p for p in _descendants(proc.pid) if p not in survivors)
    if main_alive and _pid_alive(pid):
        survivors.extend(p for p in _descendants(pid) if p not in survivors)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    _signal_group(pgid, signal.SIGKILL)
    for proc in survivors:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(_alive(survivors), timeout=2)


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as ended)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def is_same_process(pid: int, create_time: float) -> bool:
    """True while ``pid`` runs and is the process that started at ``create_time`` (not a reuse)."""
    try:
        proc = psutil.Process(pid)
        return (
            abs(proc.create_time() - create_time) <= SAME_PROCESS_TOLERANCE
            and proc.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.Error:
        return False


def kill_stale_trial(pid: int, create_time: float, grace: float = DEFAULT_KILL_GRACE) -> bool:
    """Kill a trial left by an earlier daemon if ``pid`` still is that process (same start time).

    Returns True if there was such a process. Blocking: run it in a thread.
    """
    if not is_same_process(pid, create_time):
        return False
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return False
    kill_tree(pid, pgid, grace)
    return True


def _find_trial_process(pid: int, create_time: float) -> tuple[int | None, int] | None:
    """(a pidfd or None, the process group) of ``pid`` if it still is that trial; else None.

    The pidfd is opened before the start time is checked, so it cannot refer to a reused pid.
    """
    pidfd: int | None = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        except OSError:  # pidfd not supported by this kernel
            pidfd = None
    try:
        if not is_same_process(pid, create_time):
            raise ProcessLookupError(pid)
        return pidfd, os.getpgid(pid)
    except ProcessLookupError:
        if pidfd is not None:
            os.close(pidfd)
        return None


def _wait_gone(pid: int, create_time: float) -> None:
    """Block until ``pid`` (that very process) has ended (psutil polls a process that is not ours)."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > SAME_PROCESS_TOLERANCE:
            return
        while proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
            with contextlib.suppress(psutil.TimeoutExpired):
                proc.wait(timeout=1)
    except psutil.Error:
        return


@contextlib.contextmanager
def _launch_lock(trial_dir: Path) -> Iterator[int]:
    """The trial's launch lock, taken (exclusive) for the process about to start; yields its fd.

    The daemon's copy closes on leaving; the copy the process inherits keeps the lock.
    """
    fd = os.open(trial_dir / LAUNCH_LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield fd
    finally:
        os.close(fd)


def _lock_held(path: Path) -> bool:
    """True while some process holds ``path``'s flock (a trial's process, or its children)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock taken just now
    return False


def _written_pid(path: Path) -> tuple[int, float, str] | None:
    """The pid in a ``.pid`` file, when it was written, and how the trial started ("warm" after the
    pid, or "cold"); None while absent or incomplete."""
    try:
        text = path.read_text()
        written = path.stat().st_mtime
    except OSError:
        return None
    words = text.split()
    if not text.endswith("\n") or not words or not words[0].isdigit() or words[1:] not in ([], [WARM]):
        return None
    return int(words[0]), written, WARM if words[1:] else COLD


def find_launch_in(trial_id: str, trial_dir: Path, settle: float = LAUNCH_SETTLE_SECONDS) -> FoundLaunch:
    """Whether a launch of the trial in ``trial_dir`` started it; see the module docstring.

    The lock is read before the pid file: when nothing holds the lock, every process that
    could still write the file has ended, so a file absent then stays absent. Blocking.
    """
    deadline = time.monotonic() + settle
    while True:
        held = _lock_held(trial_dir / LAUNCH_LOCK_NAME)
        written = _written_pid(trial_dir / PID_FILE_NAME)
        if written is not None:
            break
        if not held:
            return FoundLaunch(LaunchState.NOT_STARTED)
        if time.monotonic() > deadline:
            raise TimeoutError(f"trial {trial_id}: its launch holds its lock but wrote no pid in {settle} s")
        time.sleep(0.005)
    pid, when, launch = written
    try:
        proc = psutil.Process(pid)
        create_time = proc.create_time()
        # the process that wrote the file existed before it; a reused pid came after its end
        if create_time <= when + SAME_PROCESS_TOLERANCE and proc.status() != psutil.STATUS_ZOMBIE:
            return FoundLaunch(LaunchState.RUNNING, TrialProcess(trial_id, pid, create_time, launch))
    except psutil.Error:
        pass
    return FoundLaunch(LaunchState.ENDED, TrialProcess(trial_id, pid, when, launch))


def _open_log(path: Path) -> Any:
    """A fresh, empty log opened for appending (so trimming it leaves no hole behind the writer)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    return os.fdopen(fd, "ab")
