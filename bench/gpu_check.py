"""GPU check: real digits trials on a CUDA machine, through a real daemon, checked from their own output.

Two runs of the same 8 trials of ``examples/digits/model.py`` (Random tuner, seed 0,
``trialGpuNumber: 1``, ``trialConcurrency: 8``): run A with ``maxTrialNumberPerGpu: 4``, run B with 1.
Checked, each from what the trials printed or what nvidia-smi said, never from the daemon alone:

- CUDA_VISIBLE_DEVICES: the value each trial printed (model.py's ``device:`` line) equals the GPUs
  the daemon recorded for it; where torch reports the GPU's UUID, it is the UUID nvidia-smi gives
  that index (so the trial ran on the physical GPU it was given);
- CUDA: each trial trained on ``cuda`` (a dry run says "dry run: cpu" instead);
- packing: from the trials' start and end times, the most running at once is exactly
  min(4 x GPUs, 8) in run A and min(GPUs, 8) in run B, never more than the limit on one GPU;
  both wall times and their ratio are printed;
- memory: nvidia-smi is sampled every 0.2 s during both runs; after each run memory.used is back
  at its idle baseline within a few seconds of the last trial's end, and no trial's pid stays in
  ``--query-compute-apps`` after its trial ended (where pids are visible: inside a container they
  often are not, which the report says; memory.used is checked then only).

``--dry-run`` (CI, any machine): a fake nvidia-smi reporting one idle GPU goes first on PATH, so the
daemon hands out "GPU 0", 4 trials at a time; trials train one epoch on the CPU. The CUDA check
reports "dry run: cpu"; the CUDA_VISIBLE_DEVICES and packing checks are real.

Usage: ``bash bench/gpu_check.sh`` (installs .whl/ where nasctl is not importable, skips without
CUDA), or ``python bench/gpu_check.py [--dry-run] [--trials 8] [--per-gpu 4] [--epochs N]``.
Prints a report and one verdict line; exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DIGITS_DIR = REPO / "examples" / "digits"
SAMPLE_PERIOD = 0.2
#: After a run's last trial ended, memory.used must be back at the idle baseline within this (s).
RELEASE_WITHIN = 5.0
#: memory.used this close to the baseline counts as back (MiB); a CUDA context takes hundreds.
MEMORY_TOLERANCE_MIB = 128
#: A real run's peak memory.used must pass the baseline by this much (MiB): the trials used the GPU.
USED_MARGIN_MIB = 100
#: A trial's pid seen in the compute apps this long after its end is a leak (sampling, nvidia-smi's latency).
PID_SLACK = 1.5
SMI_TIMEOUT = 10.0
FINISHED = ("DONE", "STOPPED", "ERROR")

DEVICE_LINE = re.compile(
    r"^device: (?P<device>\S+?)(?: \((?P<name>.*)\))?, CUDA_VISIBLE_DEVICES=(?P<visible>.*?), "
    r"pid=(?P<pid>\d+)(?:, uuid=(?P<uuid>.*?))?[ \t]*$",
    re.MULTILINE,
)
PEAK_LINE = re.compile(r"^peak GPU memory: (?P<mib>[0-9.]+) MiB", re.MULTILINE)

FAKE_UUID = "GPU-00000000-0000-4000-8000-000000000000"
#: bench/gpu_check.py --dry-run's nvidia-smi: one idle GPU and no compute processes. POSIX sh, so the
#: 0.2 s sampling costs next to nothing; answers any --query-gpu field list the daemon or we ask.
FAKE_NVIDIA_SMI = f"""#!/bin/sh
# fake nvidia-smi of bench/gpu_check.py --dry-run: one idle GPU, no compute processes
for arg in "$@"; do
  case "$arg" in
    --query-gpu=*)
      out=""
      IFS=,
      for key in ${{arg#--query-gpu=}}; do
        case "$key" in
          index) value=0 ;;
          uuid) value={FAKE_UUID} ;;
          name) value="Fake GPU (gpu_check dry run)" ;;
          memory.total|memory.free) value=81559 ;;
          memory.used|utilization.gpu) value=0 ;;
          *) value="[N/A]" ;;
        esac
        out="${{out:+$out, }}$value"
      done
      echo "$out"
      exit 0 ;;
    --query-compute-apps=*) exit 0 ;;
    -L) echo "GPU 0: Fake GPU (gpu_check dry run) (UUID: {FAKE_UUID})"; exit 0 ;;
  esac
