"""Which GPUs a trial may use, and why it waits when none fits.

The inventory comes from ``nvidia-smi`` (the daemon never imports torch or CUDA). The rules are
NNI's local scheduler, plus a reason for every wait, the complaint NNI users had most:

- only GPUs in ``gpuIndices`` (all when unset) are used;
- a GPU holds at most ``maxTrialNumberPerGpu`` of our trials;
- unless ``useActiveGpu``, a GPU where some other process runs is "busy" and skipped, except
  when our own trials already run there (their processes are ours, so it may still be packed);
- a trial gets the least-loaded allowed GPUs, or waits until enough are free.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from manager.config import TrainingServiceConfig

NVIDIA_SMI_TIMEOUT = 10.0
_GPU_QUERY = "index,uuid,name,memory.total,memory.used,utilization.gpu"


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as nvidia-smi sees it; ``processes`` counts every compute process on it, ours included."""

    index: int
    name: str
    memory_total_mib: int
    memory_used_mib: int
    utilization: float
    processes: int


def detect_gpus() -> list[GpuInfo]:
    """The machine's GPUs from nvidia-smi; [] when it is absent or fails (a CPU machine is no error)."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return []
    gpus = _run([executable, f"--query-gpu={_GPU_QUERY}", "--format=csv,noheader,nounits"])
    if gpus is None:
        return []
    apps = _run([executable, "--query-compute-apps=gpu_uuid,pid", "--format=csv,noheader,nounits"])
    return parse_nvidia_smi(gpus, apps or "")


def parse_nvidia_smi(gpu_csv: str, apps_csv: str) -> list[GpuInfo]:
    """GpuInfo from the two CSV answers (``--query-gpu`` as in :data:`_GPU_QUERY`, compute apps)."""
    per_uuid: dict[str, int] = {}
    for line in apps_csv.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) >= 2 and fields[0]:
            per_uuid[fields[0]] = per_uuid.get(fields[0], 0) + 1
    result: list[GpuInfo] = []
    for line in gpu_csv.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 6 or not fields[0].isdigit():
            continue
        index, uuid, name, total, used, util = fields[:6]
        result.append(
            GpuInfo(
                index=int(index),
                name=name,
                memory_total_mib=int(_number(total)),
                memory_used_mib=int(_number(used)),
                utilization=_number(util),
                processes=per_uuid.get(uuid, 0),
            )
        )
    return result


def _run(command: list[str]) -> str | None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _number(text: str) -> float:
    """nvidia-smi prints ``[N/A]`` or ``[Not Supported]`` where a value is unknown; that counts as 0."""
    try:
        return float(text)
    except ValueError:
        return 0.0


class GpuAllocator:
    """Hands GPUs to trials under ``gpuIndices``, ``maxTrialNumberPerGpu`` and ``useActiveGpu``.

    Thread-safe: the API and the experiment loop may both ask. The inventory is read on every
    request that needs GPUs, so a GPU freed by another user is seen at the next request.
    """

    def __init__(
        self,
        inventory: Callable[[], list[GpuInfo]] = detect_gpus,
        gpu_indices: tuple[int, ...] | None = None,
        max_trials_per_gpu: int = 1,
        use_active_gpu: bool = False,
    ) -> None:
        if max_trials_per_gpu < 1:
            raise ValueError(f"max_trials_per_gpu must be >= 1, got {max_trials_per_gpu}")
        self._inventory = inventory
        self.gpu_indices = None if gpu_indices is None else tuple(gpu_indices)
        self.max_trials_per_gpu = max_trials_per_gpu
        self.use_active_gpu = use_active_gpu
        self._lock = threading.Lock()
        self._held: dict[str, tuple[int, ...]] = {}

    @classmethod
    def for_service(
        cls, service: TrainingServiceConfig, inventory: Callable[[], list[GpuInfo]] | None = None
    ) -> GpuAllocator:
        """The allocator a ``trainingService`` section asks for (``inventory`` defaults to nvidia-smi)."""
        return cls(
            inventory=inventory or detect_gpus,
            gpu_indices=service.gpu_indices,
            max_trials_per_gpu=service.max_trial_number_per_gpu,
            use_active_gpu=service.use_active_gpu,
        )

    # -- requests -------------------------------------------------------------------------------
    def allocate(self, trial_id: str, count: int) -> tuple[int, ...] | None:
        """GPU indices for ``trial_id``, or None when it must wait; () for a CPU trial.

        Asking again for a trial that already holds GPUs returns the same ones.
        """
        if count < 0:
            raise ValueError(f"GPU count must be >= 0, got {count}")
        if count == 0:
            return ()
        with self._lock:
            held = self._held.get(trial_id)
            if held is not None:
                if len(held) != count:
                    raise ValueError(f"trial {trial_id} already holds GPUs {list(held)}, not {count}")
                return held
            usable = [gpu for gpu in self._allowed(self._inventory()) if self._state(gpu) == "free"]
            if len(usable) < count:
                return None
            load = self._load()
            usable.sort(key=lambda g: (load.get(g.index, 0), g.processes, g.memory_used_mib, g.index))
            chosen = tuple(sorted(g.index for g in usable[:count]))
            self._held[trial_id] = chosen
            return chosen

    def hold(self, trial_id: str, gpus: tuple[int, ...]) -> None:
        """Count ``gpus`` as held by ``trial_id`` whatever their state: a trial re-adopted after a
        daemon restart already runs on them."""
        with self._lock:
            self._held[trial_id] = tuple(gpus)

    def release(self, trial_id: str) -> None:
        """Give back what ``trial_id`` holds (nothing happens if it holds nothing)."""
        with self._lock:
            self._held.pop(trial_id, None)

    def held(self, trial_id: str) -> tuple[int, ...]:
        """The GPUs ``trial_id`` holds now (() if none)."""
        with self._lock:
            return self._held.get(trial_id, ())

    def load(self) -> dict[int, int]:
        """Our trials per GPU index, for display."""
        with self._lock:
            return self._load()

    # -- explanations -------------------------------------------------------------------------------
    def why_waiting(self, count: int) -> str:
        """Why a trial needing ``count`` GPUs cannot start now, one line for ``waitingReason``."""
        need = f"needs {count} GPU{'s' if count != 1 else ''}"
        with self._lock:
            gpus = self._inventory()
            if not gpus:
                return f"{need}: no GPU found (nvidia-smi is missing or failed)"
            allowed = self._allowed(gpus)
            if not allowed:
                return f"{need}: none of gpuIndices {_indices(self.gpu_indices or ())} exists"
            load = self._load()
            parts: list[str] = []
            free = 0
            busy = False
            for gpu in allowed:
                state = self._state(gpu)
                if state == "full":
                    parts.append(
                        f"GPU {gpu.index} is full ({load.get(gpu.index, 0)}/{self.max_trials_per_gpu} trials)"
                    )
                elif state == "busy":
                    busy = True
                    parts.append(f"GPU {gpu.index} is busy with another process")
                else:
                    free += 1
                    parts.append(f"GPU {gpu.index} is free")
        text = f"{need}: {', '.join(parts)}"
        if free >= count:
            text += f" ({free} free, enough to start)"
        if busy:
            text += "; useActiveGpu: false"
        return text

    def validate(self, count: int) -> str | None:
        """A message when a trial needing ``count`` GPUs could NEVER start here (create refuses), else None."""
        if count < 0:
            return f"trialGpuNumber must be >= 0, got {count}"
        if count == 0:
            return None
        gpus = self._inventory()
        if not gpus:
            return (
                f"trialGpuNumber is {count} but no GPU was found (nvidia-smi is missing or failed); "
                "set trialGpuNumber: 0 to run trials on the CPU"
            )
        present = sorted(g.index for g in gpus)
        if self.gpu_indices is not None:
            missing = [i for i in self.gpu_indices if i not in present]
            if missing:
                return (
                    f"trainingService.gpuIndices names GPU {_indices(missing)}, "
                    f"but this machine has GPU {_indices(present)}"
                )
        usable = len(self._allowed(gpus))
        if usable < count:
            scope = "" if self.gpu_indices is None else f" (gpuIndices: {_indices(self.gpu_indices)})"
            return f"trialGpuNumber is {count} but only {usable} GPU{'s' if usable != 1 else ''} can be used{scope}"
        return None

    # -- rules ------------------------------------------------------------------------------------
    def _allowed(self, gpus: list[GpuInfo]) -> list[GpuInfo]:
        if self.gpu_indices is None:
            return list(gpus)
        return [gpu for gpu in gpus if gpu.index in self.gpu_indices]

    def _state(self, gpu: GpuInfo) -> str:
        """``full`` (our limit reached), ``busy`` (another process, not ours), or ``free``."""
        ours = self._load().get(gpu.index, 0)
        if ours >= self.max_trials_per_gpu:
            return "full"
        if not self.use_active_gpu and ours == 0 and gpu.processes > 0:
            return "busy"
        return "free"

    def _load(self) -> dict[int, int]:
        load: dict[int, int] = {}
        for indices in self._held.values():
            for index in indices:
                load[index] = load.get(index, 0) + 1
        return load


def _indices(indices: tuple[int, ...] | list[int]) -> str:
    return ",".join(str(i) for i in indices)
