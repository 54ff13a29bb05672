"""Data-parallel one-shot search across the processes that ``torchrun`` starts.

A trainer built with ``distributed=True`` runs once per process: ``torchrun
--nproc_per_node=N script.py`` starts N copies of the script and tells each its place in
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (and where rank 0 listens, ``MASTER_ADDR`` and
``MASTER_PORT``). On GPUs each process drives ``cuda:LOCAL_RANK`` over NCCL; on CPUs the
processes talk over gloo, which is the way to try a distributed search without GPUs.

What this module holds is the plumbing every such trainer needs: joining the process group,
wrapping a network in ``DistributedDataParallel`` (whose backward pass averages the weights'
gradients), averaging by hand the gradients of parameters that live outside the networks (the
architecture weights), and handing out rank 0's values of tensors DDP does not keep equal.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

#: What torchrun sets for every process it starts.
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Processes:
    """This process's place among the search's processes."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device
    owns_group: bool  # this module started the process group, so it ends it

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the search log, the checkpoint and the progress."""
        return self.rank == 0


def join(owner: str, device: torch.device) -> Processes:
    """Join the process group of the processes torchrun started (starting it if the script has not).

    ``device`` is the trainer's resolved device: a CUDA one becomes ``cuda:LOCAL_RANK``.
    """
    missing = [name for name in TORCHRUN_ENV if name not in os.environ]
    if missing:
        raise ValueError(
            f"{owner}: distributed=True runs one process per device, started by torchrun ({', '.join(missing)} "
            "not set); start the script with `torchrun --nproc_per_node=N script.py` (N processes on this "
            "machine: GPUs over NCCL, or CPU processes over gloo), or pass distributed=False"
        )
    try:
        rank, world_size, local_rank = (int(os.environ[name]) for name in TORCHRUN_ENV)
    except ValueError:
        values = ", ".join(f"{name}={os.environ[name]!r}" for name in TORCHRUN_ENV)
        raise ValueError(f"{owner}: torchrun's variables must be whole numbers, got {values}") from None
    if device.type == "cuda":
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", local_rank + 1))
        count = torch.cuda.device_count()
        if count < local_processes:
            raise ValueError(
                f"{owner}: {local_processes} processes on this machine but {count} GPU(s); one process per GPU: "
                f"start at most `torchrun --nproc_per_node={count}`"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    else:
        backend = str(dist.get_backend())
    return Processes(rank, world_size, local_rank, backend, device, owns_group)


def leave(processes: Processes) -> None:
    """End the process group when :func:`join` started it."""
    if processes.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, processes: Processes) -> nn.Module:
    """``module`` in ``DistributedDataParallel``: its weights start as rank 0's, its gradients are averaged.

    Unused parameters are looked for on every step: a discrete architecture leaves the other
    candidates idle, and which ones changes as the architecture does.
    """
    device_ids = [processes.device.index] if processes.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True)


def broadcast(tensors: Iterable[torch.Tensor]) -> None:
    """Give every process rank 0's values (architecture weights, BatchNorm statistics)."""
    with torch.no_grad():
        for tensor in tensors:
            dist.broadcast(tensor.data, src=0)


def average_gradients(parameters: Sequence[torch.Tensor], processes: Processes) -> None:
    """Average the gradients of ``parameters`` across the processes (one all-reduce for all of them)."""
    if not parameters:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= processes.world_size
    offset = 0
    for parameter in parameters:
        n = parameter.numel()
        parameter.grad = flat[offset : offset + n].view_as(parameter).clone()
        offset += n
