"""The warm launcher's server: imports the modules an experiment preloads once, forks a trial each.

Run by path with the trial's own interpreter (``python .../warm_server.py torch``), so it is
stdlib only and imports nothing of nasctl: what the server has loaded, every trial inherits.
It talks to the daemon over one ``SOCK_SEQPACKET`` socket (fd given as ``--fd``), one JSON
object a packet:

- server -> daemon, first: ``{"ready": true, "modules": [...]}`` or ``{"ready": false,
  "error": "..."}`` (then it exits); later ``{"started": id, "pid": pid}``, ``{"failed": id,
  "error": "..."}`` and ``{"exit": pid, "code": returncode}`` (Popen's convention: negative for
  a signal) for every child it reaps.
- daemon -> server: a launch ``{"id", "cwd", "env", "argv", "module", "pid_file"}`` with three
  fds attached: the trial's stdout, stderr and its held launch lock.

Fork safety: the server never runs an operation of what it imported (no thread pool starts), and
checks after one probe fork that it is alone in its process (OpenBLAS, loaded by numpy and torch,
stops its pool at a fork) and that CUDA is not initialised; otherwise it refuses to serve.
The server ends when the daemon's end closes; children it leaves go on (a later daemon adopts them).
"""

from __future__ import annotations

import builtins
import importlib
import importlib.machinery
import io
import json
import os
import runpy
import selectors
import signal
import socket
import sys
import types
from collections.abc import Mapping
from typing import Any

#: Environment variables that set the CPU threads of a trial, in the order torch reads them.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_MAX_PACKET = 1 << 20


