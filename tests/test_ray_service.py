"""The Ray training service without a cluster: what it costs a daemon that does not use it, its
one-line errors, and the node-side runner on its own (tests/ray_cluster/ run it on a real cluster)."""

from __future__ import annotations

import ast
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from manager.config import TrainingServiceConfig
from manager.training import ray_runner
from manager.training.registry import ServiceSettings, create_training_service
from trials import env

REPO = Path(__file__).resolve().parent.parent


def run_python(code: str, *, isolated: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, *(["-I"] if isolated else []), "-c", code]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(argv, capture_output=True, text=True, cwd="/", env=environment, timeout=120)


def test_a_local_experiment_never_imports_ray() -> None:
    result = run_python(
        "import sys\n"
        "from manager.loop import experiments\n"
        "from manager.config import parse_config\n"
        "from manager.training.registry import ServiceSettings, create_training_service\n"
        "config = parse_config({'trialCommand': 'x'}, __import__('pathlib').Path('/'))\n"
        "create_training_service(config.training_service, ServiceSettings())\n"
        "print('ray' in sys.modules)\n"
    )
    assert result.stdout.strip() == "False", result.stderr


def test_without_ray_a_ray_experiment_gets_one_line_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ValueError) as info:
        create_training_service(TrainingServiceConfig(platform="ray"), ServiceSettings())
    assert str(info.value) == "trainingService.platform: ray needs Ray: pip install 'nasctl[ray]'"


def test_an_address_where_nothing_listens_is_refused_at_once() -> None:
    pytest.importorskip("ray")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    config = TrainingServiceConfig(platform="ray", address=f"127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(ValueError) as info:
        create_training_service(config, ServiceSettings())
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert message.startswith(f"trainingService.address: cannot reach the Ray cluster at '127.0.0.1:{port}'")
    assert "\n" not in message


def test_the_runner_imports_the_standard_library_only() -> None:
    tree = ast.parse(Path(ray_runner.__file__).read_text())
    top: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            top.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top.add(node.module.split(".")[0])
    assert top - sys.stdlib_module_names - {"__future__"} == set()  # Ray: found in sys.modules on a node


def test_the_runner_ships_by_value_to_a_python_without_nasctl() -> None:
    pytest.importorskip("ray")
    from ray import cloudpickle

    from manager.training.ray_connect import _register_runner_by_value

    _register_runner_by_value()
    blob = cloudpickle.dumps(ray_runner.TrialRunner).hex()
    result = run_python(
        "import sys, asyncio\n"
        "class NoNasctl:  # as on a node where nasctl is not installed\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('manager', 'trials', 'nasctl'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, NoNasctl())\n"
        "from ray import cloudpickle\n"
        f"cls = cloudpickle.loads(bytes.fromhex('{blob}'))\n"
        "print(asyncio.run(cls('e', 't').claim_unstarted()))\n",
        isolated=True,
    )
    assert result.stdout.strip() == "True", result.stderr


def test_the_runner_names_the_variables_trials_env_defines() -> None:
    assert (ray_runner.TRIAL_ID_VAR, ray_runner.EXPERIMENT_ID_VAR) == (env.TRIAL_ID, env.EXPERIMENT_ID)
    assert (ray_runner.TRIAL_DIR_VAR, ray_runner.PARAMETER_FILE_VAR) == (env.TRIAL_DIR, env.PARAMETER_FILE)
    assert ray_runner.PARAMETER_FILE_NAME == env.PARAMETER_FILE_NAME
    assert ray_runner.STREAMS == (env.STDOUT_FILE_NAME, env.STDERR_FILE_NAME, env.METRICS_FILE_NAME)


# -- the node-side runner, in this process ------------------------------------------------------


def package(folder: Path) -> tuple[str, list[Any]]:
    """What the daemon hands ``start``: a content hash and the zip (here a done future, not an ObjectRef)."""
    from manager.training.ray_files import zip_folder

    data, digest = zip_folder(folder)
    future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    future.set_result(data)
    return digest, [future]


def test_a_claimed_runner_never_starts_and_a_started_one_cannot_be_claimed(tmp_path: Path) -> None:
    async def body() -> None:
        claimed = ray_runner.TrialRunner("exp", "t1")
        assert await claimed.claim_unstarted()
        with pytest.raises(RuntimeError, match="never starts"):
            await claimed.start("true", {}, "{}", package(tmp_path))
        started = ray_runner.TrialRunner("exp", "t2")
        identity = await started.start("true", {}, "{}", package(tmp_path))
        assert await started.start("true", {}, "{}", package(tmp_path)) == identity  # idempotent
        assert not await started.claim_unstarted()
        assert await started.wait() == 0

    asyncio.run(asyncio.wait_for(body(), 30))


def test_the_runner_kills_a_grandchild_that_made_its_own_session(tmp_path: Path) -> None:
    (tmp_path / "tree.sh").write_text(
        'setsid sleep 300 &\necho $! > "$NASCTL_TRIAL_DIR/grandchild"\nsleep 300\n'
    )

    async def body() -> None:
        runner = ray_runner.TrialRunner("exp", f"t{os.getpid()}", kill_grace=1.0)
        identity = await runner.start(
            "sh tree.sh", {env.TRIAL_ID: runner.trial_id, env.EXPERIMENT_ID: "exp"}, "{}", package(tmp_path)
        )
        try:
            written = Path(identity["folder"]) / "grandchild"
            deadline = time.monotonic() + 10
            while not written.exists() or not written.read_text().endswith("\n"):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            grandchild = int(written.read_text())
            while os.getsid(grandchild) == os.getsid(identity["pid"]):  # setsid is about to run
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            assert await runner.kill(1.0) == -15
            await asyncio.sleep(0.1)
            assert not ray_runner._alive(grandchild)
        finally:
            await runner.kill(0.1)
        await runner.close()

    asyncio.run(asyncio.wait_for(body(), 30))
