"""bench/gpu_check.py: its parsing and checks (with cases that must fail), the fake nvidia-smi of its
dry run, the wheel list of bench/gpu_wheels.sh, the CPU dry run end to end, and the real run (gpu)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import _gpu_wheels  # noqa: E402
import gpu_check as gc  # noqa: E402

from manager.gpu import detect_gpus  # noqa: E402

BASH = shutil.which("bash") or "/bin/bash"
UUID = "GPU-5f0c1a2b-3c4d-5e6f-7081-92a3b4c5d6e7"


def trial(seq: int, gpus: list[int], start: float = 0, end: float = 10_000) -> dict:
    return {"id": f"t{seq}", "sequenceId": seq, "gpus": gpus, "startTime": start, "endTime": end}


def seen(
    visible: str | None, device: str = "cuda:0", pid: int = 100, uuid: str | None = None
) -> gc.TrialSeen:
    return gc.TrialSeen(device=device, name="NVIDIA H200", visible=visible, pid=pid, uuid=uuid)


# -- what a trial printed ---------------------------------------------------------------------------


def test_the_device_line_of_a_cuda_trial_is_read_with_its_peak_memory() -> None:
    out = (
        "architecture: {'conv1': 'conv3x3'}\n"
        f"device: cuda:0 (NVIDIA H200), CUDA_VISIBLE_DEVICES=0,1, pid=4242, uuid={UUID[4:]}\n"
        "epoch 1: loss 1.9, validation accuracy 0.1\n"
        "peak GPU memory: 45.2 MiB (torch.cuda.max_memory_allocated)\n"
    )
    assert gc.parse_trial_output(out) == gc.TrialSeen("cuda:0", "NVIDIA H200", "0,1", 4242, UUID[4:], 45.2)


def test_cpu_lines_unset_and_empty_visible_devices_and_no_line() -> None:
    unset = gc.parse_trial_output("device: cpu, CUDA_VISIBLE_DEVICES=<unset>, pid=7\n")
    assert unset == gc.TrialSeen("cpu", None, None, 7)
    empty = gc.parse_trial_output("device: cpu, CUDA_VISIBLE_DEVICES=, pid=8\n")
    assert empty is not None and empty.visible == ""
    assert gc.parse_trial_output("architecture: {}\nfinal validation accuracy: 0.9\n") is None
    odd = gc.parse_trial_output(
        "device: cuda:0 (X), CUDA_VISIBLE_DEVICES=3, pid=9, uuid=<_CUuuid object at 0x7f>\n"
    )
    assert odd is not None and odd.visible == "3" and gc.normalize_uuid(odd.uuid) is None


def test_the_example_prints_a_line_the_check_reads(tmp_path: Path) -> None:
    # standalone, on the CPU (also on a GPU machine), one epoch: the line model.py really prints
    env = {k: v for k, v in os.environ.items() if not k.startswith("NASCTL_")}
    env["CUDA_VISIBLE_DEVICES"] = ""
    out = subprocess.run(
        [sys.executable, "model.py", "--epochs", "1", "--device", "cpu"],
        cwd=REPO / "examples" / "digits",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    mine = gc.parse_trial_output(out.stdout)
    assert mine is not None and mine.device == "cpu" and mine.visible == "" and mine.pid > 0


# -- the checks: each must catch its failure ---------------------------------------------------------


def test_visible_devices_that_match_the_allocation_pass() -> None:
    trials = [trial(0, [0]), trial(1, [1]), trial(2, [0, 1])]
    got = {"t0": seen("0"), "t1": seen("1"), "t2": seen("0,1")}
    assert gc.check_visible_devices(trials, got) == []


def test_a_trial_that_saw_other_visible_devices_is_reported() -> None:
    trials = [trial(0, [0]), trial(1, [1]), trial(2, [0]), trial(3, [])]
    got = {"t0": seen("0"), "t1": seen("0"), "t2": seen(None), "t3": seen("")}
    problems = gc.check_visible_devices(trials, got)
    assert len(problems) == 3
    assert "#1 t1: the daemon gave GPU 1 but the trial saw CUDA_VISIBLE_DEVICES='0'" in problems[0]
    assert "#2 t2" in problems[1] and "<unset>" in problems[1]
    assert "#3 t3" in problems[2] and "recorded no GPU" in problems[2]


def test_a_trial_that_printed_no_device_line_is_reported() -> None:
    problems = gc.check_visible_devices([trial(0, [0])], {"t0": None})
    assert problems == ["trial #0 t0 printed no 'device:' line"]


def test_a_trial_that_trained_on_the_cpu_fails_the_cuda_check() -> None:
    trials = [trial(0, [0]), trial(1, [0])]
    problems = gc.check_cuda(trials, {"t0": seen("0"), "t1": seen("0", device="cpu")})
    assert problems == ["trial #1 t1 trained on cpu, not CUDA"]


def test_gpu_identity_compares_torch_uuid_with_nvidia_smi_for_the_given_index() -> None:
    other = "GPU-00000000-1111-2222-3333-444444444444"
    uuids = {0: UUID, 1: other}
    trials = [trial(0, [0]), trial(1, [1]), trial(2, [0])]
    got = {"t0": seen("0", uuid=UUID[4:]), "t1": seen("1", uuid=UUID[4:]), "t2": seen("0", uuid="garbage")}
    problems, compared = gc.check_gpu_identity(trials, got, uuids)
    assert compared == 2  # the unparseable UUID is not compared
    assert len(problems) == 1 and "#1 t1: given GPU 1" in problems[0]


def test_max_overlap_counts_open_intervals_and_touching_ones_do_not_overlap() -> None:
    assert gc.max_overlap([]) == 0
    assert gc.max_overlap([(0, 10), (10, 20), (20, 30)]) == 1
    assert gc.max_overlap([(0, 10), (1, 9), (2, 8), (3, 7), (9.5, 12)]) == 4
    assert gc.max_overlap([(0, 10), (5, 15), (12, 20)]) == 2


def test_overlap_per_gpu_catches_a_gpu_above_its_limit() -> None:
    trials = [trial(0, [0], 0, 10), trial(1, [0], 1, 9), trial(2, [1], 2, 8), trial(3, [1], 20, 30)]
    assert gc.overlap_per_gpu(trials) == {0: 2, 1: 1}
    assert gc.max_overlap(gc.intervals(trials)) == 3


def test_nvidia_smi_csv_parsing() -> None:
    assert gc.parse_memory_csv("0, 1024\n1, [N/A]\nbad line\n") == {0: 1024, 1: 0}
    assert gc.parse_apps_csv("4242, 600\n4343, [N/A]\n") == {4242: 600, 4343: 0}
    assert gc.parse_apps_csv("No running processes found\n") == {}


def test_memory_back_at_baseline_soon_after_the_last_trial_passes() -> None:
    samples = [gc.Sample(99.0, {0: 5000}), gc.Sample(100.2, {0: 5000}), gc.Sample(100.6, {0: 40})]
    ok, text = gc.memory_released(samples, {0: 0}, last_end=100.0)
    assert ok is True and "0.6 s after" in text


def test_memory_released_too_late_or_never_fails() -> None:
    late = [gc.Sample(100.5, {0: 5000}), gc.Sample(108.0, {0: 0})]
    ok, text = gc.memory_released(late, {0: 0}, last_end=100.0, within=5.0)
    assert ok is False and "8.0 s after" in text
    never = [gc.Sample(100.5, {0: 3000}), gc.Sample(106.0, {0: 2500, 1: 0})]
    ok, text = gc.memory_released(never, {0: 100, 1: 0}, last_end=100.0)
    assert ok is False and "GPU 0 still 2400 MiB above its idle baseline (100 MiB) 6.0 s after" in text
    assert gc.memory_released([gc.Sample(99.0, {0: 0})], {0: 0}, last_end=100.0)[0] is None


def test_peak_above_baseline_sums_the_gpus() -> None:
    samples = [gc.Sample(1.0, {0: 100, 1: 50}), gc.Sample(2.0, {0: 900, 1: 650})]
    assert gc.peak_above_baseline(samples, {0: 100, 1: 50}) == 1400
    assert gc.peak_above_baseline([], {0: 0}) == 0


def test_a_pid_still_on_the_gpu_after_its_trial_ended_is_reported() -> None:
    apps = [gc.Sample(t, {4242: 600, 5151: 600}) for t in (100.0, 101.0, 104.0)]
    apps.append(gc.Sample(105.0, {}))
    problems, visible = gc.pids_released(
        apps, {"#0": (4242, 103.5), "#1": (5151, 101.2), "#2": (6000, 100.0)}
    )
    assert visible == 2
    assert problems == [
        "trial #1: pid 5151 still on the GPU (nvidia-smi --query-compute-apps) 2.8 s after the trial ended"
    ]


def test_pids_never_listed_are_counted_as_invisible_not_as_leaks() -> None:
    assert gc.pids_released([gc.Sample(1.0, {})], {"#0": (4242, 0.5)}) == ([], 0)


# -- the dry run's fake nvidia-smi --------------------------------------------------------------------


def test_the_fake_nvidia_smi_answers_the_daemon_and_the_sampler(tmp_path: Path, monkeypatch) -> None:
    fake = gc.install_fake_nvidia_smi(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    [gpu] = detect_gpus()
    assert (gpu.index, gpu.processes, gpu.memory_used_mib) == (0, 0, 0)
    assert gc.inventory(str(fake)) == [
        {
            "index": 0,
            "uuid": gc.FAKE_UUID,
            "name": "Fake GPU (gpu_check dry run)",
            "total": "81559",
            "used": "0",
        }
    ]
    memory = gc.run_smi(str(fake), "--query-gpu=index,memory.used", "--format=csv,noheader,nounits")
    assert gc.parse_memory_csv(memory or "") == {0: 0}
    assert gc.run_smi(str(fake), "--query-compute-apps=pid,used_memory", "--format=csv") == ""


# -- bench/gpu_wheels.sh's list -----------------------------------------------------------------------


def test_the_wheel_list_pins_what_is_installed_and_leaves_torch_to_the_machine() -> None:
    pins = _gpu_wheels.pins()
    for name in ("fastapi", "starlette", "uvicorn", "sqlalchemy", "pydantic", "pydantic-core", "click"):
        assert pins[name] == version(name)
    assert not {"torch", "psutil", "pyyaml", "nasctl"} & set(pins)


def fake_wheel(folder: Path, name: str, ver: str, *requires: str) -> None:
    headers = [f"Name: {name}", f"Version: {ver}", *(f"Requires-Dist: {r}" for r in requires)]
    with zipfile.ZipFile(folder / f"{name}-{ver}-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"{name}-{ver}.dist-info/METADATA", "\n".join(headers) + "\n\nlong description\n")


def test_wheel_check_reports_missing_and_too_old_requirements(tmp_path: Path) -> None:
    fake_wheel(tmp_path, "app", "1.0", "lib>=2", "gone", "torch>=2", 'win-only; sys_platform == "win32"')
    fake_wheel(tmp_path, "lib", "1.5", 'extra-only; extra == "full"')
    assert _gpu_wheels.check_wheels(tmp_path) == [
        "app needs lib>=2: the wheel is lib 1.5",
        "app needs gone: no wheel",
    ]
    fake_wheel(tmp_path, "gone", "0.1")
    (tmp_path / "lib-1.5-py3-none-any.whl").unlink()
    fake_wheel(tmp_path, "lib", "2.0")
    assert _gpu_wheels.check_wheels(tmp_path) == []


# -- the shell entry --------------------------------------------------------------------------------


def run_script(*args: str, path: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [BASH, "bench/gpu_check.sh", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_without_nvidia_smi_the_script_skips_with_one_line(tmp_path: Path) -> None:
    bare = tmp_path / "bin"  # a PATH with only what the script needs before it skips
    bare.mkdir()
    (bare / "dirname").symlink_to(shutil.which("dirname") or "/usr/bin/dirname")
    out = run_script(path=str(bare))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "gpu_check: skipped: no CUDA GPU (no nvidia-smi)\n"


def test_with_nvidia_smi_but_no_cuda_in_torch_the_script_skips(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    fake = gc.install_fake_nvidia_smi(tmp_path / "bin")
    out = run_script(path=f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("gpu_check: skipped: no CUDA GPU (torch.cuda.is_available() is False")


@pytest.mark.slow
def test_the_dry_run_passes_end_to_end() -> None:
    # 5 trials at 4 per GPU (the 5th waits for a slot), then 2 at 1 per GPU, no training epoch (the
    # checks read the trials' device lines and times): about 30 s on 2 cores
    out = run_script("--dry-run", "--trials", "5", "--serial-trials", "2", "--epochs", "0", timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "nasctl and its dependencies import already; nothing installed" in out.stdout
    assert "ok    experiments DONE, trials succeeded: 7/7" in out.stdout
    assert (
        "ok    CUDA_VISIBLE_DEVICES each trial printed = the GPU the daemon recorded for it (7/7)"
        in out.stdout
    )
    assert "n/a   trained on CUDA: dry run: cpu" in out.stdout
    assert "ok    run A: at most 4 trials at once (expected 4 = min(4 x 1 GPU, 5))" in out.stdout
    assert "ok    run B: at most 1 trials at once (expected 1 = min(1 x 1 GPU, 2))" in out.stdout
    assert out.stdout.rstrip().splitlines()[-1].startswith("verdict: OK (dry run,")


@pytest.mark.gpu
@pytest.mark.slow
def test_the_real_gpu_check_passes() -> None:
    out = run_script(timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "verdict: OK" in out.stdout and "ok    trained on CUDA" in out.stdout