def _send(sock: socket.socket, message: Mapping[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def preload(modules: list[str]) -> str | None:
    """Import ``modules``; None when forking is then safe, else why it is not."""
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException as exc:  # any failure means: launch cold
            return f"cannot import {name}: {type(exc).__name__}: {exc}"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "importing the preloaded modules initialised CUDA; a forked trial could not use it"
    pid = os.fork()  # a probe: pools that stop at a fork (OpenBLAS) stop now
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    if (count := _threads()) > 1:
        return f"the preloaded modules started {count - 1} thread(s); forking them is not safe"
    return None


def serve(sock: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    """Fork a child per launch until the daemon goes; returns (launch, fds) in a child, None at the end."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ, "launch")
    selector.register(wake_read, selectors.EVENT_READ, "reap")
    while True:
        for key, _ in selector.select():
            if key.data == "reap":
                os.read(wake_read, 4096)
                _reap(sock)
                continue
            try:
                data, fds, _flags, _addr = socket.recv_fds(sock, _MAX_PACKET, 8)
            except InterruptedError:
                continue
            if not data:
                return None
            launch = json.loads(data)
            sys.stdout.flush()
            sys.stderr.flush()
            try:
                pid = os.fork()
            except OSError as exc:
                _send(sock, {"failed": launch["id"], "error": str(exc)})
                pid = -1
            if pid == 0:
                selector.close()
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for fd in (wake_read, wake_write):
                    os.close(fd)
                sock.close()
                return launch, fds
            for fd in fds:
                os.close(fd)
            if pid > 0:
                _send(sock, {"started": launch["id"], "pid": pid})
        _reap(sock)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        try:
            _send(sock, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})
        except OSError:
            return


def become_trial(launch: Mapping[str, Any], fds: list[int]) -> None:
    """In the forked child: take the trial's session, folder, environment, streams and argv."""
    os.setsid()
    out, err, lock = fds
    stdin = os.open(os.devnull, os.O_RDONLY)
    for source, target in ((stdin, 0), (out, 1), (err, 2)):
        os.dup2(source, target)
        os.close(source)
    os.set_inheritable(lock, True)  # held as long as the trial or anything it starts lives
    os.chdir(launch["cwd"])
    environment: dict[str, str] = launch["env"]
    server_path = os.environ.get("PYTHONPATH", "")
    os.environ.clear()
    os.environ.update(environment)  # CUDA_VISIBLE_DEVICES included: CUDA has not been touched
    with open(launch["pid_file"], "w") as file:
        file.write(f"{os.getpid()} warm\n")
    _set_threads(environment)
    _reseed()
    _set_streams(environment)
    _set_path(launch, server_path, environment.get("PYTHONPATH", ""))
    sys.argv = list(launch["argv"])


def _set_threads(environment: Mapping[str, str]) -> None:
    """torch read the thread count when the server loaded it; the trial's variables decide."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    for name in THREAD_VARIABLES:
        value = environment.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            torch.set_num_threads(int(value))
            return


def _reseed() -> None:
    """Every fork would draw torch's random numbers from the server's seed; a cold start seeds anew.

    (Python's ``random`` and numpy reseed themselves at a fork.) CUDA's seeding is queued, not run.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.seed()


def _set_streams(environment: Mapping[str, str]) -> None:
    unbuffered = bool(environment.get("PYTHONUNBUFFERED"))
    encoding = environment.get("PYTHONIOENCODING", "").split(":")[0] or sys.stdout.encoding

    def writer(fd: int, line: bool) -> io.TextIOWrapper:
        raw = open(fd, "wb", buffering=0 if unbuffered else -1, closefd=False)  # noqa: SIM115
        return io.TextIOWrapper(
            raw, encoding=encoding, errors="backslashreplace" if fd == 2 else None,
            line_buffering=line and not unbuffered, write_through=unbuffered,
        )  # fmt: skip

    sys.stdin = sys.__stdin__ = open(0, closefd=False, encoding=encoding)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = writer(1, line=False)
    sys.stderr = sys.__stderr__ = writer(2, line=True)


def _set_path(launch: Mapping[str, Any], server_path: str, trial_path: str) -> None:
    """sys.path as ``python script.py`` in the trial's folder and environment would have it."""
    cwd = launch["cwd"]
    dropped = {os.path.abspath(p) for p in server_path.split(os.pathsep) if p}
    dropped.add(os.path.dirname(os.path.abspath(__file__)))
    kept = [p for p in sys.path if p and os.path.abspath(p) not in dropped]
    first = cwd if launch.get("module") else os.path.dirname(os.path.join(cwd, launch["argv"][0]))
    added = [os.path.join(cwd, p) for p in trial_path.split(os.pathsep) if p]
    sys.path[:] = [os.path.abspath(first), *added, *kept]
    importlib.invalidate_caches()  # the server's finders cached folders as they were when it started


def run_trial(launch: Mapping[str, Any]) -> None:
    """Run the trial's script (or module) as ``__main__``; its exceptions end the process as Python would."""
    module = launch.get("module")
    sys.excepthook = _trial_excepthook
    if module:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:  # as ``python script.py`` does: a fresh __main__ whose __file__ is absolute, argv untouched
        path = os.path.abspath(launch["argv"][0])
        main = types.ModuleType("__main__")
        main.__file__ = path
        main.__cached__ = None
        main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
        main.__builtins__ = builtins
        sys.modules["__main__"] = main
        with open(path, "rb") as file:
            code = compile(file.read(), path, "exec")
        exec(code, main.__dict__)


def _trial_excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    """An uncaught exception's traceback starts in the trial's code, as a cold trial's does."""
    ours = (__file__, runpy.__file__, "<frozen runpy>")
    while tb is not None and tb.tb_frame.f_code.co_filename in ours:
        tb = tb.tb_next
    sys.__excepthook__(kind, value.with_traceback(tb), tb)


def main(argv: list[str]) -> None:
    fd = int(argv[argv.index("--fd") + 1])
    modules = argv[argv.index("--fd") + 2 :]
    sock = socket.socket(fileno=fd)
    error = preload(modules)
    if error is not None:
        _send(sock, {"ready": False, "error": error})
        return
    _send(sock, {"ready": True, "modules": modules})
    child = serve(sock)
    if child is None:
        return
    launch, fds = child
    become_trial(launch, fds)
    del child, launch["env"]
    run_trial(launch)


if __name__ == "__main__":
    main(sys.argv)
