"""Activation memory of a ProxylessNAS step against a DARTS step on the same super-net.

ProxylessNAS' point is memory: a weight step runs one sampled path per choice and an
architecture step two (the paper's two-path variant), where DARTS runs and keeps every
candidate. Measured here on ``ProxylessNASNetwork`` (two stages of 3 blocks, 6 candidates per
block plus ``zero`` where residual), batch 64, 3x32x32 inputs:

* everywhere: the bytes autograd saves for the backward pass during one step's forward
  (``saved_tensors_hooks``), the activation memory that grows with the number of paths
  (ProxylessNAS' mean over 8 steps, each with its own sampled paths);
* on CUDA also: the peak allocated memory of one whole step (forward, backward, update), from
  ``torch.cuda.max_memory_allocated`` after a reset, weights and optimizer state included.

The baseline is DARTS' step (architecture mixture on, loss backward) in the same run; each
figure is printed as a ratio to it. Usage: ``python bench/oneshot_memory.py [--device cuda]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trials.nas.oneshot import DartsTrainer, LatencyTable, ProxylessTrainer  # noqa: E402
from trials.nas.oneshot.choices import apply_architecture  # noqa: E402
from trials.nas.zoo import ProxylessNASNetwork  # noqa: E402


def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return ProxylessNASNetwork(
        n_classes=10,
        in_channels=3,
        stage_widths=(16, 32),
        stage_depths=(3, 3),
        stage_strides=(2, 2),
        stem_channels=16,
        stem_stride=1,
        first_channels=16,
        last_channels=128,
    )


def saved_bytes(run: Callable[[], Any]) -> int:
    """Bytes autograd keeps for backward while ``run()`` builds its graph."""
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        run()
    return total


def mean_saved_bytes(run: Callable[[], Any], samples: int = 8) -> int:
    """``saved_bytes`` averaged over ``samples`` runs: each samples its own paths."""
    return sum(saved_bytes(run) for _ in range(samples)) // samples


def peak_bytes(run: Callable[[], Any], device: torch.device) -> int:
    run()  # once untimed: allocator warm, optimizer state created
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    options = parser.parse_args()
    device = torch.device(options.device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(options.batch_size, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, 10, (options.batch_size,), generator=g).to(device)
    batches = [(x, y)]

    def build(kind: str) -> Any:
        model = network()
        common: dict[str, Any] = {"train_data": batches, "valid_data": batches, "num_epochs": 1}
        common |= {"progress": False, "device": device, "seed": 0}
        if kind == "darts":
            return DartsTrainer(model, **common)
        groups = ProxylessTrainer(model, **common).groups
        table = LatencyTable({g.key: {name: 1.0 for name in g.candidates} for g in groups})
        return ProxylessTrainer(model, latency_table=table, **common)

    darts, proxyless = build("darts"), build("proxyless")

    def darts_forward() -> torch.Tensor:
        darts.apply_mixture()
        return darts.forward_loss(x, y)[1]

    def weight_forward() -> torch.Tensor:
        apply_architecture(proxyless.groups, proxyless.sample_paths(), device)
        return proxyless.forward_loss(x, y)[1]

    def darts_step() -> None:
        loss = darts_forward()
        darts.optimize(loss, darts.optimizer)

    def weight_step() -> None:
        proxyless.optimize(weight_forward(), proxyless.optimizer)

    for step in (darts_step, weight_step):  # whole steps run everywhere; CUDA measures their peak below
        step()
    rows = [
        ("DARTS step (every candidate, mixture)", saved_bytes(darts_forward)),
        ("ProxylessNAS weight step (1 path)", mean_saved_bytes(weight_forward)),
        (
            "ProxylessNAS architecture step (2 paths)",
            mean_saved_bytes(lambda: proxyless.architecture_step((x, y))),
        ),
    ]
    base = rows[0][1]
    print(f"saved for backward, batch {options.batch_size}, 3x32x32, on {device}:")
    for name, value in rows:
        print(f"  {name:44s} {value / 2**20:9.1f} MiB   {value / base:5.2f} x DARTS")
    if device.type == "cuda":
        peaks = [
            ("DARTS step", peak_bytes(darts_step, device)),
            ("ProxylessNAS weight step", peak_bytes(weight_step, device)),
            (
                "ProxylessNAS architecture step",
                peak_bytes(lambda: proxyless.architecture_step((x, y)), device),
            ),
        ]
        print(f"peak CUDA memory of one whole step ({torch.cuda.get_device_name(device)}):")
        for name, value in peaks:
            print(f"  {name:44s} {value / 2**20:9.1f} MiB   {value / peaks[0][1]:5.2f} x DARTS")


if __name__ == "__main__":
    main()
