"""``nasctl tensorboard`` and the trial's output folder, against a real daemon in a temp home.

Trials are ``tests/trials/tensorboard_trial.py``: no torch, results known from the architecture,
and an event file of their own (tag ``own/loss``) in ``trials.get_output_dir()``. What nasctl
writes is read back with TensorBoard's own reader (its multiplexer walks the log folder as
TensorBoard does).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml
from daemons import shut_down
from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
from tensorboard.util.tensor_util import make_ndarray
from waiting import wait_until

from manager.training import ray_runner
from manager.training.ray_files import zip_folder
from nasctl.client import Client
from nasctl.tensorboard_runs import MISSING_TENSORBOARD, TensorBoardRuns, run_name, scalars
from trials import env

REPO = Path(__file__).resolve().parents[1]
TRIAL_DIR = REPO / "tests" / "trials"
sys.path.insert(0, str(TRIAL_DIR))
from tensorboard_trial import OWN_TAG, STEPS, expected  # noqa: E402

TRIALS = 4


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["NASCTL_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def nasctl(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nasctl.cli", *args],
        env=env or cli_env(home),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def finished(client: Client, exp_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: (e := client.get_experiment(exp_id))["status"] in ("DONE", "STOPPED", "ERROR") and e,
        60,
        f"experiment {exp_id} to finish",
    )


def load(logdir: Path) -> EventMultiplexer:
    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    return multiplexer


def points(multiplexer: EventMultiplexer, run: str, tag: str) -> list[tuple[int, float]]:
    """The scalar series ``tag`` of ``run`` (TensorBoard keeps scalars as rank-0 tensors)."""
    return [(e.step, round(float(make_ndarray(e.tensor_proto)), 5)) for e in multiplexer.Tensors(run, tag)]


def ops_name(trial: dict[str, Any]) -> str:
    """The expected run name, spelled out for this test's space (op, then the chosen input)."""
    params = trial["parameters"]
    return f"{trial['id']}_{params['op']['_value']}-{'+'.join(params['skip']['_value'])}"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("tb") / "home"
    yield path
    shut_down(path)


def start(home: Path, folder: Path, command: str = "python3 tensorboard_trial.py") -> str:
    config = {
        "experimentName": "tb-test",
        "trialCommand": command,
        "trialCodeDirectory": str(TRIAL_DIR),
        "trialConcurrency": 2,
        "maxTrialNumber": TRIALS,
        "maxTrialDuration": "2m",
        "tuner": {"name": "Random", "classArgs": {"seed": 3}},
    }
    path = folder / "exp.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = nasctl(home, "create", "--config", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout)["id"])


