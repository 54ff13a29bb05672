"""GPU allocation: limits, busy GPUs, the reasons for waiting, and requests that can never be met.

The inventory is the one thing faked here (no GPU on the test machine); one test reads the real
nvidia-smi where there is one.
"""

from __future__ import annotations

import shutil
import threading

import pytest

from manager.gpu import GpuAllocator, GpuInfo, detect_gpus, parse_nvidia_smi


def gpu(index: int, processes: int = 0, memory_used: int = 0) -> GpuInfo:
    return GpuInfo(index, "Test GPU", 16_000, memory_used, 0.0, processes)


class Inventory:
    """A machine whose GPUs a test can change between requests."""

    def __init__(self, *gpus: GpuInfo) -> None:
        self.gpus = list(gpus)
        self.calls = 0

    def __call__(self) -> list[GpuInfo]:
        self.calls += 1
        return list(self.gpus)


def allocator(*gpus: GpuInfo, **options) -> GpuAllocator:
    return GpuAllocator(Inventory(*gpus), **options)


# -- allocation and release ------------------------------------------------------------------------


def test_cpu_trial_gets_no_gpus_without_asking_nvidia_smi() -> None:
    inventory = Inventory()
    assert GpuAllocator(inventory).allocate("t1", 0) == ()
    assert inventory.calls == 0


def test_trial_gets_a_free_gpu() -> None:
    assert allocator(gpu(0), gpu(1)).allocate("t1", 1) in {(0,), (1,)}


def test_trial_gets_as_many_gpus_as_it_asks() -> None:
    assert allocator(gpu(0), gpu(1), gpu(2)).allocate("t1", 2) in {(0, 1), (0, 2), (1, 2)}


def test_one_trial_per_gpu_by_default_then_wait() -> None:
    alloc = allocator(gpu(0), gpu(1))
    assert {alloc.allocate("t1", 1), alloc.allocate("t2", 1)} == {(0,), (1,)}
    assert alloc.allocate("t3", 1) is None


def test_held_gpus_of_an_adopted_trial_count_against_new_trials() -> None:
    alloc = allocator(gpu(0), gpu(1))
    alloc.hold("adopted", (1,))
    assert alloc.held("adopted") == (1,)
    assert alloc.allocate("t1", 1) == (0,)
    assert alloc.allocate("t2", 1) is None


def test_release_frees_the_gpu_for_the_next_trial() -> None:
    alloc = allocator(gpu(0))
    assert alloc.allocate("t1", 1) == (0,)
    assert alloc.allocate("t2", 1) is None
    alloc.release("t1")
    assert alloc.allocate("t2", 1) == (0,)


def test_release_of_an_unknown_trial_does_nothing() -> None:
    alloc = allocator(gpu(0))
    alloc.allocate("t1", 1)
    alloc.release("never-started")
    assert alloc.held("t1") == (0,)


def test_asking_again_for_the_same_trial_returns_its_gpus() -> None:
    alloc = allocator(gpu(0), gpu(1))
    first = alloc.allocate("t1", 1)
    assert alloc.allocate("t1", 1) == first
    assert alloc.load() == {first[0]: 1}


def test_max_trials_per_gpu_packs_trials() -> None:
    alloc = allocator(gpu(0), max_trials_per_gpu=3)
    assert [alloc.allocate(f"t{i}", 1) for i in range(3)] == [(0,), (0,), (0,)]
    assert alloc.allocate("t3", 1) is None


def test_least_loaded_gpus_are_chosen() -> None:
    alloc = allocator(gpu(0), gpu(1), gpu(2), max_trials_per_gpu=2)
    alloc.allocate("a", 1)
    alloc.allocate("b", 1)
    third = alloc.allocate("c", 1)
    assert alloc.load()[third[0]] == 1  # it went to the GPU nobody used yet
    assert sorted(alloc.load().values()) == [1, 1, 1]


def test_gpu_indices_limit_the_gpus_used() -> None:
    alloc = allocator(gpu(0), gpu(1), gpu(2), gpu_indices=(2,))
    assert alloc.allocate("t1", 1) == (2,)
    assert alloc.allocate("t2", 1) is None


def test_multi_gpu_trial_waits_until_enough_are_free() -> None:
    alloc = allocator(gpu(0), gpu(1))
    alloc.allocate("small", 1)
    assert alloc.allocate("big", 2) is None
    alloc.release("small")
    assert alloc.allocate("big", 2) == (0, 1)


def test_concurrent_requests_never_share_a_gpu() -> None:
    alloc = allocator(*(gpu(i) for i in range(4)))
    results: list[tuple[int, ...] | None] = []
    lock = threading.Lock()

    def ask(trial: str) -> None:
        got = alloc.allocate(trial, 1)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=ask, args=(f"t{i}",)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    granted = [r for r in results if r is not None]
    assert sorted(granted) == [(0,), (1,), (2,), (3,)]


# -- busy GPUs and useActiveGpu ---------------------------------------------------------------------


def test_gpu_with_another_process_is_skipped() -> None:
    alloc = allocator(gpu(0, processes=1), gpu(1))
    assert alloc.allocate("t1", 1) == (1,)
    assert alloc.allocate("t2", 1) is None


def test_use_active_gpu_allows_a_gpu_with_another_process() -> None:
    alloc = allocator(gpu(0, processes=2), use_active_gpu=True)
    assert alloc.allocate("t1", 1) == (0,)


