"""Warm trial starts (``trialPreload``): a forked trial behaves as a cold one in everything but its start.

Most tests run in both launch modes: ``cold`` (a plain local service) and ``warm`` (the service
preloads ``trials``, light enough to keep the suite fast; the torch tests preload torch itself).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from manager.training.base import TrialExit, TrialSpec
from manager.training.local import LocalTrainingService
from manager.training.warm_launch import warm_command

PACKED = {"parameter_id": 0, "parameter_source": "algorithm", "parameters": {}, "parameter_index": 0}
MODES = ("cold", "warm")


def service(mode: str, preload: tuple[str, ...] = ("trials",), **kwargs: float) -> LocalTrainingService:
    return LocalTrainingService(preload=preload if mode == "warm" else (), **kwargs)


def trial(tmp_path: Path, script: str, args: str = "", trial_id: str = "T1", **kwargs: object) -> TrialSpec:
    code = tmp_path / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / f"{trial_id}.py").write_text(script)
    command = f"{sys.executable} {trial_id}.py {args}".strip()
    return TrialSpec(trial_id, "exp1", 2, command, code, tmp_path / "trials" / trial_id, **kwargs)  # type: ignore[arg-type]


async def run_to_end(svc: LocalTrainingService, spec: TrialSpec, mode: str) -> TrialExit:
    process = await svc.submit(spec, PACKED)
    assert process.launch == mode  # the test runs in the mode it says
    return await svc.wait(spec.trial_id)


def ended(mode: str, script: str, tmp_path: Path, **kwargs: object) -> tuple[TrialExit, str, str]:
    spec = trial(tmp_path, script, **kwargs)  # type: ignore[arg-type]

    async def body() -> TrialExit:
        svc = service(mode)
        try:
            return await run_to_end(svc, spec, mode)
        finally:
            await svc.close()

    exit_ = asyncio.run(body())
    return exit_, (spec.trial_dir / "stdout").read_text(), (spec.trial_dir / "stderr").read_text()


@pytest.mark.parametrize("mode", MODES)
def test_a_trial_sees_its_environment_folder_argv_and_siblings(mode: str, tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "helper.py").write_text("WORD = 'sibling'\n")
    script = (
        "import os, sys, helper\n"
        "print(os.environ['NASCTL_TRIAL_ID'], os.environ['CUDA_VISIBLE_DEVICES'], os.environ['EXTRA'])\n"
        "print(os.getcwd(), sys.argv, helper.WORD, __name__)\n"
    )
    exit_, out, _ = ended(mode, script, tmp_path, args="a --b 1", gpus=(1, 3), env={"EXTRA": "x"})
    assert exit_ == TrialExit(0, None, None)
    assert out.splitlines() == [
        "T1 1,3 x",
        f"{tmp_path / 'code'} ['T1.py', 'a', '--b', '1'] sibling __main__",
    ]


@pytest.mark.parametrize("mode", MODES)
def test_stdout_and_stderr_land_in_the_trial_files_unbuffered(mode: str, tmp_path: Path) -> None:
    script = "import sys\nprint('to-out')\nprint('to-err', file=sys.stderr)\nsys.stdout.write('no newline')\n"
    _, out, err = ended(mode, script, tmp_path)
    assert (out, err) == ("to-out\nno newline", "to-err\n")


@pytest.mark.parametrize("mode", MODES)
def test_an_exit_code_is_recorded_with_its_reason(mode: str, tmp_path: Path) -> None:
    exit_, _, _ = ended(mode, "import sys\nsys.exit(3)\n", tmp_path)
    assert exit_ == TrialExit(3, None, "exit code 3")


@pytest.mark.parametrize("mode", MODES)
def test_an_uncaught_exception_exits_1_with_its_traceback(mode: str, tmp_path: Path) -> None:
    exit_, _, err = ended(mode, "raise ValueError('bad architecture')\n", tmp_path)
    assert exit_ == TrialExit(1, None, "exit code 1")
    script = tmp_path / "code" / "T1.py"
    assert err.splitlines() == ["Traceback (most recent call last):", f'  File "{script}", line 1, in <module>',
                                "    raise ValueError('bad architecture')", "ValueError: bad architecture"]  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
def test_a_trial_killed_by_a_signal_is_recorded_as_such(mode: str, tmp_path: Path) -> None:
    exit_, _, _ = ended(mode, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", tmp_path)
    assert exit_ == TrialExit(None, 9, "killed by signal 9")


@pytest.mark.parametrize("mode", MODES)
def test_a_module_runs_with_dash_m(mode: str, tmp_path: Path) -> None:
    spec = trial(tmp_path, "import sys\nprint(__name__, sys.argv[1:])\n", trial_id="mod")
    spec = TrialSpec(**{**spec.__dict__, "command": f"{sys.executable} -m mod x y"})

    async def body() -> TrialExit:
        svc = service(mode)
        try:
            return await run_to_end(svc, spec, mode)
        finally:
            await svc.close()

    assert asyncio.run(body()).succeeded
    assert (spec.trial_dir / "stdout").read_text() == "__main__ ['x', 'y']\n"


GRANDCHILD_TREE = """
import os, subprocess, sys, time
g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
open(sys.argv[1], "w").write(f"{g.pid}\\n")
time.sleep(120)
"""


@pytest.mark.parametrize("mode", MODES)
def test_kill_ends_the_whole_tree_including_a_grandchild_in_its_own_session(
    mode: str, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    spec = trial(tmp_path, GRANDCHILD_TREE, args=str(pids))

    async def body() -> tuple[TrialExit, int, int]:
        svc = service(mode, kill_grace=2.0)
        process = await svc.submit(spec, PACKED)
        while not pids.exists() or not pids.read_text().endswith("\n"):
            await asyncio.sleep(0.02)
        await svc.kill(spec.trial_id)
        exit_ = await svc.wait(spec.trial_id)
        await svc.close()
        return exit_, process.pid, int(pids.read_text())

    exit_, main, grandchild = asyncio.run(asyncio.wait_for(body(), 30))
    assert exit_.signal == signal.SIGTERM
    assert not any(
        psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in (main, grandchild)
    )


@pytest.mark.parametrize("mode", MODES)
def test_kill_escalates_to_sigkill_after_the_grace_period(mode: str, tmp_path: Path) -> None:
    script = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready')\ntime.sleep(60)\n"
    )
    spec = trial(tmp_path, script)

    async def body() -> tuple[TrialExit, float]:
        svc = service(mode, kill_grace=0.5)
        await svc.submit(spec, PACKED)
        while "ready" not in (spec.trial_dir / "stdout").read_text():
            await asyncio.sleep(0.02)
        started = time.monotonic()
        await svc.kill(spec.trial_id)
        exit_ = await svc.wait(spec.trial_id)
        await svc.close()
        return exit_, time.monotonic() - started

    exit_, took = asyncio.run(asyncio.wait_for(body(), 30))
    assert exit_.signal == signal.SIGKILL and 0.5 <= took < 3


def test_a_command_with_shell_syntax_launches_cold_even_with_preload(tmp_path: Path) -> None:
    spec = trial(tmp_path, "print('x')\n")
    spec = TrialSpec(**{**spec.__dict__, "command": f"{sys.executable} T1.py > out.txt"})

    async def body() -> str | None:
        svc = service("warm")
        process = await svc.submit(spec, PACKED)
        await svc.wait(spec.trial_id)
        await svc.close()
        return process.launch

    assert asyncio.run(body()) == "cold"


@pytest.mark.parametrize(
    ("words", "warm"),
    [
        (["python3", "model.py", "--epochs", "3"], True),
        (["python", "-m", "model", "x"], True),
        (["python3", "-u", "model.py"], False),  # an interpreter option: its own start
        (["python3", "missing.py"], False),  # python's own error message, from a cold start
        (["python3", "-m"], False),
        (["bash", "model.py"], False),
    ],
)
def test_which_commands_launch_warm(words: list[str], warm: bool, tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text("")
    bin_dir = Path(sys.executable).parent
    assert (warm_command(words, tmp_path, f"{bin_dir}:/usr/bin:/bin") is not None) is warm


def test_a_server_that_cannot_start_leaves_trials_cold_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    specs = [trial(tmp_path, "print('ran')\n", trial_id=f"T{i}") for i in range(2)]

    async def body() -> list[str | None]:
        svc = service("warm", preload=("no_such_module_here",))
        launches = []
        for spec in specs:
            launches.append((await svc.submit(spec, PACKED)).launch)
            assert (await svc.wait(spec.trial_id)).succeeded
        await svc.close()
        return launches

    with caplog.at_level(logging.WARNING, logger="manager.training.warm_launch"):
        assert asyncio.run(body()) == ["cold", "cold"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no_such_module_here" in warnings[0]


def test_a_module_that_starts_a_thread_is_refused_as_unsafe_to_fork(tmp_path: Path) -> None:
    (tmp_path / "threaded.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    )
    spec = trial(tmp_path, "print('ran')\n", env={"PYTHONPATH": str(tmp_path)})

    async def body() -> tuple[str | None, str | None]:
        svc = service("warm", preload=("threaded",))
        svc._base_env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # the server's environment
        process = await svc.submit(spec, PACKED)
        await svc.wait(spec.trial_id)
        await svc.close()
        assert svc.warm is not None
        return process.launch, svc.warm.gave_up

    launch, why = asyncio.run(body())
    assert launch == "cold" and why is not None and "thread" in why


def test_a_dead_server_is_restarted_by_the_next_trial(tmp_path: Path) -> None:
    specs = [trial(tmp_path, "print('ran')\n", trial_id=f"T{i}") for i in range(2)]

    async def body() -> tuple[list[str | None], int | None, int | None]:
        svc = service("warm")
        assert svc.warm is not None
        launches = [(await svc.submit(specs[0], PACKED)).launch]
        await svc.wait("T0")
        first = svc.warm.server_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await asyncio.sleep(0.3)
        launches.append((await svc.submit(specs[1], PACKED)).launch)
        await svc.wait("T1")
        second = svc.warm.server_pid
        await svc.close()
        return launches, first, second

    launches, first, second = asyncio.run(asyncio.wait_for(body(), 60))
    assert launches == ["warm", "warm"] and first != second


def test_a_trial_outlives_its_server_and_ends_unobserved(tmp_path: Path) -> None:
    spec = trial(tmp_path, "import time\nprint('ready')\ntime.sleep(0.5)\n")

    async def body() -> TrialExit:
        svc = service("warm")
        await svc.submit(spec, PACKED)
        assert svc.warm is not None and svc.warm.server_pid is not None
        os.kill(svc.warm.server_pid, signal.SIGKILL)
        exit_ = await svc.wait(spec.trial_id)
        await svc.close()
        return exit_

    assert asyncio.run(asyncio.wait_for(body(), 30)) == TrialExit.unobserved()
    assert (spec.trial_dir / "stdout").read_text() == "ready\n"


TORCH_TRIAL = """
import sys, time
first = 'torch' in sys.modules
import torch
torch.manual_seed(0)
x = torch.randn(256, 8)
y = x @ torch.arange(8.0) + 1
model = torch.nn.Linear(8, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(50):
    opt.zero_grad()
    loss = ((model(x).squeeze(1) - y) ** 2).mean()
    loss.backward()
    opt.step()
print(first, torch.get_num_threads(), repr(loss.item()))
"""


def test_warm_trials_draw_different_random_numbers_as_cold_ones_do(tmp_path: Path) -> None:
    script = "import random, torch\nprint(random.random(), torch.rand(1).item())\n"
    specs = [trial(tmp_path, script, trial_id=f"T{i}") for i in range(2)]

    async def body() -> list[str]:
        svc = service("warm", preload=("torch",))
        try:
            for spec in specs:
                assert (await run_to_end(svc, spec, "warm")).succeeded
        finally:
            await svc.close()
        return [(spec.trial_dir / "stdout").read_text() for spec in specs]

    first, second = asyncio.run(asyncio.wait_for(body(), 120))
    assert all(a != b for a, b in zip(first.split(), second.split(), strict=True))


@pytest.mark.parametrize("threads", ["1"])  # the server, on 2+ cores, would use more
def test_preloaded_torch_trains_in_the_child_like_a_cold_start_with_the_threads_asked(
    threads: str, tmp_path: Path
) -> None:
    outs = {}
    for mode in MODES:
        spec = trial(tmp_path / mode, TORCH_TRIAL, env={"OMP_NUM_THREADS": threads})

        async def body(spec: TrialSpec = spec, mode: str = mode) -> TrialExit:
            svc = service(mode, preload=("torch",))
            try:
                return await run_to_end(svc, spec, mode)
            finally:
                await svc.close()

        assert asyncio.run(asyncio.wait_for(body(), 120)).succeeded
        outs[mode] = (spec.trial_dir / "stdout").read_text().split()
    assert outs["warm"][0] == "True" and outs["cold"][0] == "False"  # torch came from the server
    assert outs["warm"][1:] == outs["cold"][1:] and outs["warm"][1] == threads  # same threads, same loss
