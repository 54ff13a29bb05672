"""Warm trial starts: the daemon's side of the server that forks trials with their imports done.

A Python trial spends seconds importing torch before its first line; an experiment that opts in
(``trialPreload``) keeps one server process (:mod:`manager.training.warm_server`, run with the
trial's own interpreter) that has imported the listed modules, and each trial whose command is
``python[3] script.py args`` or ``python[3] -m module args`` is a fork of it. Everything else the
local service promises holds as for a cold launch: the child holds the launch lock, writes its pid
file (``<pid> warm``) before any code of the trial runs, is its own session, and its exit code
comes from the server, which reaps it. The server is started on the first warm launch and again
after it died; when it cannot start (an import fails, a module started threads or CUDA), one
warning is logged and every later trial launches cold. When it dies under running trials, their
ends are still seen (by pid) but their exit codes are lost, as for an adopted trial.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import shutil
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)

SERVER_SCRIPT = str(Path(__file__).with_name("warm_server.py"))
#: Seconds the server may take to import what it preloads before trials go cold.
DEFAULT_START_TIMEOUT = 120.0
#: The word after the pid in a warm trial's pid file.
WARM = "warm"
COLD = "cold"
_PYTHON = re.compile(r"python(3(\.\d+)?)?")
_MAX_PACKET = 1 << 20


@dataclass(frozen=True)
class WarmCommand:
    """A trial command the server can run: which interpreter, the trial's argv, and ``-m``'s module."""

    interpreter: str
    argv: tuple[str, ...]
    module: str | None = None


def warm_command(words: Sequence[str], cwd: Path, path: str | None) -> WarmCommand | None:
    """``words`` (a command without shell syntax) as a :class:`WarmCommand`; None: launch it cold.

    Only ``python[3] script.py args`` with an existing script, or ``python[3] -m module args``: an
    interpreter option (``-u``, ``-X``...) would need the interpreter's own start.
    """
    if len(words) < 2 or not _PYTHON.fullmatch(os.path.basename(words[0])):
        return None
    program = words[0]
    found = (
        str(cwd / program)
        if "/" in program and not os.path.isabs(program)
        else shutil.which(program, path=path)
    )
    if found is None or not os.path.isabs(found) or not os.access(found, os.X_OK):
        return None
    if words[1] == "-m":
        return WarmCommand(found, (words[2], *words[3:]), words[2]) if len(words) > 2 else None
    if words[1].startswith("-") or not (cwd / words[1]).is_file():
        return None
    return WarmCommand(found, tuple(words[1:]))


class WarmProcess:
    """A trial forked by the server: its pid, and its return code once the server reaped it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.unobserved = False  # the server died first: the end was seen, its code was not
        self._ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def ended(self, returncode: int | None) -> None:
        if self._ended.done():
            return
        if returncode is None:
            self.unobserved = True
            returncode = 0  # the main process is gone either way (see ``wait``)
        self.returncode = returncode
        self._ended.set_result(None)

    async def wait(self) -> int | None:
        """The return code (Popen's convention); None when it could not be known."""
        await asyncio.shield(self._ended)
        return None if self.unobserved else self.returncode


