"""The daemon process: one per ``$NASCTL_HOME``, serving the REST API and running experiments.

It binds its socket itself (port 0 picks a free port with no race), serves with uvicorn on one
asyncio loop, and only once it listens writes ``$NASCTL_HOME/manager.json`` (pid, host, port,
token, startedAt, version; mode 0600, atomically) so that a client reading the file can connect
at once. An exclusive lock on ``manager.lock`` makes a second daemon for the same home refuse to
start. On start, experiments that a previous daemon left active are marked STOPPED so that
``resume`` continues them (their live trials keep running and are re-adopted then, see
:mod:`manager.loop`); on a clean exit every running experiment is stopped, its trials
waited for (each gets a terminal status), and manager.json removed.

Security: every route but health needs the token (compared in constant time); the daemon listens
on 127.0.0.1 unless ``allow_remote`` (then it warns); a new home is made 0700 and manager.json
0600; request bodies are bounded and, on loopback, the Host header must be a loopback name
(:mod:`manager.http.guard`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from manager.http.app import create_app
from manager.http.guard import MAX_BODY_BYTES, RequestGuard
from manager.http.state import VERSION, ApiState
from manager.loop.experiments import ExperimentManager
from manager.profiling import profiled
from manager.store import Store, masked_url
from manager.training.child_watcher import use_pidfd_child_watcher
from manager.training.registry import DEFAULT_MAX_LOG_BYTES
from trials.messages import one_line

log = logging.getLogger("manager")

MANAGER_FILE = "manager.json"
LOCK_FILE = "manager.lock"
LOG_FILE = "manager.log"
START_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 600.0
_LOGGERS = ("manager", "uvicorn.error")


REMOTE_WARNING = (
    "listening on %s: anyone who can reach this port and has the token controls the daemon "
    "(and can run commands as this user)"
)


class DaemonError(RuntimeError):
    """The daemon cannot start (or is already running); the message is one line for a person."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Daemon:
    """The nasctl manager daemon of one home; see the module docstring."""

    def __init__(
        self,
        home: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        db_url: str | None = None,
        allow_remote: bool = False,
        *,
        kill_grace: float = 5.0,
        gpu_inventory: Callable[[], Any] | None = None,
        max_log_bytes: int | None = DEFAULT_MAX_LOG_BYTES,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.home = Path(home).expanduser()
        self.max_log_bytes = max_log_bytes
        self.max_body_bytes = max_body_bytes
        self.host = host
        self.port = port
        self.db_url = db_url
        self.allow_remote = allow_remote
        self.kill_grace = kill_grace
        self.gpu_inventory = gpu_inventory
        self.token = ""
        self.store: Store | None = None
        self.manager: ExperimentManager | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_fd: int | None = None
        self._log_handler: logging.Handler | None = None
        self._socket: socket.socket | None = None
        self._closed = False

    @property
    def manager_file(self) -> Path:
        return self.home / MANAGER_FILE

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- start -------------------------------------------------------------------------------
    def start_in_thread(self) -> tuple[int, str]:
        """Serve in a background thread; returns (port, token) once the daemon answers requests.

        Raises :class:`DaemonError` (one line) when it cannot start; nothing is left behind then.
        """
        try:
            self._prepare_home()
            self._check_host()
            self._take_lock()
            self._socket = self._bind()
            self.port = self._socket.getsockname()[1]
            self.store = self._open_store()
            use_pidfd_child_watcher()  # no thread per trial to learn that it ended
            self.token = secrets.token_urlsafe(32)
            self.manager = ExperimentManager(
                self.store,
                self.home,
                kill_grace=self.kill_grace,
                gpu_inventory=self.gpu_inventory,
                max_log_bytes=self.max_log_bytes,
            )
            app = create_app(ApiState(self.store, self.manager, self.token), lifespan=self._lifespan)
            guarded = RequestGuard(
                app, max_body_bytes=self.max_body_bytes, loopback_only=is_loopback(self.host)
            )
            config = uvicorn.Config(
                guarded,
                log_config=None,
                access_log=False,
                loop="asyncio",
                http="h11",
                lifespan="on",
                timeout_graceful_shutdown=5,
            )
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._serve, name="nasctl-daemon", daemon=True)
            self._thread.start()
            self._wait_started()
            self._write_manager_file()
        except BaseException as exc:
            self._cleanup()
            if isinstance(exc, DaemonError):
                raise
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise DaemonError(f"the daemon could not start: {one_line(exc)}") from exc
        log.info(
            "nasctl daemon %s listening on %s (pid %d, home %s)", VERSION, self.url, os.getpid(), self.home
        )
        return self.port, self.token

    def _prepare_home(self) -> None:
        try:
            if not self.home.exists():
                self.home.mkdir(parents=True, mode=0o700)  # the database holds configs and commands
        except FileExistsError:
            pass
        except OSError as exc:
            raise DaemonError(f"cannot create home {self.home}: {exc.strerror}") from None
        if not os.access(self.home, os.W_OK | os.X_OK):
            raise DaemonError(f"home {self.home} is not writable")
        self.home = self.home.resolve()
        handler = logging.FileHandler(self.home / LOG_FILE)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            logger.addHandler(handler)
            if logger.level == logging.NOTSET or logger.level > logging.INFO:
                logger.setLevel(logging.INFO)
        self._log_handler = handler

    def _check_host(self) -> None:
        if is_loopback(self.host):
            return
        if not self.allow_remote:
            raise DaemonError(
                f"refusing to listen on {self.host}: other machines could reach the daemon; "
                "use 127.0.0.1, or pass --allow-remote if you mean it"
            )
        log.warning(REMOTE_WARNING, self.host)

    def _take_lock(self) -> None:
        fd = os.open(self.home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise DaemonError(f"a daemon already runs for {self.home}{self._running_daemon()}") from None
        self._lock_fd = fd

    def _running_daemon(self) -> str:
        try:
            info = json.loads(self.manager_file.read_text())
            return f" (pid {info['pid']}, port {info['port']})"
        except (OSError, ValueError, KeyError, TypeError):
            return ""

    def _bind(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise DaemonError(f"cannot listen on {self.host}: {exc.strerror}") from None
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise DaemonError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
        sock.set_inheritable(False)
        return sock

    def _open_store(self) -> Store:
        try:
            return Store.open(self.home, self.db_url)
        except Exception as exc:
            where = masked_url(self.db_url) if self.db_url else str(self.home / "nasctl.db")
            raise DaemonError(f"cannot open the database {where}: {one_line(exc)}") from None

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        assert self.manager is not None
        recovered = await self.manager.recover()
        if recovered:
            log.info(
                "marked %d experiment(s) of the previous daemon STOPPED (resume continues them): %s",
                len(recovered),
                ", ".join(recovered),
            )
        yield
        await self.manager.shutdown()

    def _serve(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            with profiled("loop"):
                self._server.run(sockets=[self._socket])
        except BaseException as exc:
            self._thread_error = exc
            log.exception("the daemon's server stopped with an error")

    def _wait_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive():
                why = one_line(self._thread_error) if self._thread_error else "see manager.log"
                raise DaemonError(f"the daemon's server did not start: {why}")
            if time.monotonic() > deadline:
                raise DaemonError(f"the daemon's server did not start within {START_TIMEOUT:.0f} s")
            time.sleep(0.005)

    def _write_manager_file(self) -> None:
        info = {
            "pid": os.getpid(),
            "host": self.host,
            "port": self.port,
            "token": self.token,
            "startedAt": int(time.time() * 1000),
            "version": VERSION,
        }
        temporary = self.home / f".{MANAGER_FILE}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (json.dumps(info, indent=2) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.manager_file)

    # -- stop --------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop every running experiment (waiting for its trials), stop serving, release all."""
        if self._closed:
            return
        serving = self._thread is not None and self._thread.is_alive()
        if serving and self._loop is not None and self.manager is not None:
            future = asyncio.run_coroutine_threadsafe(self.manager.shutdown(), self._loop)
            try:
                future.result(timeout=SHUTDOWN_TIMEOUT)
            except Exception:
                log.exception("stopping the experiments failed")
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=SHUTDOWN_TIMEOUT)
        self._remove_manager_file()
        log.info("nasctl daemon stopped")
        self._cleanup()

    def _remove_manager_file(self) -> None:
        try:
            info = json.loads(self.manager_file.read_text())
        except (OSError, ValueError):
            return
        if info.get("pid") == os.getpid() and info.get("token") == self.token:
            try:
                self.manager_file.unlink(missing_ok=True)
            except OSError as exc:  # a read-only home: the next client sees the pid is gone
                log.warning("cannot remove %s: %s", self.manager_file, exc.strerror)

    def _cleanup(self) -> None:
        self._closed = True
        if self._server is not None and self._thread is not None and self._thread.is_alive():
            self._server.should_exit = True  # a start that failed after the server began
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        if self.store is not None:
            self.store.close()
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None
        if self._log_handler is not None:
            for name in _LOGGERS:
                logging.getLogger(name).removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None

    # -- the foreground process ------------------------------------------------------------
    def serve_forever(self, on_started: Callable[[int, str], None] | None = None) -> None:
        """Start, then serve until SIGTERM or SIGINT; then shut down cleanly.

        Raises :class:`DaemonError` when it cannot start, or when the server died on its own.
        """
        stop = threading.Event()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {
                sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
            }
        try:
            port, token = self.start_in_thread()
            if on_started is not None:
                on_started(port, token)
            crashed = False
            while not stop.wait(0.5):
                if self._thread is not None and not self._thread.is_alive():
                    log.error("the server thread ended unexpectedly")
                    crashed = True
                    break
            log.info("stopping: signal received" if stop.is_set() else "stopping")
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if crashed:
            why = one_line(self._thread_error) if self._thread_error else "see manager.log"
            raise DaemonError(f"the daemon's server stopped unexpectedly: {why}")
