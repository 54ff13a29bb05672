"""The ``nasctl`` command line, run as a real subprocess against a real daemon in ``tmp_path``.

Every daemon a test starts is stopped at teardown (the ``home`` fixtures), so no process is left.
Trials are ``tests/trials/cli_trial.py``: no torch, a known space of 12 architectures.
"""

from __future__ import annotations

import csv
import io
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

import psutil
import pytest
import yaml
from conftest import ctrl_c_acts
from daemons import shut_down
from waiting import wait_until

from nasctl.client import Client, DaemonInfo
from nasctl.launcher import pid_alive

REPO = Path(__file__).resolve().parents[1]
TRIAL_DIR = REPO / "tests" / "trials"
HEAVY_MODULES = ("httpx", "fastapi", "torch", "uvicorn", "sqlalchemy", "manager", "starlette", "numpy")


# -- helpers -------------------------------------------------------------------------------------


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.pop("NASCTL_DEBUG", None)
    env["NASCTL_HOME"] = str(home)
    # Trial commands say `python3`: it must be this interpreter (the venv), as under `make demo`.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def nasctl(
    home: Path, *args: str, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nasctl.cli", *args],
        env=cli_env(home),
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def nasctl_json(home: Path, *args: str) -> Any:
    proc = nasctl(home, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def write_config(folder: Path, name: str = "exp.yaml", **overrides: Any) -> Path:
    config: dict[str, Any] = {
        "experimentName": "cli-test",
        "trialCommand": "python3 cli_trial.py",
        "trialCodeDirectory": str(TRIAL_DIR),
        "trialConcurrency": 2,
        "maxTrialNumber": 4,
        "maxTrialDuration": "2m",
        "tuner": {"name": "Random", "classArgs": {"seed": 1}},
    }
    config.update(overrides)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def create(home: Path, config: Path) -> dict[str, Any]:
    proc = nasctl(home, "create", "--config", str(config), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def client_of(home: Path) -> Client:
    return Client.from_home(home)


def wait_finished(home: Path, exp_id: str, timeout: float = 60) -> dict[str, Any]:
    with client_of(home) as client:

        def finished() -> dict[str, Any] | None:
            exp = client.get_experiment(exp_id)
            return exp if exp["status"] in ("DONE", "STOPPED", "ERROR") else None

        return wait_until(finished, timeout, f"experiment {exp_id} to finish")


def wait_running_trials(home: Path, exp_id: str, n: int = 1) -> None:
    with client_of(home) as client:
        wait_until(
            lambda: client.get_experiment(exp_id)["trialCounts"].get("RUNNING", 0) >= n,
            what=f"{n} running trial(s) of {exp_id}",
        )


def one_error_line(stderr: str) -> str:
    """The one ``error:`` line of a failed command (a notice that a daemon was started may precede it)."""
    lines = [
        line
        for line in stderr.splitlines()
        if line.strip() and not line.startswith("started the nasctl daemon")
    ]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A fresh NASCTL_HOME whose daemon (if any test starts one) is stopped afterwards."""
    path = tmp_path / "home"
    yield path
    shut_down(path)


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One daemon for the tests that each create their own experiment and name it by ID."""
    path = tmp_path_factory.mktemp("shared") / "home"
    proc = nasctl(path, "manager", "start")
    assert proc.returncode == 0, proc.stderr
    yield path
    shut_down(path)


@pytest.fixture(scope="module")
def finished_experiment(shared_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    config = write_config(tmp_path_factory.mktemp("cfg"), experimentName="finished", maxTrialNumber=4)
    exp = create(shared_home, config)
    return wait_finished(shared_home, exp["id"])


# -- start-up cost -------------------------------------------------------------------------------


def test_importing_the_cli_imports_nothing_heavy() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import nasctl.cli"],
        capture_output=True,
        text=True,
        check=True,
    )
    modules = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert not modules & set(HEAVY_MODULES), sorted(modules & set(HEAVY_MODULES))


def test_help_answers_well_under_a_second(tmp_path: Path) -> None:
    nasctl(tmp_path, "--help")  # warm the file cache
    started = time.monotonic()
    proc = nasctl(tmp_path, "--help")
    took = time.monotonic() - started
    assert proc.returncode == 0
    assert "create" in proc.stdout and "ss_gen" in proc.stdout
    assert took < 0.8, f"nasctl --help took {took:.2f} s"


# -- create, on-demand daemon, and the whole life of an experiment -------------------------------


def test_create_starts_a_detached_daemon_on_demand(home: Path, tmp_path: Path) -> None:
    proc = nasctl(home, "create", "--config", str(write_config(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    assert "started the nasctl daemon" in proc.stderr
    info = DaemonInfo.read(home)
    assert info is not None and pid_alive(info.pid)
    assert os.getsid(info.pid) == info.pid  # its own session: a Ctrl-C in this shell does not reach it
    assert "dashboard: http://127.0.0.1:" in proc.stdout and f"token={info.token}" in proc.stdout
    exp_id = proc.stdout.split()[2]
    with client_of(home) as client:
        assert client.get_experiment(exp_id)["name"] == "cli-test"


def test_second_command_reuses_the_running_daemon(home: Path, tmp_path: Path) -> None:
    create(home, write_config(tmp_path))
    first = DaemonInfo.read(home)
    proc = nasctl(home, "list")
    assert proc.returncode == 0
    assert "started" not in proc.stderr
    assert DaemonInfo.read(home) == first


def test_status_shows_progress_best_and_dashboard_link(shared_home: Path, finished_experiment: dict) -> None:
    proc = nasctl(shared_home, "status", finished_experiment["id"])
    assert proc.returncode == 0, proc.stderr
    info = DaemonInfo.read(shared_home)
    assert info is not None
    assert "DONE" in proc.stdout
    assert "4/4 trials done" in proc.stdout
    assert f"trial {finished_experiment['bestTrialId']}" in proc.stdout
    assert f"http://127.0.0.1:{info.port}/?token={info.token}" in proc.stdout


def test_trial_ls_top_lists_the_best_trials_with_a_column_per_choice(
    shared_home: Path, finished_experiment: dict
) -> None:
    proc = nasctl(shared_home, "trial", "ls", finished_experiment["id"], "--top", "2")
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    columns = header.split()
    assert columns[:3] == ["TRIAL", "STATUS", "METRIC"] and columns[-1] == "DURATION"
    assert sorted(columns[3:-1]) == ["act", "op", "skip"]
    assert len(rows) == 2
    metrics = [float(row.split()[2]) for row in rows]
    assert metrics == sorted(metrics, reverse=True)
    assert rows[0].split()[0] == finished_experiment["bestTrialId"]


def test_trial_ls_json_lists_every_trial(shared_home: Path, finished_experiment: dict) -> None:
    trials = nasctl_json(shared_home, "trial", "ls", finished_experiment["id"])
    assert [t["sequenceId"] for t in trials] == sorted(t["sequenceId"] for t in trials)
    assert len(trials) == 4 and all(t["status"] == "SUCCEEDED" for t in trials)


def test_trial_ls_filters_by_status(shared_home: Path, finished_experiment: dict) -> None:
    proc = nasctl(shared_home, "trial", "ls", finished_experiment["id"], "--status", "FAILED")
    assert proc.returncode == 0
    assert "no trials with status FAILED" in proc.stdout


def test_log_finds_the_trials_experiment_and_prints_its_output(
    shared_home: Path, finished_experiment: dict
) -> None:
    trial_id = finished_experiment["bestTrialId"]
    out = nasctl(shared_home, "log", "stdout", trial_id)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("architecture ") and "final " in out.stdout
    err = nasctl(
        shared_home, "log", "stderr", trial_id, "--tail", "1", "--experiment", finished_experiment["id"]
    )
    assert err.returncode == 0, err.stderr
    assert err.stdout.strip() == "a line on stderr"


def test_log_of_an_unknown_trial_is_bad_input(shared_home: Path, finished_experiment: dict) -> None:
    proc = nasctl(shared_home, "log", "stdout", "nosuchtrial")
    assert proc.returncode == 2
    assert "nosuchtrial" in one_error_line(proc.stderr)


def test_export_json_writes_every_trial(shared_home: Path, finished_experiment: dict, tmp_path: Path) -> None:
    out = tmp_path / "trials.json"
    proc = nasctl(
        shared_home, "experiment", "export", finished_experiment["id"], "--format", "json", "-o", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())
    assert len(rows) == 4
    assert {row["id"] for row in rows} >= {finished_experiment["bestTrialId"]}
    assert str(out) in proc.stderr


def test_export_csv_goes_to_stdout(shared_home: Path, finished_experiment: dict) -> None:
    proc = nasctl(shared_home, "experiment", "export", finished_experiment["id"], "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(rows) == 4


def test_update_changes_the_limits(shared_home: Path, tmp_path: Path) -> None:
    exp = create(shared_home, write_config(tmp_path, trialCommand="python3 cli_trial.py --sleep 60"))
    exp_id = exp["id"]
    assert nasctl_json(shared_home, "update", "concurrency", exp_id, "3")["trialConcurrency"] == 3
    assert nasctl_json(shared_home, "update", "trialnum", exp_id, "9")["maxTrialNumber"] == 9
    assert nasctl_json(shared_home, "update", "duration", exp_id, "30m")["maxExperimentDuration"] == 1800
    proc = nasctl(shared_home, "update", "duration", exp_id, "2h")
    assert proc.returncode == 0, proc.stderr
    assert "maxExperimentDuration = 2h" in proc.stdout
    nasctl(shared_home, "stop", exp_id)


@pytest.mark.parametrize(
    ("what", "value", "field"),
    [
        ("concurrency", "0", "trialConcurrency"),
        ("trialnum", "lots", "maxTrialNumber"),
        ("duration", "3x", "maxExperimentDuration"),
    ],
)
def test_update_rejects_a_bad_value_naming_the_field(home: Path, what: str, value: str, field: str) -> None:
    proc = nasctl(home, "update", what, "someid", value)
    assert proc.returncode == 2
    assert field in one_error_line(proc.stderr)
    assert not (home / "manager.json").exists()  # rejected before any daemon was needed


def test_stop_waits_for_the_trials_and_resume_continues(shared_home: Path, tmp_path: Path) -> None:
    exp = create(shared_home, write_config(tmp_path, trialCommand="python3 cli_trial.py --sleep 60"))
    wait_running_trials(shared_home, exp["id"], 2)
    proc = nasctl(shared_home, "stop", exp["id"])
    assert proc.returncode == 0, proc.stderr
    assert f"experiment {exp['id']}: STOPPED" in proc.stdout
    with client_of(shared_home) as client:
        stopped = client.get_experiment(exp["id"])
        assert stopped["trialCounts"]["RUNNING"] == 0 and stopped["trialCounts"]["WAITING"] == 0
    assert not _trial_processes(exp["id"])
    resumed = nasctl_json(shared_home, "resume", exp["id"])
    assert resumed["status"] in ("INITIALIZED", "RUNNING")
    wait_running_trials(shared_home, exp["id"], 1)
    assert nasctl(shared_home, "stop", exp["id"]).returncode == 0


def test_resume_of_a_running_experiment_is_refused(shared_home: Path, tmp_path: Path) -> None:
    exp = create(shared_home, write_config(tmp_path, trialCommand="python3 cli_trial.py --sleep 60"))
    proc = nasctl(shared_home, "resume", exp["id"])
    assert proc.returncode == 2
    one_error_line(proc.stderr)
    nasctl(shared_home, "stop", exp["id"])


def test_trial_kill_cancels_one_trial(shared_home: Path, tmp_path: Path) -> None:
    exp = create(shared_home, write_config(tmp_path, trialCommand="python3 cli_trial.py --sleep 60"))
    wait_running_trials(shared_home, exp["id"], 1)
    with client_of(shared_home) as client:
        running = client.trials(exp["id"], status="RUNNING")["items"][0]
    proc = nasctl(shared_home, "trial", "kill", exp["id"], running["id"])
    assert proc.returncode == 0, proc.stderr
    assert f"trial {running['id']}: USER_CANCELED" in proc.stdout
    nasctl(shared_home, "stop", exp["id"])


def test_experiment_delete_removes_it_and_its_folder(shared_home: Path, tmp_path: Path) -> None:
    exp = create(shared_home, write_config(tmp_path, maxTrialNumber=1))
    proc = nasctl(shared_home, "experiment", "delete", exp["id"])
    assert proc.returncode == 0, proc.stderr
    assert not Path(exp["experimentDir"]).exists()
    proc = nasctl(shared_home, "status", exp["id"])
    assert proc.returncode == 2
    assert exp["id"] in one_error_line(proc.stderr)


def test_list_hides_stopped_experiments_unless_all(home: Path, tmp_path: Path) -> None:
    exp = create(home, write_config(tmp_path, trialCommand="python3 cli_trial.py --sleep 60"))
    nasctl(home, "stop", exp["id"])
    assert exp["id"] not in nasctl(home, "list").stdout
    listed = nasctl(home, "list", "--all")
    assert listed.stdout.splitlines()[0].split() == ["ID", "NAME", "STATUS", "TRIALS", "BEST", "CREATED"]
    assert exp["id"] in listed.stdout
    assert [e["id"] for e in nasctl_json(home, "list", "--all")] == [exp["id"]]


def _trial_processes(exp_id: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            if (
                "cli_trial.py" in " ".join(proc.info["cmdline"] or [])
                and (proc.info["environ"] or {}).get("NASCTL_EXPERIMENT_ID") == exp_id
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


# -- bad input -----------------------------------------------------------------------------------


def test_bad_config_names_the_file_and_field_and_creates_nothing(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, trialConcurrency=-2)
    proc = nasctl(home, "create", "--config", str(config))
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert str(config) in line and "trialConcurrency" in line
    assert not (home / "manager.json").exists()


def test_misspelled_config_key_gets_a_suggestion(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, trialConcurency=2)
    proc = nasctl(home, "create", "--config", str(config))
    assert proc.returncode == 2
    assert "trialConcurrency" in one_error_line(proc.stderr)


def test_missing_config_file_is_bad_input(home: Path, tmp_path: Path) -> None:
    proc = nasctl(home, "create", "--config", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2
    assert "nope.yaml" in one_error_line(proc.stderr)


def test_usage_errors_are_one_line_with_exit_2(home: Path) -> None:
    proc = nasctl(home, "create")
    assert proc.returncode == 2
    assert "--config" in one_error_line(proc.stderr)


def test_an_unambiguous_id_prefix_is_enough(shared_home: Path, finished_experiment: dict) -> None:
    prefix = finished_experiment["id"][:-1]
    assert nasctl_json(shared_home, "status", prefix)["id"] == finished_experiment["id"]


def test_unknown_experiment_is_bad_input(shared_home: Path) -> None:
    proc = nasctl(shared_home, "status", "zzzzzzzz")
    assert proc.returncode == 2
    assert "zzzzzzzz" in one_error_line(proc.stderr)


# -- ID left out ---------------------------------------------------------------------------------


def test_id_left_out_with_no_experiment_at_all_is_an_error(home: Path) -> None:
    proc = nasctl(home, "status")
    assert proc.returncode == 2
    assert "there is no experiment yet" in one_error_line(proc.stderr)


def test_id_left_out_of_stop_with_no_running_experiment_is_an_error(home: Path) -> None:
    proc = nasctl(home, "stop")
    assert proc.returncode == 2
    assert "no experiment is running" in one_error_line(proc.stderr)


def test_id_left_out_after_the_experiment_ended_uses_the_most_recent_and_says_so(
    home: Path, tmp_path: Path
) -> None:
    older = create(home, write_config(tmp_path, experimentName="older", maxTrialNumber=1))
    recent = create(home, write_config(tmp_path, experimentName="recent", maxTrialNumber=2))
    wait_finished(home, older["id"])
    wait_finished(home, recent["id"])
    shown = {}
    for command in (("status", "--json"), ("trial", "ls", "--json"), ("experiment", "export")):
        proc = nasctl(home, *command)
        assert proc.returncode == 0, proc.stderr
        assert f"the most recent is {recent['id']} (recent, DONE)" in proc.stderr, command
        shown[command[0]] = json.loads(proc.stdout)
    assert shown["status"]["id"] == recent["id"]
    assert len(shown["trial"]) == len(shown["experiment"]) == 2


def test_id_left_out_with_one_running_experiment_uses_it(home: Path, tmp_path: Path) -> None:
    exp = create(home, write_config(tmp_path, trialCommand="python3 cli_trial.py --sleep 60"))
    assert nasctl_json(home, "status")["id"] == exp["id"]
    assert nasctl_json(home, "update", "trialnum", "9")["maxTrialNumber"] == 9
    proc = nasctl(home, "stop")
    assert proc.returncode == 0, proc.stderr
    assert f"experiment {exp['id']}: STOPPED" in proc.stdout


def test_id_left_out_with_several_running_experiments_lists_them(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, trialCommand="python3 cli_trial.py --sleep 60", trialConcurrency=1)
    first, second = create(home, config), create(home, config)
    proc = nasctl(home, "trial", "ls")
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert "2 experiments are running" in line and first["id"] in line and second["id"] in line
    stopped = nasctl(home, "stop", "--all", "--json")
    assert {e["id"] for e in json.loads(stopped.stdout)} == {first["id"], second["id"]}


# -- the manager commands ------------------------------------------------------------------------


def test_manager_start_status_stop(home: Path) -> None:
    started = nasctl_json(home, "manager", "start")
    assert started["alreadyRunning"] is False and pid_alive(started["pid"])
    status = nasctl_json(home, "manager", "status")
    assert status["running"] is True and status["pid"] == started["pid"]
    again = nasctl_json(home, "manager", "start")
    assert again["alreadyRunning"] is True and again["pid"] == started["pid"]
    proc = nasctl(home, "manager", "stop")
    assert proc.returncode == 0, proc.stderr
    assert f"daemon pid {started['pid']} stopped" in proc.stdout
    assert not pid_alive(started["pid"])  # stop waits until the process is gone
    assert not (home / "manager.json").exists()
    assert nasctl_json(home, "manager", "status")["running"] is False


def test_manager_stop_force_kills_the_daemon(home: Path) -> None:
    started = nasctl_json(home, "manager", "start")
    proc = nasctl(home, "manager", "stop", "--force")
    assert proc.returncode == 0, proc.stderr
    assert not pid_alive(started["pid"])
    assert not (home / "manager.json").exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_stale_manager_file(home: Path) -> int:
    pid = _dead_pid()
    home.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "host": "127.0.0.1", "port": 9, "token": "x", "startedAt": 1, "version": "0"}
    (home / "manager.json").write_text(json.dumps(record))
    return pid


def test_manager_status_reports_a_stale_pid_file(home: Path) -> None:
    pid = _write_stale_manager_file(home)
    status = nasctl_json(home, "manager", "status")
    assert status["running"] is False and status["state"] == "stale" and str(pid) in status["detail"]


def test_stale_pid_file_is_removed_and_a_fresh_daemon_starts(home: Path) -> None:
    pid = _write_stale_manager_file(home)
    proc = nasctl(home, "manager", "start")
    assert proc.returncode == 0, proc.stderr
    assert "removed stale" in proc.stderr and f"pid {pid} is gone" in proc.stderr
    info = DaemonInfo.read(home)
    assert info is not None and info.pid != pid and pid_alive(info.pid)


def test_stale_pid_file_does_not_stop_an_ordinary_command(home: Path) -> None:
    _write_stale_manager_file(home)
    proc = nasctl(home, "list")
    assert proc.returncode == 0, proc.stderr
    assert "removed stale" in proc.stderr and "started the nasctl daemon" in proc.stderr


def test_port_in_use_is_reported_in_one_line(home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = nasctl(home, "manager", "start", "--port", str(port))
    assert proc.returncode == 1
    line = one_error_line(proc.stderr)
    assert "exited during start" in line and str(port) in line
    assert not (home / "manager.json").exists()


def test_daemon_start_failure_shows_the_daemons_own_error(home: Path) -> None:
    proc = nasctl(home, "manager", "start", "--host", "0.0.0.0")  # refused without --allow-remote
    assert proc.returncode == 1
    line = one_error_line(proc.stderr)
    assert "exited during start" in line and "allow-remote" in line


# -- create --foreground -------------------------------------------------------------------------


def test_foreground_runs_the_experiment_here_and_writes_the_best_architecture(
    home: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, maxTrialNumber=3)
    proc = nasctl(home, "create", "--config", str(config), "--foreground")
    assert proc.returncode == 0, proc.stderr
    assert "3/3 trials" in proc.stderr  # the plain progress lines (stderr is not a terminal)
    assert "best trial " in proc.stdout
    arch_line = next(line for line in proc.stdout.splitlines() if line.startswith("architecture:"))
    arch_file = Path(arch_line.split(":", 1)[1].strip())
    arch_file = arch_file if arch_file.is_absolute() else REPO / arch_file
    arch = json.loads(arch_file.read_text())
    assert set(arch) == {"op", "act", "skip"} and all("_idx" in v and "_value" in v for v in arch.values())
    assert "apply_fixed_architecture" in proc.stdout  # cli_trial.py has no retrain.py beside it
    assert not (home / "manager.json").exists()  # the in-process daemon is gone with the process


def test_foreground_names_each_failed_trial_and_exits_1_when_none_succeeded(
    home: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, trialCommand="python3 cli_trial.py --fail", maxTrialNumber=2)
    proc = nasctl(home, "create", "--config", str(config), "--foreground")
    assert proc.returncode == 1
    failed = [line for line in proc.stderr.splitlines() if " FAILED: " in line]
    assert len(failed) == 2 and all("exit code 1" in line and "nasctl log stderr" in line for line in failed)
    assert "no trial succeeded" in proc.stdout


def test_foreground_ctrl_c_stops_the_experiment_and_exits_130(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, trialCommand="python3 cli_trial.py --sleep 60")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nasctl.cli", "create", "--config", str(config), "--foreground"],
        env=cli_env(home),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_acts,
    )
    try:
        info = wait_until(lambda: DaemonInfo.read(home), 30, "the in-process daemon")
        assert info.pid == proc.pid
        with Client.from_info(info) as client:
            exp_id = wait_until(lambda: client.list_experiments(), 30, "the experiment")[0]["id"]
        wait_running_trials(home, exp_id, 2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert f"stopping experiment {exp_id}" in err and "Traceback" not in err
    assert not _trial_processes(exp_id)


def test_foreground_submits_to_a_running_daemon_and_leaves_it_running(home: Path, tmp_path: Path) -> None:
    started = nasctl_json(home, "manager", "start")
    proc = nasctl(home, "create", "--config", str(write_config(tmp_path, maxTrialNumber=2)), "--foreground")
    assert proc.returncode == 0, proc.stderr
    assert f"running daemon (pid {started['pid']})" in proc.stderr
    assert "best trial " in proc.stdout
    assert pid_alive(started["pid"])


# -- ss_gen --------------------------------------------------------------------------------------


def test_ss_gen_writes_the_search_space_where_asked(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "space.json"
    proc = nasctl(
        home,
        "ss_gen",
        "--trial_command",
        "python3 cli_trial.py",
        "--trial_dir",
        str(TRIAL_DIR),
        "-f",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout and "12 architectures" in proc.stdout
    assert set(json.loads(out.read_text())) == {"op", "act", "skip"}


def test_ss_gen_default_file_is_in_the_current_folder_and_overwrite_is_warned(
    home: Path, tmp_path: Path
) -> None:
    args = ("ss_gen", "-t", "python3 cli_trial.py", "-d", str(TRIAL_DIR))
    assert nasctl(home, *args, cwd=tmp_path).returncode == 0
    assert (tmp_path / "nasctl_auto_gen_search_space.json").is_file()
    again = nasctl(home, *args, cwd=tmp_path)
    assert again.returncode == 0
    assert "will be overwritten" in again.stderr


def test_ss_gen_of_a_failing_command_shows_its_stderr_tail(home: Path, tmp_path: Path) -> None:
    command = "python3 -c \"import sys; print('model import failed', file=sys.stderr); sys.exit(1)\""
    proc = nasctl(home, "ss_gen", "--trial-command", command, "--file", str(tmp_path / "s.json"))
    assert proc.returncode == 1
    first, *rest = proc.stderr.splitlines()[1:]  # line 0 announces the dry run
    assert first.startswith("error: ") and "exit code 1" in first
    assert "model import failed" in "\n".join(rest)
    assert "Traceback" not in proc.stderr


def test_ss_gen_of_a_command_that_writes_nothing_fails(home: Path, tmp_path: Path) -> None:
    proc = nasctl(home, "ss_gen", "-t", "true", "-f", str(tmp_path / "s.json"))
    assert proc.returncode == 1
    assert "wrote no search space" in proc.stderr
    assert not (tmp_path / "s.json").exists()


def test_ss_gen_with_a_missing_trial_dir_is_bad_input(home: Path, tmp_path: Path) -> None:
    proc = nasctl(home, "ss_gen", "-t", "true", "-d", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert "--trial-dir" in one_error_line(proc.stderr)


# -- what a person sees (pure functions) ---------------------------------------------------------


def test_durations_read_as_a_person_writes_them() -> None:
    from trials.durations import parse_duration

    def parse(text: str) -> float:
        return parse_duration(text, bare_text_is_seconds=True)  # as `nasctl update duration` reads it

    assert [parse(t) for t in ("90", "90s", "30m", "2h", "1.5d")] == [90, 90, 1800, 7200, 129600]
    for bad in ("3x", "0", "-5", "m", ""):
        with pytest.raises(ValueError):
            parse(bad)


def test_durations_are_shown_short() -> None:
    from nasctl.output import format_duration

    shown = [format_duration(s) for s in (4.14, 192, 1800, 7500, 7200, 90000, None)]
    assert shown == ["4.1s", "3m12s", "30m", "2h05m", "2h", "1d01h", "-"]


def test_trial_table_aligns_columns_and_shows_decisions_by_name() -> None:
    from nasctl.output import trial_table

    trials = [
        {
            "id": "a1",
            "status": "SUCCEEDED",
            "finalMetric": 0.98114,
            "duration": 4.1,
            "parameters": {
                "conv1": {"_value": "conv5x5", "_idx": 1},
                "skip": {"_value": ["in1"], "_idx": [1]},
            },
        },
        {
            "id": "b22",
            "status": "RUNNING",
            "finalMetric": None,
            "duration": None,
            "parameters": {"conv1": {"_value": "maxpool", "_idx": 2}, "skip": {"_value": [], "_idx": []}},
        },
    ]
    lines = trial_table(trials).splitlines()
    assert lines[0].split() == ["TRIAL", "STATUS", "METRIC", "conv1", "skip", "DURATION"]
    assert lines[1].split() == ["a1", "SUCCEEDED", "0.9811", "conv5x5", "[in1]", "4.1s"]
    assert lines[2].split() == ["b22", "RUNNING", "-", "maxpool", "[]", "-"]
    assert len({line.index("conv") if "conv" in line else line.index("maxpool") for line in lines}) == 1


def _experiment(done: int, best: str | None = None) -> dict[str, Any]:
    return {
        "id": "e1",
        "status": "RUNNING",
        "maxTrialNumber": 10,
        "startTime": None,
        "bestTrialId": best,
        "bestMetric": 0.9 if best else None,
        "trialCounts": {"SUCCEEDED": done, "RUNNING": 2},
    }


def test_progress_display_writes_a_plain_line_only_when_something_changed() -> None:
    from nasctl.output import ProgressDisplay

    stream = io.StringIO()
    display = ProgressDisplay(stream, tty=False)
    for exp in (_experiment(1), _experiment(1), _experiment(2, "t2")):
        display.update(exp, [])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "1/10 trials" in lines[0] and "best -" in lines[0]
    assert "2/10 trials" in lines[1] and "best 0.9000 (t2)" in lines[1]
    assert "\x1b" not in stream.getvalue()


def test_progress_display_redraws_in_place_on_a_terminal() -> None:
    from nasctl.output import ProgressDisplay

    stream = io.StringIO()
    display = ProgressDisplay(stream, tty=True)
    best = [
        {"id": "t2", "finalMetric": 0.9, "duration": 1.0, "parameters": {"op": {"_value": "a", "_idx": 0}}}
    ]
    display.update(_experiment(1), [])
    display.update(_experiment(2, "t2"), best)
    first_frame, second_frame = stream.getvalue().split("\x1b[1F\x1b[J")
    assert "1/10 trials" in first_frame
    assert "2/10 trials" in second_frame and "best 1 trials:" in second_frame and "t2" in second_frame
