"""Exactly-once launch on this machine: what the trial folder alone tells a daemon after a crash.

The launch lock and the ``.pid`` file (manager/training/local.py) are read in every state the
window between "launch committed" and "pid stored" can leave: nothing started, a ``sh`` holding
the lock that has not written its pid yet, a partial pid file, a pid that another process now has.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from manager.training.base import LaunchState, TrialSpec
from manager.training.local import (
    LAUNCH_LOCK_NAME,
    PID_FILE_NAME,
    LocalTrainingService,
    _lock_held,
    find_launch_in,
)

PACKED = {"parameter_id": 0, "parameter_source": "algorithm", "parameters": {}, "parameter_index": 0}


def spec(tmp_path: Path, command: str) -> TrialSpec:
    (tmp_path / "code").mkdir(exist_ok=True)
    return TrialSpec("T1", "exp", 0, command, tmp_path / "code", tmp_path / "trials" / "T1")


def start_holding_lock(trial_dir: Path, script: str) -> subprocess.Popen[bytes]:
    """A process that holds the trial's launch lock, as the launch's ``sh`` does, running ``script``."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(trial_dir / LAUNCH_LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        return subprocess.Popen(["sh", "-c", script], cwd=trial_dir, pass_fds=(fd,), start_new_session=True)
    finally:
        os.close(fd)


def test_a_folder_without_lock_or_pid_is_a_launch_that_never_started(tmp_path: Path) -> None:
    assert find_launch_in("T1", tmp_path).state is LaunchState.NOT_STARTED


def test_a_partial_pid_file_with_the_lock_free_never_ran_the_trial(tmp_path: Path) -> None:
    (tmp_path / LAUNCH_LOCK_NAME).touch()
    (tmp_path / PID_FILE_NAME).write_text("123")  # the sh died writing it, before exec
    assert find_launch_in("T1", tmp_path).state is LaunchState.NOT_STARTED


def test_a_held_lock_without_pid_waits_for_the_pid_it_is_about_to_write(tmp_path: Path) -> None:
    proc = start_holding_lock(tmp_path, f"sleep 0.3; echo $$ > {PID_FILE_NAME}; exec sleep 30")
    try:
        found = find_launch_in("T1", tmp_path)
        assert found.state is LaunchState.RUNNING
        assert found.process is not None and found.process.pid == proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_a_held_lock_that_never_writes_a_pid_is_an_error_not_a_guess(tmp_path: Path) -> None:
    proc = start_holding_lock(tmp_path, "exec sleep 30")
    try:
        try:
            find_launch_in("T1", tmp_path, settle=0.2)
        except TimeoutError as exc:
            assert "wrote no pid" in str(exc)
        else:
            raise AssertionError(
                "a held lock without a pid must not be taken for a launch that never started"
            )
    finally:
        proc.kill()
        proc.wait()


def test_a_pid_now_used_by_a_later_process_is_a_launch_that_ended(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / PID_FILE_NAME).write_text(f"{other.pid}\n")
        hour_ago = time.time() - 3600
        os.utime(tmp_path / PID_FILE_NAME, (hour_ago, hour_ago))  # written long before `other` began
        found = find_launch_in("T1", tmp_path)
        assert found.state is LaunchState.ENDED
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("preload", [(), ("trials",)], ids=["cold", "warm"])
def test_the_launched_process_holds_the_lock_and_is_the_trial_itself(
    tmp_path: Path, preload: tuple[str, ...]
) -> None:
    async def body() -> None:
        service = LocalTrainingService(kill_grace=1.0, preload=preload)
        (tmp_path / "code").mkdir()
        (tmp_path / "code" / "sleeps.py").write_text("import time\ntime.sleep(30)\n")
        trial = spec(tmp_path, f"{sys.executable} sleeps.py")
        process = await service.submit(trial, PACKED)
        assert process.launch == ("warm" if preload else "cold")
        found = await LocalTrainingService().find_launch(trial)  # as a restarted daemon asks
        assert found.state is LaunchState.RUNNING and found.process is not None
        assert found.process.pid == process.pid  # sh exec'd the command: one process, one pid
        assert abs(found.process.create_time - process.create_time) < 0.05
        assert found.process.launch == process.launch  # the pid file says how it started
        assert _lock_held(trial.trial_dir / LAUNCH_LOCK_NAME)
        waiter = asyncio.create_task(service.wait(trial.trial_id))
        await service.kill(trial.trial_id)
        await waiter
        await service.close()

    asyncio.run(body())


def test_a_launch_again_starts_with_an_empty_metric_channel(tmp_path: Path) -> None:
    async def body() -> None:
        trial = spec(tmp_path, "true")
        trial.trial_dir.mkdir(parents=True)
        (trial.trial_dir / "metrics.jsonl").write_text(
            '{"type": "FINAL", "sequence": 0, "value": 1, "time": 1}\n'
        )
        service = LocalTrainingService()
        await service.submit(trial, PACKED)
        await service.wait(trial.trial_id)
        assert (trial.trial_dir / "metrics.jsonl").read_bytes() == b""

    asyncio.run(body())


def test_the_lock_is_not_left_to_a_concurrent_launch_of_another_trial(tmp_path: Path) -> None:
    """Two launches at once: each lock goes to its own trial only (the fds are close-on-exec)."""

    async def body() -> None:
        service = LocalTrainingService(kill_grace=1.0)
        specs = [
            TrialSpec(f"T{i}", "exp", i, "sleep 30", tmp_path / "code", tmp_path / "trials" / f"T{i}")
            for i in range(2)
        ]
        (tmp_path / "code").mkdir()
        await asyncio.gather(*(service.submit(s, PACKED) for s in specs))
        await service.kill("T0")
        (specs[0].trial_dir / PID_FILE_NAME).unlink()
        # were T0's lock held by T1's process, this would wait for a pid and time out
        assert find_launch_in("T0", specs[0].trial_dir, settle=0.5).state is LaunchState.NOT_STARTED
        await service.kill("T1")

    asyncio.run(body())