def test_our_own_trials_processes_do_not_make_a_gpu_busy() -> None:
    inventory = Inventory(gpu(0))
    alloc = GpuAllocator(inventory, max_trials_per_gpu=2)
    assert alloc.allocate("t1", 1) == (0,)
    inventory.gpus = [gpu(0, processes=1)]  # t1 has started using it
    assert alloc.allocate("t2", 1) == (0,)


def test_a_gpu_freed_by_another_user_is_seen_at_the_next_request() -> None:
    inventory = Inventory(gpu(0, processes=1))
    alloc = GpuAllocator(inventory)
    assert alloc.allocate("t1", 1) is None
    inventory.gpus = [gpu(0)]
    assert alloc.allocate("t1", 1) == (0,)


# -- why a trial waits -------------------------------------------------------------------------------


def test_why_waiting_names_full_and_busy_gpus() -> None:
    alloc = allocator(gpu(0), gpu(1, processes=1), max_trials_per_gpu=4)
    for i in range(4):
        alloc.allocate(f"t{i}", 1)
    assert alloc.why_waiting(1) == (
        "needs 1 GPU: GPU 0 is full (4/4 trials), GPU 1 is busy with another process; useActiveGpu: false"
    )


def test_why_waiting_for_more_gpus_than_are_free() -> None:
    alloc = allocator(gpu(0), gpu(1))
    alloc.allocate("t1", 1)
    held = alloc.held("t1")[0]
    assert alloc.why_waiting(2) == (
        f"needs 2 GPUs: GPU 0 is {'full (1/1 trials)' if held == 0 else 'free'}, "
        f"GPU 1 is {'full (1/1 trials)' if held == 1 else 'free'}"
    )


def test_why_waiting_without_any_gpu() -> None:
    assert allocator().why_waiting(1) == "needs 1 GPU: no GPU found (nvidia-smi is missing or failed)"


def test_why_waiting_only_lists_gpus_in_gpu_indices() -> None:
    alloc = allocator(gpu(0), gpu(1), gpu_indices=(1,))
    alloc.allocate("t1", 1)
    assert alloc.why_waiting(1) == "needs 1 GPU: GPU 1 is full (1/1 trials)"


# -- requests that can never be met ------------------------------------------------------------------


def test_validate_accepts_what_the_machine_can_do() -> None:
    assert allocator(gpu(0), gpu(1)).validate(2) is None
    assert allocator().validate(0) is None


def test_validate_refuses_gpus_on_a_machine_without_any() -> None:
    message = allocator().validate(1)
    assert message == (
        "trialGpuNumber is 1 but no GPU was found (nvidia-smi is missing or failed); "
        "set trialGpuNumber: 0 to run trials on the CPU"
    )


def test_validate_refuses_more_gpus_than_exist() -> None:
    assert allocator(gpu(0)).validate(2) == "trialGpuNumber is 2 but only 1 GPU can be used"


def test_validate_refuses_gpu_indices_naming_a_missing_gpu() -> None:
    message = allocator(gpu(0), gpu(1), gpu_indices=(1, 3)).validate(1)
    assert message == "trainingService.gpuIndices names GPU 3, but this machine has GPU 0,1"


def test_validate_counts_only_gpus_in_gpu_indices() -> None:
    message = allocator(gpu(0), gpu(1), gpu(2), gpu_indices=(0, 2)).validate(3)
    assert message == "trialGpuNumber is 3 but only 2 GPUs can be used (gpuIndices: 0,2)"


def test_busy_gpus_are_a_wait_not_a_refusal() -> None:
    assert allocator(gpu(0, processes=5)).validate(1) is None


def test_max_trials_per_gpu_below_one_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_trials_per_gpu must be >= 1"):
        GpuAllocator(Inventory(), max_trials_per_gpu=0)


# -- reading nvidia-smi ---------------------------------------------------------------------------


def test_nvidia_smi_output_is_parsed_with_processes_per_gpu() -> None:
    gpus = "0, GPU-aaa, NVIDIA H100 80GB HBM3, 81559, 1024, 37\n1, GPU-bbb, NVIDIA H100 80GB HBM3, 81559, 0, [N/A]\n"
    apps = "GPU-aaa, 4242\nGPU-aaa, 4243\n"
    assert parse_nvidia_smi(gpus, apps) == [
        GpuInfo(0, "NVIDIA H100 80GB HBM3", 81559, 1024, 37.0, 2),
        GpuInfo(1, "NVIDIA H100 80GB HBM3", 81559, 0, 0.0, 0),
    ]


def test_nvidia_smi_garbage_gives_no_gpus() -> None:
    assert parse_nvidia_smi("No devices were found\n", "") == []


def test_detect_gpus_without_nvidia_smi_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert detect_gpus() == []


@pytest.mark.gpu
@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="nvidia-smi is not installed")
def test_detect_gpus_reads_the_real_nvidia_smi() -> None:
    gpus = detect_gpus()
    assert gpus, "nvidia-smi is installed but reported no GPU"
    assert [g.index for g in gpus] == sorted({g.index for g in gpus})
    for info in gpus:
        assert info.name and info.memory_total_mib > 0
        assert 0 <= info.memory_used_mib <= info.memory_total_mib
        assert 0.0 <= info.utilization <= 100.0 and info.processes >= 0
