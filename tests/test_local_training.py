"""The local training service: trial folder, environment, raw logs, exits, and whole-tree kills."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from manager.training.base import TrialExit, TrialSpec
from manager.training.local import LocalTrainingService, command_argv, kill_stale_trial
from manager.training.metric_channel import read_metrics_file

T = TypeVar("T")
PACKED = {
    "parameter_id": 7,
    "parameter_source": "algorithm",
    "parameters": {"conv": "a"},
    "parameter_index": 0,
}


def run(coroutine: Awaitable[T]) -> T:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def spec(tmp_path: Path, command: str, gpus: tuple[int, ...] = (), trial_id: str = "Tr1al") -> TrialSpec:
    workdir = tmp_path / "code"
    workdir.mkdir(exist_ok=True)
    return TrialSpec(
        trial_id=trial_id,
        experiment_id="exp12345",
        sequence_id=4,
        command=command,
        working_dir=workdir,
        trial_dir=tmp_path / "trials" / trial_id,
        gpus=gpus,
    )


async def run_to_end(service: LocalTrainingService, trial: TrialSpec) -> TrialExit:
    await service.submit(trial, PACKED)
    return await service.wait(trial.trial_id)


def python(code: str) -> str:
    return f"{sys.executable} -c {json.dumps(code)}"


def test_a_trial_gets_its_folder_with_the_packed_parameter_file(tmp_path: Path) -> None:
    trial = spec(tmp_path, "true")
    run(run_to_end(LocalTrainingService(), trial))
    assert json.loads((trial.trial_dir / "parameter.json").read_text()) == PACKED
    assert {p.name for p in trial.trial_dir.iterdir()} == {
        "parameter.json",
        "metrics.jsonl",
        "stdout",
        "stderr",
        ".launch.lock",  # held by the trial's process while it lives (exactly-once launch)
        ".pid",
        "output",  # the trial's own files (NASCTL_OUTPUT_DIR), made before it starts
    }


def test_the_trial_environment_names_experiment_trial_and_files(tmp_path: Path) -> None:
    trial = spec(tmp_path, python("import os, json; print(json.dumps(dict(os.environ)))"))
    run(run_to_end(LocalTrainingService(), trial))
    seen = json.loads((trial.trial_dir / "stdout").read_text())
    assert seen["NASCTL_EXPERIMENT_ID"] == "exp12345"
    assert seen["NASCTL_TRIAL_ID"] == "Tr1al"
    assert seen["NASCTL_SEQUENCE_ID"] == "4"
    assert seen["NASCTL_TRIAL_DIR"] == str(trial.trial_dir)
    assert seen["NASCTL_PARAMETER_FILE"] == str(trial.trial_dir / "parameter.json")
    assert seen["NASCTL_OUTPUT_DIR"] == str(trial.trial_dir / "output")


def test_a_cpu_trial_sees_an_empty_cuda_visible_devices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # the daemon's own value must not leak
    trial = spec(tmp_path, python("import os; print(repr(os.environ['CUDA_VISIBLE_DEVICES']))"))
    run(run_to_end(LocalTrainingService(), trial))
    assert (trial.trial_dir / "stdout").read_text().strip() == "''"


def test_a_gpu_trial_sees_its_gpus(tmp_path: Path) -> None:
    trial = spec(tmp_path, "echo $CUDA_VISIBLE_DEVICES", gpus=(1, 3))
    run(run_to_end(LocalTrainingService(), trial))
    assert (trial.trial_dir / "stdout").read_text().strip() == "1,3"


def test_nasctl_variables_of_the_daemon_do_not_leak_into_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NASCTL_GEN_SEARCH_SPACE", "/tmp/space.json")
    trial = spec(tmp_path, "echo gen=${NASCTL_GEN_SEARCH_SPACE:-unset}")
    run(run_to_end(LocalTrainingService(), trial))
    assert (trial.trial_dir / "stdout").read_text().strip() == "gen=unset"


def test_trials_inherit_the_environment_the_service_was_made_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EARLY_VARIABLE", "early")
    service = LocalTrainingService()  # filters the daemon's environment once, not per trial
    monkeypatch.setenv("LATE_VARIABLE", "late")
    trial = spec(tmp_path, "echo ${EARLY_VARIABLE:-unset} ${LATE_VARIABLE:-unset}")
    run(run_to_end(service, trial))
    assert (trial.trial_dir / "stdout").read_text().strip() == "early unset"


def test_stdout_and_stderr_of_any_program_land_in_files(tmp_path: Path) -> None:
    trial = spec(tmp_path, "echo to-out; echo to-err >&2; printf 'no newline'")
    run(run_to_end(LocalTrainingService(), trial))
    assert (trial.trial_dir / "stdout").read_text() == "to-out\nno newline"
    assert (trial.trial_dir / "stderr").read_text() == "to-err\n"


def test_the_trial_runs_in_the_code_directory(tmp_path: Path) -> None:
    trial = spec(tmp_path, "pwd")
    run(run_to_end(LocalTrainingService(), trial))
    assert (trial.trial_dir / "stdout").read_text().strip() == str(trial.working_dir)


def test_a_clean_exit_has_no_reason(tmp_path: Path) -> None:
    assert run(run_to_end(LocalTrainingService(), spec(tmp_path, "exit 0"))) == TrialExit(0, None, None)


def test_an_exit_code_is_recorded_with_its_reason(tmp_path: Path) -> None:
    result = run(run_to_end(LocalTrainingService(), spec(tmp_path, "exit 3")))
    assert result == TrialExit(3, None, "exit code 3")


def test_a_program_killed_by_a_signal_is_recorded_as_such(tmp_path: Path) -> None:
    command = python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    result = run(run_to_end(LocalTrainingService(), spec(tmp_path, command)))
    assert result.signal == 9 and result.reason == "killed by signal 9"


def test_the_end_is_noticed_at_once(tmp_path: Path) -> None:
    async def scenario() -> float:
        service = LocalTrainingService()
        await service.submit(spec(tmp_path, "sleep 0.3"), PACKED)
        started = time.monotonic()
        await service.wait("Tr1al")
        return time.monotonic() - started

    assert run(scenario()) < 0.3 + 0.25  # a polling tick of a second would show


def test_a_missing_code_directory_fails_the_submit(tmp_path: Path) -> None:
    trial = spec(tmp_path, "true")
    missing = TrialSpec(**{**trial.__dict__, "working_dir": tmp_path / "nope"})
    with pytest.raises(FileNotFoundError, match="trialCodeDirectory"):
        run(LocalTrainingService().submit(missing, PACKED))


def _tree_script(pid_file: Path) -> str:
    """A trial whose child starts a grandchild in a new session; it writes both pids and sleeps."""
    grandchild = "import time; time.sleep(120)"
    child = (
        "import os, subprocess, sys, time;"
        f"g = subprocess.Popen([sys.executable, '-c', {grandchild!r}], start_new_session=True);"
        f"open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}} {{g.pid}}');"
        "time.sleep(120)"
    )
    return f"{sys.executable} -c {json.dumps(child)} & sleep 120"


def _wait_for_pids(pid_file: Path) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if pid_file.exists() and len(pid_file.read_text().split()) == 2:
            return [int(p) for p in pid_file.read_text().split()]
        time.sleep(0.02)
    raise AssertionError("the trial did not start its processes")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_kill_ends_the_whole_tree_including_a_grandchild_in_its_own_session(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"

    async def scenario() -> tuple[TrialExit, list[int], int, bool]:
        service = LocalTrainingService(kill_grace=2.0)
        process = await service.submit(spec(tmp_path, _tree_script(pid_file)), PACKED)
        pids = await asyncio.to_thread(_wait_for_pids, pid_file)
        escaped = os.getsid(pids[1]) != os.getsid(process.pid)
        await service.kill("Tr1al")
        return await service.wait("Tr1al"), pids, process.pid, escaped

    result, (child, grandchild), main, escaped = run(scenario())
    assert escaped  # the grandchild really left the trial's session and process group
    assert result.signal == signal.SIGTERM
    assert all(_gone(pid) for pid in (main, child, grandchild))


def test_kill_escalates_to_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    ignore_term = python(
        "import signal, time, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    trial = spec(tmp_path, f"exec {ignore_term}")

    async def scenario() -> tuple[TrialExit, float]:
        service = LocalTrainingService(kill_grace=0.5)
        await service.submit(trial, PACKED)
        while "ready" not in (trial.trial_dir / "stdout").read_text():
            await asyncio.sleep(0.02)
        started = time.monotonic()
        await service.kill("Tr1al")
        return await service.wait("Tr1al"), time.monotonic() - started

    result, took = run(scenario())
    assert result.signal == signal.SIGKILL
    assert 0.5 <= took < 3


def test_what_a_trial_leaves_in_its_group_is_ended_with_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "bg"
    trial = spec(tmp_path, f"sleep 120 & echo $! > {pid_file}")

    async def scenario() -> int:
        service = LocalTrainingService(kill_grace=0.2)
        await run_to_end(service, trial)
        return int(pid_file.read_text())

    leftover = run(scenario())
    deadline = time.monotonic() + 5
    while not _gone(leftover) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(leftover)


def test_kill_stale_trial_only_kills_the_process_it_was_told_about(tmp_path: Path) -> None:
    process = psutil.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert not kill_stale_trial(process.pid, process.create_time() - 100, grace=0.5)
        assert process.is_running()
        assert kill_stale_trial(process.pid, process.create_time(), grace=0.5)
        assert process.wait(timeout=5) is not None
    finally:
        if process.is_running():
            process.kill()


# -- the metric channel ---------------------------------------------------------------------------


def _record(kind: str, value: Any, sequence: int = 0) -> str:
    return json.dumps({"type": kind, "sequence": sequence, "value": value, "time": 1.5}) + "\n"


def test_reading_metrics_stops_at_the_last_complete_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    first = _record("PERIODICAL", 0.1)
    path.write_text(first + _record("FINAL", 0.2)[:10])
    chunk = read_metrics_file(path, 0)
    assert [r.value for r in chunk.reports] == [0.1]
    assert chunk.offset == len(first.encode())


def test_the_final_read_takes_an_unterminated_last_record(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(_record("FINAL", 0.25).rstrip("\n"))
    chunk = read_metrics_file(path, 0, final=True)
    assert [(r.kind, r.value) for r in chunk.reports] == [("FINAL", 0.25)]
    assert chunk.offset == path.stat().st_size


def test_a_bad_line_is_reported_with_its_reason_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        "not json\n" + '{"type": "OTHER", "value": 1, "time": 1}\n' + _record("FINAL", {"default": 0.5})
    )
    chunk = read_metrics_file(path, 0)
    assert [r.default_value for r in chunk.reports] == [0.5]
    assert len(chunk.invalid) == 2
    assert "not a JSON record" in chunk.invalid[0] and "type must be PERIODICAL or FINAL" in chunk.invalid[1]
    assert chunk.offset == path.stat().st_size


def test_a_nan_metric_is_read_as_nan(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"type": "FINAL", "sequence": 0, "value": NaN, "time": 1.0}\n')
    (report,) = read_metrics_file(path, 0).reports
    assert report.default_value != report.default_value


def test_a_missing_metrics_file_reads_as_nothing(tmp_path: Path) -> None:
    chunk = read_metrics_file(tmp_path / "absent.jsonl", 0)
    assert chunk.reports == () and chunk.offset == 0


# -- with or without a shell ---------------------------------------------------------------------


def test_plain_words_naming_a_program_run_without_a_shell(tmp_path: Path) -> None:
    script = tmp_path / "code" / "whoami.py"
    spec(tmp_path, "")  # makes the code folder
    script.write_text("import os; print(os.getpid(), os.getppid())")
    trial = spec(tmp_path, f"{sys.executable} whoami.py --flag=1")
    started = run(_submit_and_wait(trial))
    pid, parent = map(int, (trial.trial_dir / "stdout").read_text().split())
    assert pid == started and parent == os.getpid()  # the daemon's child is the program itself


def test_a_command_with_shell_syntax_runs_through_sh(tmp_path: Path) -> None:
    trial = spec(tmp_path, "echo $NASCTL_TRIAL_ID > seen.txt")
    run(run_to_end(LocalTrainingService(), trial))
    assert (tmp_path / "code" / "seen.txt").read_text().strip() == "Tr1al"


@pytest.mark.parametrize(
    ("command", "via_shell"),
    [
        ("python3 model.py --lr 0.1", False),
        ("exit 3", True),  # a builtin: no program of that name
        ("LR=0.1 python3 model.py", True),  # an assignment
        ("python3 model.py > out.txt", True),
        ("python3 'my model.py'", True),
        ("./run.sh", False),  # a program relative to the trial's folder
        ("./missing.sh", True),  # let sh report it
    ],
)
def test_which_commands_need_a_shell(tmp_path: Path, command: str, via_shell: bool) -> None:
    (tmp_path / "run.sh").write_text("#!/bin/sh\ntrue\n")
    (tmp_path / "run.sh").chmod(0o755)
    argv, shell = command_argv(command, tmp_path, os.environ.get("PATH"))
    assert shell is via_shell
    assert argv == (["/bin/sh", "-c", command] if via_shell else command.split())


def test_a_script_without_an_interpreter_line_still_runs_through_sh(tmp_path: Path) -> None:
    spec(tmp_path, "")
    script = tmp_path / "code" / "plain.sh"
    script.write_text("echo ran > ran.txt\n")
    script.chmod(0o755)
    result = run(run_to_end(LocalTrainingService(), spec(tmp_path, "./plain.sh")))
    assert result.succeeded and (tmp_path / "code" / "ran.txt").read_text().strip() == "ran"


def test_a_signal_is_recorded_without_a_shell_exit_code(tmp_path: Path) -> None:
    direct = spec(tmp_path, f"{sys.executable} -m kill_me", trial_id="Direct")
    (tmp_path / "code" / "kill_me.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    result = run(run_to_end(LocalTrainingService(), direct))
    assert (result.exit_code, result.signal) == (None, signal.SIGKILL)


async def _submit_and_wait(trial: TrialSpec) -> int:
    service = LocalTrainingService()
    process = await service.submit(trial, PACKED)
    await service.wait(trial.trial_id)
    return process.pid