done
echo "fake nvidia-smi of bench/gpu_check.py --dry-run: one GPU"
"""


# -- what the trials printed ------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialSeen:
    """model.py's own account: its device, the CUDA_VISIBLE_DEVICES it got (None: unset), its pid."""

    device: str
    name: str | None
    visible: str | None
    pid: int
    uuid: str | None = None
    peak_mib: float | None = None


def parse_trial_output(stdout: str) -> TrialSeen | None:
    """The ``device:`` line (and ``peak GPU memory:``) of a trial's stdout; None when it printed none."""
    match = DEVICE_LINE.search(stdout)
    if match is None:
        return None
    visible = match["visible"]
    peak = PEAK_LINE.search(stdout)
    return TrialSeen(
        device=match["device"],
        name=match["name"],
        visible=None if visible == "<unset>" else visible,
        pid=int(match["pid"]),
        uuid=match["uuid"],
        peak_mib=float(peak["mib"]) if peak else None,
    )


def normalize_uuid(text: str | None) -> str | None:
    """32 lowercase hex digits of a GPU UUID (nvidia-smi writes ``GPU-...``, torch may not); else None."""
    if not text:
        return None
    digits = re.sub(r"[^0-9a-f]", "", text.lower().removeprefix("gpu-"))
    return digits if len(digits) == 32 else None


def expected_visible(trial: Mapping[str, Any]) -> str:
    """CUDA_VISIBLE_DEVICES as the daemon sets it from the GPUs it recorded (manager/training/local.py)."""
    return ",".join(str(g) for g in trial.get("gpus") or [])


def label(trial: Mapping[str, Any]) -> str:
    return f"#{trial.get('sequenceId')} {trial.get('id')}"


def check_visible_devices(
    trials: Iterable[Mapping[str, Any]], seen: Mapping[str, TrialSeen | None]
) -> list[str]:
    """One problem per trial whose printed CUDA_VISIBLE_DEVICES is not what the daemon gave it."""
    problems = []
    for trial in trials:
        mine = seen.get(trial["id"])
        wanted = expected_visible(trial)
        if mine is None:
            problems.append(f"trial {label(trial)} printed no 'device:' line")
        elif not wanted:
            problems.append(f"trial {label(trial)}: the daemon recorded no GPU for it (trialGpuNumber 1)")
        elif mine.visible != wanted:
            got = "<unset>" if mine.visible is None else repr(mine.visible)
            problems.append(
                f"trial {label(trial)}: the daemon gave GPU {wanted} but the trial saw CUDA_VISIBLE_DEVICES={got}"
            )
    return problems


def check_cuda(trials: Iterable[Mapping[str, Any]], seen: Mapping[str, TrialSeen | None]) -> list[str]:
    """One problem per trial that did not train on CUDA."""
    problems = []
    for trial in trials:
        mine = seen.get(trial["id"])
        if mine is not None and not mine.device.startswith("cuda"):
            problems.append(f"trial {label(trial)} trained on {mine.device}, not CUDA")
    return problems


def check_gpu_identity(
    trials: Iterable[Mapping[str, Any]], seen: Mapping[str, TrialSeen | None], uuids: Mapping[int, str]
) -> tuple[list[str], int]:
    """(problems, trials compared): torch's GPU UUID against nvidia-smi's for the index the daemon gave."""
    problems, compared = [], 0
    for trial in trials:
        mine = seen.get(trial["id"])
        gpus = trial.get("gpus") or []
        if mine is None or len(gpus) != 1:
            continue
        theirs, ours = normalize_uuid(mine.uuid), normalize_uuid(uuids.get(gpus[0]))
        if theirs is None or ours is None:
            continue
        compared += 1
        if theirs != ours:
            problems.append(
                f"trial {label(trial)}: given GPU {gpus[0]} ({uuids[gpus[0]]}) but torch ran on {mine.uuid}"
            )
    return problems, compared


