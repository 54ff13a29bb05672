"""Shared fixtures: a real daemon on a free port, configs for the fast trial, waiting helpers.

Tests talk to the daemon over real HTTP with the real token; trials are real processes
(``tests/trials/fast_trial.py``, which imports no torch, so each starts in a few tens of ms).
The only thing faked is what this machine lacks: GPUs (``gpu_inventory``), and tests marked
``gpu`` are skipped unless ``nvidia-smi`` reports one.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray_group
from postgres import REQUIRED as POSTGRES_REQUIRED
from postgres import PostgresServer, postgres_problem, start_postgres
from waiting import wait_until

from manager.daemon import Daemon

TRIALS_DIR = Path(__file__).parent / "trials"
FAST_TRIAL = TRIALS_DIR / "fast_trial.py"
FINISHED = ("DONE", "STOPPED", "ERROR")

#: A small space: 3 x 2 = 6 architectures.
SMALL_SPACE: dict[str, Any] = {
    "conv": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "maxpool"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["in0", "in1"], "n_chosen": 1}},
}


def _has_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def ctrl_c_acts() -> None:
    """``preexec_fn`` for a child that a test stops with Ctrl-C (SIGINT): a suite started as a
    background job of a shell without job control inherits SIGINT ignored, and so would the child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny convolutions run far faster on one thread than on two busy ones (one-shot tests)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [item for item in items if "gpu" in item.keywords]
    if marked and not _has_gpu():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (nvidia-smi found none)")
        for item in marked:
            item.add_marker(skip)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The Ray group runs for minutes, mostly waiting on Ray: start it now, beside the others."""
    ray_group.start_early(session.items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    ray_group.stop_early()


@dataclass
class RunningDaemon:
    """A daemon started in this process, and an HTTP client that carries its token."""

    daemon: Daemon
    base_url: str
    token: str
    home: Path
    client: httpx.Client

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def create(self, config: dict[str, Any], base_dir: Path | str = "/") -> dict[str, Any]:
        """POST an experiment and return it (fails the test with the daemon's detail otherwise)."""
        response = self.client.post("/experiments", json={"config": config, "baseDir": str(base_dir)})
        assert response.status_code == 201, response.text
        return response.json()

    def experiment(self, experiment_id: str) -> dict[str, Any]:
        response = self.client.get(f"/experiments/{experiment_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_status(
        self, experiment_id: str, statuses: str | tuple[str, ...] = FINISHED, timeout: float = 60
    ) -> dict[str, Any]:
        """Poll the experiment until its status is one of ``statuses``; fail after ``timeout`` s."""
        wanted = (statuses,) if isinstance(statuses, str) else statuses
        return wait_until(
            lambda: (exp := self.experiment(experiment_id))["status"] in wanted and exp,
            timeout,
            f"experiment {experiment_id} in {'/'.join(wanted)}",
        )

    def trials(self, experiment_id: str, **params: Any) -> list[dict[str, Any]]:
        """Every trial of the experiment (in sequence order unless ``sort`` says otherwise)."""
        response = self.client.get(f"/experiments/{experiment_id}/trials", params={"limit": 1000, **params})
        assert response.status_code == 200, response.text
        return response.json()["items"]

    def trial(self, experiment_id: str, trial_id: str) -> dict[str, Any]:
        response = self.client.get(f"/experiments/{experiment_id}/trials/{trial_id}")
        assert response.status_code == 200, response.text
        return response.json()


def start_daemon(home: Path, **kwargs: Any) -> RunningDaemon:
    daemon = Daemon(home, **kwargs)
    port, token = daemon.start_in_thread()
    base_url = f"http://127.0.0.1:{port}/api/v1"
    client = httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60, trust_env=False
    )
    return RunningDaemon(daemon, base_url, token, Path(home), client)


@pytest.fixture
def daemon_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., RunningDaemon]]:
    """Start daemons (``factory(home=None, **Daemon kwargs)``); all are shut down after the test."""
    started: list[RunningDaemon] = []
    monkeypatch.setenv("NASCTL_HOME", str(tmp_path / "home"))

    def factory(home: Path | None = None, **kwargs: Any) -> RunningDaemon:
        kwargs.setdefault("kill_grace", 2.0)
        running = start_daemon(home or tmp_path / "home", **kwargs)
        started.append(running)
        return running

    yield factory
    for running in reversed(started):
        running.client.close()
        running.daemon.shutdown()


@pytest.fixture
def daemon(daemon_factory: Callable[..., RunningDaemon]) -> RunningDaemon:
    """A real daemon on a free 127.0.0.1 port with a fresh NASCTL_HOME."""
    return daemon_factory()


def fast_trial_config(name: str, args: str = "", **overrides: Any) -> dict[str, Any]:
    """A config running ``fast_trial.py`` on the small inline space: 6 trials, 3 at a time."""
    config: dict[str, Any] = {
        "experimentName": name,
        "trialCommand": f"{sys.executable} {FAST_TRIAL.name} {args}".strip(),
        "trialCodeDirectory": str(TRIALS_DIR),
        "searchSpace": SMALL_SPACE,
        "maxTrialNumber": 6,
        "trialConcurrency": 3,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """One daemon shared by a module's tests (each module gets its own)."""
    running = start_daemon(tmp_path_factory.mktemp("home"), kill_grace=2.0)
    yield running
    running.client.close()
    running.daemon.shutdown()


@pytest.fixture
def fast_config(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Build a config (as the JSON body's ``config``) that runs ``fast_trial.py``.

    ``fast_config(args="--sleep 1", space="inline" | "file" | None, **camelCase overrides)``;
    ``space=None`` leaves the search space out, so the daemon runs ss_gen.
    """

    def build(args: str = "", space: str | None = "inline", **overrides: Any) -> dict[str, Any]:
        config: dict[str, Any] = {
            "experimentName": "fast",
            "trialCommand": f"{sys.executable} {FAST_TRIAL.name} {args}".strip(),
            "trialCodeDirectory": str(TRIALS_DIR),
            "trialConcurrency": 1,
            "maxTrialNumber": 3,
        }
        if space == "inline":
            config["searchSpace"] = SMALL_SPACE
        elif space == "file":
            path = tmp_path / "search_space.json"
            path.write_text(json.dumps(SMALL_SPACE))
            config["searchSpaceFile"] = str(path)
        config.update(overrides)
        return config

    return build


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (skips without one, unless NASCTL_REQUIRE_POSTGRES=1)."""
    problem = postgres_problem()
    if problem is not None:
        if POSTGRES_REQUIRED:
            raise RuntimeError(
                f"PostgreSQL tests required (NASCTL_REQUIRE_POSTGRES=1) but cannot run: {problem}"
            )
        pytest.skip(problem)
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty PostgreSQL database, dropped after the test."""
    url = postgres_server.new_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """A store suite's database, each test on both: None (SQLite in the home) or a fresh PostgreSQL one."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