@pytest.fixture(scope="module")
def experiment(home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    exp_id = start(home, tmp_path_factory.mktemp("cfg"))
    with Client.from_home(home) as client:
        exp = finished(client, exp_id)
        exp["trials"] = list(client.iter_trials(exp["id"]))
    assert [t["status"] for t in exp["trials"]] == ["SUCCEEDED"] * TRIALS
    return exp


@pytest.fixture(scope="module")
def written(home: Path, experiment: dict[str, Any]) -> Path:
    proc = nasctl(home, "tensorboard", experiment["id"], "--no-serve")
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


# -- the trial's output folder ------------------------------------------------------------------


def test_a_trial_gets_an_output_folder_inside_its_trial_folder(
    home: Path, experiment: dict[str, Any]
) -> None:
    with Client.from_home(home) as client:
        for trial in experiment["trials"]:
            seen = json.loads(client.log(experiment["id"], trial["id"]).splitlines()[0])
            assert seen["env"] == str(Path(trial["trialDir"]) / "output")
            assert Path(seen["env"]).is_dir()
            assert any(Path(seen["env"]).glob("events.out.tfevents.*"))


def test_outside_an_experiment_the_output_folder_is_nasctl_output_here(tmp_path: Path) -> None:
    code = "import trials; print(trials.get_output_dir())"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NASCTL_")}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert Path(out.stdout.strip()) == (tmp_path / "nasctl-output").resolve()
    assert (tmp_path / "nasctl-output").is_dir()


def test_a_ray_trial_gets_an_output_folder_in_its_node_folder(tmp_path: Path) -> None:
    (tmp_path / "seen.sh").write_text(
        'test -d "$NASCTL_OUTPUT_DIR" && echo "$NASCTL_OUTPUT_DIR" > "$NASCTL_TRIAL_DIR/seen"\n'
    )

    async def body() -> Path:
        data, digest = zip_folder(tmp_path)
        zipped: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        zipped.set_result(data)
        runner = ray_runner.TrialRunner("exp", f"t{os.getpid()}")
        identity = await runner.start("sh seen.sh", {}, "{}", (digest, [zipped]))
        assert await runner.wait() == 0
        return Path(identity["folder"])

    folder = asyncio.run(asyncio.wait_for(body(), 30))
    assert (folder / "seen").read_text().strip() == str(folder / "output")
    assert ray_runner.OUTPUT_DIR_VAR == env.OUTPUT_DIR
    assert ray_runner.OUTPUT_DIR_NAME == env.OUTPUT_DIR_NAME


# -- the runs -------------------------------------------------------------------------------------


def test_the_runs_are_written_into_the_experiment_folder(experiment: dict[str, Any], written: Path) -> None:
    assert written == Path(experiment["experimentDir"]).resolve() / "tensorboard"


def test_each_trial_is_one_run_named_by_its_id_and_ops(experiment: dict[str, Any], written: Path) -> None:
    runs = set(load(written).Runs())
    names = {ops_name(t) for t in experiment["trials"]}
    assert runs == names | {f"{name}/trial" for name in names}


def test_a_run_holds_the_reported_results_at_their_steps(experiment: dict[str, Any], written: Path) -> None:
    multiplexer = load(written)
    for trial in experiment["trials"]:
        intermediate, final = expected(trial["parameters"])
        run = ops_name(trial)
        for key in ("default", "acc"):
            want = [(step, round(v[key], 5)) for step, v in enumerate(intermediate)]
            assert points(multiplexer, run, f"intermediate/{key}") == want
            assert points(multiplexer, run, f"final/{key}") == [(STEPS, round(final[key], 5))]


def test_the_trials_own_log_shows_under_its_run(experiment: dict[str, Any], written: Path) -> None:
    multiplexer = load(written)
    for trial in experiment["trials"]:
        own = points(multiplexer, f"{ops_name(trial)}/trial", OWN_TAG)
        assert own == [(step, round(1.0 / (step + 1), 5)) for step in range(STEPS)]


def test_writing_again_replaces_the_runs(home: Path, experiment: dict[str, Any], written: Path) -> None:
    again = nasctl(home, "tensorboard", experiment["id"], "--no-serve")
    assert again.returncode == 0, again.stderr
    trial = experiment["trials"][0]
    assert len(points(load(written), ops_name(trial), "intermediate/default")) == STEPS
    assert all(Path(t["trialDir"], "output").is_dir() for t in experiment["trials"])  # links not followed


def test_a_refresh_adds_only_what_is_new(home: Path, experiment: dict[str, Any], tmp_path: Path) -> None:
    runs = TensorBoardRuns(tmp_path / "tb", experiment["id"])
    runs.reset()
    with Client.from_home(home) as client:
        first = runs.refresh(client)
        second = runs.refresh(client)
    runs.close()
    assert (first.runs, first.points) == (TRIALS, TRIALS * (STEPS + 1) * 2)
    assert (second.new_runs, second.points) == (0, 0)


def test_refreshes_while_the_experiment_runs_write_every_result_once(home: Path, tmp_path: Path) -> None:
    exp_id = start(home, tmp_path, "python3 tensorboard_trial.py --sleep 0.3")
    runs = TensorBoardRuns(tmp_path / "tb", exp_id)
    runs.reset()
    refreshes = []
    with Client.from_home(home) as client:
        while client.get_experiment(exp_id)["status"] not in ("DONE", "STOPPED", "ERROR"):
            refreshes.append(runs.refresh(client))
            time.sleep(0.2)
        refreshes.append(runs.refresh(client))
        trials = list(client.iter_trials(exp_id))
    runs.close()
    assert sum(1 for r in refreshes if r.points) > 2  # the results came in over several refreshes
    multiplexer = load(tmp_path / "tb")
    for trial in trials:
        intermediate, final = expected(trial["parameters"])
        want = [(step, round(v["default"], 5)) for step, v in enumerate(intermediate)]
        assert points(multiplexer, ops_name(trial), "intermediate/default") == want
        assert points(multiplexer, ops_name(trial), "final/acc") == [(STEPS, round(final["acc"], 5))]


def test_run_names_of_many_choices_keep_those_that_fit_and_count_the_rest() -> None:
    params = {f"cell{i}": {"_value": "sep_conv_5x5", "_idx": 3} for i in range(20)}
    name = run_name("Ab3dE", params)
    assert name.startswith("Ab3dE_sep_conv_5x5-sep_conv_5x5-")
    kept = name.split("_", 1)[1].rsplit("-+", 1)
    assert len(kept[0].split("-")) + int(kept[1]) == 20
    assert len(name) <= len("Ab3dE_") + 60


def test_run_names_hold_safe_characters_only() -> None:
    assert run_name("t1", {"lr": 0.001, "op": "conv 3x3/dw", "in": {"_value": ["a", "b"]}}) == (
        "t1_0.001-conv_3x3_dw-a+b"
    )


def test_only_finite_numbers_become_scalars() -> None:
    assert scalars({"default": 0.5, "name": "x", "loss": float("nan"), "ok": True}) == {"default": 0.5}
    assert scalars(3) == {"default": 3.0}


# -- serving --------------------------------------------------------------------------------------


def test_serves_the_runs_on_localhost_until_stopped(
    home: Path, experiment: dict[str, Any], written: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "nasctl.cli", "tensorboard", experiment["id"], "--port", str(port)],
        env=cli_env(home),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line, proc.stderr.read() if proc.stderr else ""
        children = psutil.Process(proc.pid).children(recursive=True)
        runs = wait_until(
            lambda: len(r := httpx.get(f"http://127.0.0.1:{port}/data/runs", trust_env=False).json()) and r,
            15,
        )
        assert {ops_name(t) for t in experiment["trials"]} <= set(runs)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert proc.returncode == 0
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive


def test_without_tensorboard_it_says_how_to_install_it(home: Path, tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import sys\n"
        "class NoTensorBoard:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'tensorboard':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoTensorBoard())\n"
    )
    env = cli_env(home)
    env["PYTHONPATH"] = os.pathsep.join([str(shim), env["PYTHONPATH"]])
    proc = nasctl(home, "tensorboard", "--no-serve", env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {MISSING_TENSORBOARD}"