# -- how many ran at once ---------------------------------------------------------------------------


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals open at one moment; one ending when another starts does not overlap it."""
    events = []
    for start, end in intervals:
        events.append((start, 1))
        events.append((end, -1))
    events.sort()  # at equal times -1 sorts first: an end frees its slot before the next start
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def intervals(trials: Iterable[Mapping[str, Any]]) -> list[tuple[float, float]]:
    return [
        (t["startTime"], t["endTime"])
        for t in trials
        if t.get("startTime") is not None and t.get("endTime") is not None
    ]


def overlap_per_gpu(trials: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    """GPU index -> the most trials that ran on it at once."""
    per_gpu: dict[int, list[Mapping[str, Any]]] = {}
    for trial in trials:
        for gpu in trial.get("gpus") or []:
            per_gpu.setdefault(gpu, []).append(trial)
    return {gpu: max_overlap(intervals(held)) for gpu, held in sorted(per_gpu.items())}


# -- nvidia-smi -----------------------------------------------------------------------------------------


def parse_memory_csv(text: str) -> dict[int, int]:
    """``index, memory.used`` lines (noheader, nounits) -> {index: MiB}; unknown values count as 0."""
    used = {}
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) >= 2 and fields[0].isdigit():
            used[int(fields[0])] = int(fields[1]) if fields[1].isdigit() else 0
    return used


def parse_apps_csv(text: str) -> dict[int, int]:
    """``pid, used_memory`` lines -> {pid: MiB} (pid-less lines, e.g. "No running processes", are skipped)."""
    apps = {}
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if fields and fields[0].isdigit():
            apps[int(fields[0])] = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
    return apps


@dataclass(frozen=True)
class Sample:
    """One nvidia-smi answer; ``t`` (epoch seconds) is when the call began."""

    t: float
    values: dict[int, int]


def run_smi(smi: str, *args: str) -> str | None:
    try:
        done = subprocess.run([smi, *args], capture_output=True, text=True, timeout=SMI_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


class SmiSampler:
    """Samples memory.used per GPU and the compute apps' pids every ``period`` s in a thread."""

    def __init__(self, smi: str, period: float = SAMPLE_PERIOD) -> None:
        self.smi = smi
        self.period = period
        self.memory: list[Sample] = []
        self.apps: list[Sample] = []
        self.apps_failed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="nvidia-smi sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=SMI_TIMEOUT * 2 + 1)

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.time()
            memory = run_smi(self.smi, "--query-gpu=index,memory.used", "--format=csv,noheader,nounits")
            apps_began = time.time()
            apps = run_smi(self.smi, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits")
            with self._lock:
                if memory is not None:
                    self.memory.append(Sample(began, parse_memory_csv(memory)))
                if apps is None:
                    self.apps_failed += 1
                else:
                    self.apps.append(Sample(apps_began, parse_apps_csv(apps)))
            self._stop.wait(self.period)

    def window(self, since: float, until: float = float("inf")) -> tuple[list[Sample], list[Sample]]:
        """The memory and app samples taken in [since, until]."""
        with self._lock:
            return (
                [s for s in self.memory if since <= s.t <= until],
                [s for s in self.apps if since <= s.t <= until],
            )

    def baseline(self, count: int = 3, timeout: float = 30.0) -> dict[int, int]:
        """memory.used per GPU now: the largest of ``count`` fresh samples (idle, before a run)."""
        since = time.time()
        deadline = since + timeout
        while time.time() < deadline:
            fresh, _ = self.window(since)
            if len(fresh) >= count:
                result: dict[int, int] = {}
                for sample in fresh:
                    for index, used in sample.values.items():
                        result[index] = max(result.get(index, 0), used)
                return result
            time.sleep(self.period / 2)
        raise RuntimeError(f"nvidia-smi gave no memory sample in {timeout:.0f} s")


def memory_released(
    samples: list[Sample],
    baseline: Mapping[int, int],
    last_end: float,
    within: float = RELEASE_WITHIN,
    tolerance: int = MEMORY_TOLERANCE_MIB,
) -> tuple[bool | None, str]:
    """(ok, text): is memory.used of every GPU back within ``tolerance`` of ``baseline`` at some sample
    taken at most ``within`` s after ``last_end``? None when no sample was taken after it."""
    after = sorted((s for s in samples if s.t >= last_end), key=lambda s: s.t)
    if not after:
        return None, "no nvidia-smi sample after the last trial ended"
    for sample in after:
        over = {
            i: u - baseline.get(i, 0) for i, u in sample.values.items() if u > baseline.get(i, 0) + tolerance
        }
        if not over:
            delay = sample.t - last_end
            ok = delay <= within
            return (
                ok,
                f"back at the idle baseline {delay:.1f} s after the last trial ended (limit {within:.0f} s)",
            )
    last = after[-1]
    over = {i: u - baseline.get(i, 0) for i, u in last.values.items()}
    worst = max(over, key=lambda i: over[i])
    return False, (
        f"GPU {worst} still {over[worst]} MiB above its idle baseline ({baseline.get(worst, 0)} MiB) "
        f"{last.t - last_end:.1f} s after the last trial ended"
    )


def peak_above_baseline(samples: list[Sample], baseline: Mapping[int, int]) -> int:
    """The largest total memory.used over the baseline, summed over GPUs, at any sample."""
    return max(
        (sum(u - baseline.get(i, 0) for i, u in s.values.items()) for s in samples),
        default=0,
    )


def pids_released(
    app_samples: list[Sample], trial_pids: Mapping[str, tuple[int, float]], slack: float = PID_SLACK
) -> tuple[list[str], int]:
    """(problems, trials whose pid nvidia-smi ever listed). ``trial_pids``: label -> (pid, end in s).
    A problem per trial whose pid was still listed more than ``slack`` s after its end."""
    seen_at: dict[int, list[float]] = {}
    for sample in app_samples:
        for pid in sample.values:
            seen_at.setdefault(pid, []).append(sample.t)
    problems, visible = [], 0
    for name, (pid, end) in trial_pids.items():
        times = seen_at.get(pid, [])
        if times:
            visible += 1
        late = [t for t in times if t > end + slack]
        if late:
            problems.append(
                f"trial {name}: pid {pid} still on the GPU (nvidia-smi --query-compute-apps) "
                f"{max(late) - end:.1f} s after the trial ended"
            )
    return problems, visible


# -- runs through the daemon --------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    per_gpu: int
    count: int
    experiment: dict[str, Any]
    trials: list[dict[str, Any]]
    seen: dict[str, TrialSeen | None]
    stderr_tails: dict[str, str]
    baseline: dict[int, int]
    began: float
    memory: list[Sample] = field(default_factory=list)
    apps: list[Sample] = field(default_factory=list)

    @property
    def wall(self) -> float:
        """Seconds from POST /experiments to the experiment's end, on the daemon's clock."""
        end = self.experiment.get("endTime") or self.experiment["createdAt"]
        return (end - self.experiment["createdAt"]) / 1000

    @property
    def span(self) -> float:
        """Seconds from the first trial's start to the last trial's end."""
        spans = intervals(self.trials)
        return (max(e for _, e in spans) - min(s for s, _ in spans)) / 1000 if spans else 0.0

    @property
    def last_end(self) -> float:
        return max((t["endTime"] for t in self.trials if t.get("endTime")), default=0) / 1000


def run_experiment(
    client: Any,
    sampler: SmiSampler,
    name: str,
    per_gpu: int,
    trials: int,
    command: str,
    space: dict[str, Any],
    use_active_gpu: bool,
    timeout: float,
) -> Run:
    baseline = sampler.baseline()
    began = time.time()
    config = {
        "experimentName": f"gpu-check-{name}",
        "trialCommand": command,
        "trialCodeDirectory": str(DIGITS_DIR),
        "searchSpace": space,
        "trialConcurrency": trials,
        "maxTrialNumber": trials,
        "trialGpuNumber": 1,
        "maxTrialDuration": f"{int(timeout)}s",
        "tuner": {"name": "Random", "classArgs": {"seed": 0, "optimize_mode": "maximize"}},
        "trainingService": {
            "platform": "local",
            "maxTrialNumberPerGpu": per_gpu,
            "useActiveGpu": use_active_gpu,
        },
    }
    response = client.post("/experiments", json={"config": config, "baseDir": str(REPO)})
    if response.status_code != 201:
        raise RuntimeError(f"run {name}: the daemon refused the experiment: {response.text}")
    exp_id = response.json()["id"]
    deadline = time.monotonic() + timeout
    while True:
        experiment = client.get(f"/experiments/{exp_id}").json()
        if experiment["status"] in FINISHED:
            break
        if time.monotonic() > deadline:
            client.post(f"/experiments/{exp_id}/stop")
            experiment = client.get(f"/experiments/{exp_id}").json()
            experiment["error"] = f"gpu_check stopped it after {timeout:.0f} s"
            break
        time.sleep(0.25)
    records = client.get(f"/experiments/{exp_id}/trials", params={"limit": 1000}).json()["items"]
    seen: dict[str, TrialSeen | None] = {}
    tails: dict[str, str] = {}
    for trial in records:
        stdout = client.get(f"/experiments/{exp_id}/trials/{trial['id']}/log/stdout").text
        seen[trial["id"]] = parse_trial_output(stdout)
        if trial["status"] != "SUCCEEDED":
            tails[trial["id"]] = client.get(
                f"/experiments/{exp_id}/trials/{trial['id']}/log/stderr", params={"tail": 15}
            ).text
    run = Run(name, per_gpu, trials, experiment, records, seen, tails, baseline, began)
    # wait (a little) for nvidia-smi to show the memory back, or for the limit to pass
    limit = run.last_end + RELEASE_WITHIN + 2 * sampler.period + 1
    while time.time() < limit:
        memory, _ = sampler.window(began)
        if memory_released(memory, baseline, run.last_end)[0]:
            break
        time.sleep(sampler.period)
    run.memory, run.apps = sampler.window(began)
    return run


# -- report -----------------------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.failed: list[str] = []

    def check(self, ok: bool | None, text: str, problems: Iterable[str] = ()) -> None:
        """ok True/False, or None: not applicable here (said, never failed)."""
        status = "n/a" if ok is None else ("ok" if ok else "FAIL")
        self.lines.append((status, text))
        for problem in problems:
            self.lines.append(("", f"  {problem}"))
        if ok is False:
            self.failed.append(text)

    def print(self) -> None:
        print("checks:")
        for status, text in self.lines:
            print(f"  {status:<4}  {text}")


def print_run(run: Run, started: float) -> None:
    exp = run.experiment
    counts = exp.get("trialCounts", {})
    print(
        f"run {run.name}: {run.count} trials, maxTrialNumberPerGpu {run.per_gpu}: {exp['status']}, "
        f"{counts.get('SUCCEEDED', 0)} succeeded; wall {run.wall:.1f} s (trials {run.span:.1f} s)"
        + (f"; error: {exp['error']}" if exp.get("error") else "")
    )
    print(
        "  seq  status     gpus  seen CUDA_VISIBLE_DEVICES  device                       start    end  peak MiB"
    )
    for trial in sorted(run.trials, key=lambda t: t["sequenceId"]):
        mine = run.seen.get(trial["id"])
        device = "-" if mine is None else (f"{mine.device} ({mine.name})" if mine.name else mine.device)
        visible = "-" if mine is None else ("<unset>" if mine.visible is None else mine.visible or "''")
        start = "-" if trial.get("startTime") is None else f"{trial['startTime'] / 1000 - started:.1f}"
        end = "-" if trial.get("endTime") is None else f"{trial['endTime'] / 1000 - started:.1f}"
        peak = "-" if mine is None or mine.peak_mib is None else f"{mine.peak_mib:.1f}"
        gpus = expected_visible(trial) or "-"
        print(
            f"  {trial['sequenceId']:>3}  {trial['status']:<9}  {gpus:>4}  {visible:<25}  {device[:27]:<27}  "
            f"{start:>5}  {end:>5}  {peak:>8}"
        )
    for trial_id, tail in run.stderr_tails.items():
        print(f"  stderr of failed trial {trial_id}:")
        for line in tail.splitlines()[-15:]:
            print(f"    {line}")


def evaluate(runs: list[Run], gpus: list[dict[str, Any]], dry_run: bool, report: Report) -> None:
    everyone = [t for run in runs for t in run.trials]
    seen = {k: v for run in runs for k, v in run.seen.items()}
    wanted = sum(run.count for run in runs)
    succeeded = sum(t["status"] == "SUCCEEDED" for t in everyone)
    report.check(
        succeeded == wanted and all(r.experiment["status"] == "DONE" for r in runs),
        f"experiments DONE, trials succeeded: {succeeded}/{wanted}",
    )
    problems = check_visible_devices(everyone, seen)
    report.check(
        not problems and bool(everyone),
        f"CUDA_VISIBLE_DEVICES each trial printed = the GPU the daemon recorded for it "
        f"({len(everyone) - len(problems)}/{len(everyone)})",
        problems,
    )
    if dry_run:
        devices = sorted({s.device for s in seen.values() if s is not None})
        report.check(None, f"trained on CUDA: dry run: {', '.join(devices) or 'cpu'}")
    else:
        problems = check_cuda(everyone, seen)
        report.check(
            not problems and bool(everyone),
            f"trained on CUDA ({len(everyone) - len(problems)}/{len(everyone)})",
            problems,
        )
    uuids = {g["index"]: g["uuid"] for g in gpus}
    problems, compared = check_gpu_identity(everyone, seen, uuids)
    if compared:
        report.check(
            not problems,
            f"GPU UUID torch used = nvidia-smi's for the given index ({compared} compared)",
            problems,
        )
    else:
        report.check(
            None, "GPU UUID check: no trial printed a UUID nvidia-smi could match (CPU or old torch)"
        )
    for run in runs:
        expected = min(run.per_gpu * len(gpus), run.count)
        most = max_overlap(intervals(run.trials))
        per_gpu = overlap_per_gpu(run.trials)
        over = {g: n for g, n in per_gpu.items() if n > run.per_gpu}
        report.check(
            most == expected and not over,
            f"run {run.name}: at most {most} trials at once (expected {expected} = "
            f"min({run.per_gpu} x {len(gpus)} GPU, {run.count})); per GPU at most "
            f"{', '.join(f'GPU {g}: {n}' for g, n in per_gpu.items()) or '-'} (limit {run.per_gpu})",
        )
    pid_visible_total = 0
    for run in runs:
        ok, text = memory_released(run.memory, run.baseline, run.last_end)
        report.check(False if ok is None else ok, f"run {run.name}: memory.used {text}")
        peak = peak_above_baseline(run.memory, run.baseline)
        if dry_run:
            report.check(None, f"run {run.name}: peak memory.used +{peak} MiB over idle (fake nvidia-smi)")
        else:
            report.check(
                peak >= USED_MARGIN_MIB,
                f"run {run.name}: peak memory.used +{peak} MiB over the idle baseline "
                f"(>= {USED_MARGIN_MIB} MiB: the trials were on the GPU)",
            )
        pids = {
            label(t): (seen[t["id"]].pid, t["endTime"] / 1000)  # type: ignore[union-attr]
            for t in run.trials
            if seen.get(t["id"]) is not None and t.get("endTime")
        }
        problems, visible = pids_released(run.apps, pids)
        pid_visible_total += visible
        if visible:
            report.check(
                not problems,
                f"run {run.name}: trial pids gone from --query-compute-apps within {PID_SLACK} s of their end "
                f"({visible}/{len(pids)} pids seen there)",
                problems,
            )
        else:
            why = "dry run: fake nvidia-smi" if dry_run else "a container's own pid namespace?"
            report.check(
                None,
                f"run {run.name}: no trial pid ever listed by --query-compute-apps ({why}); "
                "memory.used checked instead",
            )


def install_fake_nvidia_smi(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nvidia-smi"
    path.write_text(FAKE_NVIDIA_SMI)
    path.chmod(0o755)
    return path


def inventory(smi: str) -> list[dict[str, Any]]:
    text = run_smi(
        smi, "--query-gpu=index,uuid,name,memory.total,memory.used", "--format=csv,noheader,nounits"
    )
    gpus = []
    for line in (text or "").splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) >= 5 and fields[0].isdigit():
            gpus.append(
                {
                    "index": int(fields[0]),
                    "uuid": fields[1],
                    "name": fields[2],
                    "total": fields[3],
                    "used": fields[4],
                }
            )
    return gpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dry-run", action="store_true", help="fake nvidia-smi with one GPU; trials on the CPU"
    )
    parser.add_argument("--trials", type=int, default=8, help="trials per run (default 8)")
    parser.add_argument("--serial-trials", type=int, help="trials of run B (default: --trials)")
    parser.add_argument("--per-gpu", type=int, default=4, help="maxTrialNumberPerGpu of run A (default 4)")
    parser.add_argument("--epochs", type=int, help="epochs per trial (default: model.py's; 1 in a dry run)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per run before it is stopped")
    parser.add_argument(
        "--keep", action="store_true", help="keep the daemon's home (trial folders) and say where"
    )
    args = parser.parse_args(argv)
    dry_run = args.dry_run or os.environ.get("NASCTL_GPU_CHECK_DRY_RUN") == "1"
    epochs = args.epochs if args.epochs is not None else (1 if dry_run else None)

    work = Path(tempfile.mkdtemp(prefix="nasctl-gpu-check-"))
    if dry_run:  # first on PATH for the daemon (it runs in this process) and for the sampler
        fake = install_fake_nvidia_smi(work / "bin")
        os.environ["PATH"] = os.pathsep.join([str(fake.parent), os.environ.get("PATH", "")])
    smi = shutil.which("nvidia-smi")
    gpus = inventory(smi) if smi else []
    if not gpus:
        why = "no nvidia-smi" if smi is None else "nvidia-smi reports no GPU"
        print(f"gpu_check: skipped: no CUDA GPU ({why})")
        shutil.rmtree(work, ignore_errors=True)
        return 0
    assert smi is not None

    sys.path.insert(0, str(REPO))
    import httpx

    from manager.daemon import Daemon
    from manager.loop.ss_gen import generate_search_space

    apps = parse_apps_csv(
        run_smi(smi, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits") or ""
    )
    use_active_gpu = bool(apps)  # someone else's process on a GPU would make the daemon skip it
    device = "cpu" if dry_run else "cuda"
    command = f"{shlex.quote(sys.executable)} model.py --device {device}"
    if epochs is not None:
        command += f" --epochs {epochs}"

    print(f"gpu_check{' (dry run)' if dry_run else ''}: {len(gpus)} GPU(s) per {smi}:")
    for gpu in gpus:
        print(
            f"  GPU {gpu['index']}: {gpu['name']}, {gpu['total']} MiB, {gpu['used']} MiB used, {gpu['uuid']}"
        )
    if use_active_gpu:
        print(
            f"  other processes on the GPUs ({sorted(apps)}): useActiveGpu: true, so the daemon may use them"
        )
    print(f"python {sys.executable}; trial command: {command} (in examples/digits)")

    sampler = SmiSampler(smi)
    sampler.start()
    started = time.time()
    daemon = Daemon(work / "home", kill_grace=2.0)
    runs: list[Run] = []
    report = Report()
    try:
        space = generate_search_space(command, trial_dir=DIGITS_DIR).to_json()  # once for both runs
        port, token = daemon.start_in_thread()
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            trust_env=False,
            timeout=60,
        )
        try:
            serial = args.trials if args.serial_trials is None else args.serial_trials
            for name, per_gpu, count in (("A", args.per_gpu, args.trials), ("B", 1, serial)):
                runs.append(
                    run_experiment(
                        client, sampler, name, per_gpu, count, command, space, use_active_gpu, args.timeout
                    )
                )
                print_run(runs[-1], started)
        finally:
            client.close()
    except Exception as exc:  # no search space, a daemon that does not start, a refused config
        report.check(False, f"running the experiments: {type(exc).__name__}: {str(exc).strip()[-2000:]}")
    finally:
        daemon.shutdown()
        sampler.stop()
        if args.keep:
            print(f"daemon home kept: {work / 'home'}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    if len(runs) == 2:
        evaluate(runs, gpus, dry_run, report)
    report.print()
    if len(runs) == 2 and runs[0].wall > 0:
        a, b = runs
        print(
            f"wall: run A (maxTrialNumberPerGpu {a.per_gpu}) {a.wall:.1f} s, run B (1 per GPU) {b.wall:.1f} s; "
            f"B/A {b.wall / a.wall:.2f} (trials only: {a.span:.1f} s, {b.span:.1f} s, "
            f"{b.span / a.span if a.span else 0:.2f})"
        )
    mode = "dry run, " if dry_run else ""
    if report.failed:
        print(f"verdict: FAILED ({mode}{len(report.failed)} check(s)): {report.failed[0]}")
        return 1
    print(f"verdict: OK ({mode}{sum(1 for s, _ in report.lines if s)} checks, {len(gpus)} GPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