class WarmLauncher:
    """One experiment's server: started on the first warm launch, restarted after it died."""

    def __init__(self, modules: Sequence[str], start_timeout: float = DEFAULT_START_TIMEOUT) -> None:
        self.modules = tuple(modules)
        self.start_timeout = start_timeout
        self.gave_up: str | None = None  # why the server cannot start: every trial launches cold
        self._server: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._interpreter: str | None = None
        self._starting: asyncio.Lock | None = None
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[int | None]] = {}
        self._children: dict[int, WarmProcess] = {}

    @property
    def server_pid(self) -> int | None:
        return None if self._server is None else self._server.pid

    async def launch(
        self,
        command: WarmCommand,
        cwd: Path,
        environment: Mapping[str, str],
        pid_file: Path,
        fds: Sequence[int],
    ) -> WarmProcess | None:
        """Fork the trial from the server; None when it must launch cold (nothing of it ran)."""
        if not await self._ensure_server(command.interpreter, environment):
            return None
        sock = self._sock
        assert sock is not None
        request_id = next(self._ids)
        answer: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        request = {"id": request_id, "cwd": str(cwd), "env": dict(environment), "pid_file": str(pid_file)}
        request.update(argv=list(command.argv), module=command.module)
        try:
            socket.send_fds(sock, [json.dumps(request).encode()], list(fds))
        except OSError as exc:
            self._pending.pop(request_id, None)
            self._lost(f"cannot reach it: {exc}")
            return None
        pid = await answer
        if pid is None:  # the server died holding the launch: did it fork the child first?
            pid = await asyncio.to_thread(_started_pid, pid_file)
        if pid is None or pid < 0:
            return None
        process = self._children.get(pid)
        if process is None:  # adopted from its pid file: the server is gone
            process = WarmProcess(pid)
            _watch_pid(process)
        return process

    async def close(self) -> None:
        """Stop the server (trials it started go on: they are not its to end)."""
        server, sock = self._server, self._sock
        if sock is not None:
            self._lost("closed")
        if server is not None and server.returncode is None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait(), 5)
            if server.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    server.kill()
                await server.wait()

    async def _ensure_server(self, interpreter: str, environment: Mapping[str, str]) -> bool:
        if self.gave_up is not None:
            return False
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._sock is None:
                error = await self._start(interpreter, environment)
                if error is not None:
                    self.gave_up = error
                    log.warning(
                        "trialPreload: the warm launcher cannot start (%s); trials launch cold", error
                    )
                    return False
        return self._interpreter == interpreter  # another interpreter than the server's: cold

    async def _start(self, interpreter: str, environment: Mapping[str, str]) -> str | None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        server_env = {k: v for k, v in environment.items() if not k.startswith("NASCTL_")}
        server_env["CUDA_VISIBLE_DEVICES"] = ""  # the server has no business with a GPU
        try:
            with theirs:
                self._server = await asyncio.create_subprocess_exec(
                    *(interpreter, SERVER_SCRIPT, "--fd", str(theirs.fileno()), *self.modules),
                    env=server_env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                    pass_fds=(theirs.fileno(),),
                    start_new_session=True,
                )
            ours.setblocking(False)
            loop = asyncio.get_running_loop()
            first = await asyncio.wait_for(loop.sock_recv(ours, _MAX_PACKET), self.start_timeout)
            hello = json.loads(first) if first else {"ready": False, "error": "it exited at once"}
        except (OSError, ValueError, asyncio.TimeoutError) as exc:
            hello = {"ready": False, "error": f"{type(exc).__name__}: {exc}"}
        if not hello.get("ready"):
            ours.close()
            if self._server is not None and self._server.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self._server.kill()
            return str(hello.get("error"))
        self._sock, self._interpreter = ours, interpreter
        asyncio.get_running_loop().add_reader(ours.fileno(), self._on_message)
        return None

    def _on_message(self) -> None:
        sock = self._sock
        assert sock is not None
        try:
            data = sock.recv(_MAX_PACKET)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(str(exc))
            return
        if not data:
            self._lost("it exited")
            return
        message: dict[str, Any] = json.loads(data)
        if "started" in message:
            self._children[message["pid"]] = WarmProcess(message["pid"])
            self._answer(message["started"], message["pid"])
        elif "failed" in message:
            log.warning(
                "trialPreload: the server could not fork a trial (%s); it launches cold", message["error"]
            )
            self._answer(message["failed"], -1)
        elif "exit" in message:
            process = self._children.pop(message["exit"], None)
            if process is not None:
                process.ended(message["code"])

    def _answer(self, request_id: int, pid: int | None) -> None:
        answer = self._pending.pop(request_id, None)
        if answer is not None and not answer.done():
            answer.set_result(pid)

    def _lost(self, why: str) -> None:
        """The server is gone: pending launches learn it, running children are watched by pid."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()
        if why != "closed":
            log.warning(
                "trialPreload: the warm launcher's server ended (%s); the next trial restarts it", why
            )
        for request_id in list(self._pending):
            self._answer(request_id, None)
        children, self._children = self._children, {}
        for process in children.values():
            _watch_pid(process)


def _watch_pid(process: WarmProcess) -> None:
    """See the end of a child the server can no longer report (its exit code is lost)."""

    def gone() -> None:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(process.pid)
            while proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                with contextlib.suppress(psutil.TimeoutExpired):
                    proc.wait(timeout=0.5)

    task = asyncio.ensure_future(asyncio.to_thread(gone))
    task.add_done_callback(lambda _: process.ended(None))


def _started_pid(pid_file: Path, settle: float = 2.0) -> int | None:
    """The pid a forked child wrote, if the server forked it before it was lost. Blocking."""
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            text = pid_file.read_text()
            if text.endswith("\n"):
                return int(text.split()[0])
        time.sleep(0.02)
    return None
