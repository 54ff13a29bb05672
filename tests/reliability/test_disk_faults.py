"""A full disk and a read-only NASCTL_HOME: a clear error at create, a running experiment that
hits it ends in ERROR with the reason, and the database passes ``PRAGMA integrity_check``.

The disk is a real tmpfs of a few MB, and read-only is a real read-only bind mount: both need
the right to mount (root), and the tests are skipped without it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reliability.helpers import FINISHED, SPACE6, faulty_config, gone, nasctl, wait_for

pytestmark = pytest.mark.slow


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``mount("tmpfs", size_mb)`` or ``mount("bind", folder)``; unmounted after the test."""
    mounted: list[Path] = []

    def make(kind: str, argument: Any) -> Path:
        if kind == "tmpfs":
            point = tmp_path / f"disk{len(mounted)}"
            point.mkdir()
            done = _run("mount", "-t", "tmpfs", "-o", f"size={argument}m", "tmpfs", str(point))
        else:
            point = Path(argument)
            done = _run("mount", "--bind", str(point), str(point))
        if done.returncode != 0:
            pytest.skip(f"cannot mount here (needs root): {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield make
    for point in reversed(mounted):
        _run("umount", "-l", str(point))


def read_only(point: Path, on: bool = True) -> None:
    done = _run("mount", "-o", f"remount,bind,{'ro' if on else 'rw'}", str(point))
    assert done.returncode == 0, done.stderr


def integrity(home: Path) -> str:
    with sqlite3.connect(f"file:{home / 'nasctl.db'}?mode=ro", uri=True) as db:
        return "; ".join(row[0] for row in db.execute("PRAGMA integrity_check"))


def fill(path: Path) -> None:
    """Write to ``path`` until the disk is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def test_a_full_disk_ends_the_experiment_in_error_and_create_says_why(
    mount: Callable[..., Path], daemon_factory: Callable[..., Any]
) -> None:
    home = mount("tmpfs", 12) / "home"
    daemon = daemon_factory(home, kill_grace=1.0)
    # one trial fills the disk through its stdout, the other keeps reporting results
    config = faulty_config("flood:100,many:1000000", trialConcurrency=2, maxTrialNumber=4)
    exp = daemon.create(config)
    ended = daemon.wait_for_status(exp["id"], FINISHED, timeout=120)
    assert ended["status"] == "ERROR"
    assert any(words in ended["error"] for words in ("No space left on device", "the disk is full")), ended
    trials = daemon.trials(exp["id"])
    assert trials and all(t["status"] not in ("WAITING", "RUNNING") for t in trials)
    for trial in daemon.daemon.store.all_trials(exp["id"]):
        assert gone(trial.pid, trial.pid_create_time)
    assert integrity(home) == "ok"

    fill(home / "filler")  # the reserve the daemon freed is taken too: the disk is full for good
    before = daemon.client.get("/experiments").json()
    response = daemon.client.post("/experiments", json={"config": faulty_config(), "baseDir": "/"})
    assert response.status_code == 507
    assert response.json()["detail"].startswith("cannot ")
    assert "No space left on device" in response.text or "the disk is full" in response.text
    assert daemon.client.get("/experiments").json() == before  # nothing created
    assert sorted(p.name for p in (home / "experiments").iterdir()) == [exp["id"]]
    assert integrity(home) == "ok"


def test_a_home_turned_read_only_ends_the_experiment_in_error_and_create_says_why(
    mount: Callable[..., Path], daemon_factory: Callable[..., Any], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    daemon = daemon_factory(home, kill_grace=1.0)
    exp = daemon.create(faulty_config("many:20000", maxTrialNumber=2))
    wait_for(
        "results arriving", lambda: daemon.client.get(f"/experiments/{exp['id']}/metrics").json()["items"]
    )
    # NASCTL_HOME becomes read-only (files open before stay writable, as after a remount)
    mount("bind", home)
    read_only(home)
    response = daemon.client.post("/experiments", json={"config": faulty_config(), "baseDir": "/"})
    assert response.status_code == 507
    assert response.json()["detail"] == (
        f"cannot create the experiment folder in {home / 'experiments'}: the file system is read-only"
    )
    ended = daemon.wait_for_status(exp["id"], FINISHED, timeout=90)
    assert ended["status"] == "ERROR"
    assert "cannot start the trial" in ended["error"] and "Read-only file system" in ended["error"]
    first, second = daemon.trials(exp["id"])
    assert first["status"] == "SUCCEEDED"  # the running trial was not disturbed
    assert second["status"] == "FAILED" and "Read-only file system" in second["reason"]
    assert [e["id"] for e in daemon.client.get("/experiments").json()] == [exp["id"]]
    assert integrity(home) == "ok"


def test_create_with_a_read_only_home_is_one_error_line_and_creates_nothing(
    mount: Callable[..., Path], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    mount("bind", home)
    read_only(home)
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump({**faulty_config(), "searchSpace": SPACE6}))
    done = nasctl(home, "create", "--config", str(config))
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not writable" in lines[0], done.stderr
    assert list(home.iterdir()) == []
    assert done.stdout == ""
