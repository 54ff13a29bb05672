"""The size of one architecture of a super-net, for search constraints (SPOS' limits).

:func:`measure` runs one forward pass with the architecture applied and counts what it
really uses: the parameters of every module that ran (so a DARTS edge that its node drops
costs nothing, and neither do the unchosen candidates) and the multiply-adds of convolutions
and linear layers, per input sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trials.nas.oneshot.choices import ChoiceGroup, apply_architecture


@dataclass(frozen=True)
class Cost:
    params: int
    flops: int  # multiply-adds per sample


@torch.no_grad()
def measure(
    model: nn.Module,
    groups: Sequence[ChoiceGroup],
    architecture: Mapping[str, Sequence[int]],
    example: torch.Tensor,
) -> Cost:
    """Parameters and multiply-adds of ``architecture``; the choices are left set to it."""
    flops = 0
    ran: set[int] = set()

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        nonlocal flops
        ran.add(id(module))
        if not isinstance(output, torch.Tensor):
            return
        per_sample = output.numel() // max(output.shape[0], 1)
        if isinstance(module, nn.modules.conv._ConvNd):
            kernel = 1
            for size in module.kernel_size:
                kernel *= size
            flops += per_sample * (module.in_channels // module.groups) * kernel
        elif isinstance(module, nn.Linear):
            flops += per_sample * module.in_features

    modules = list(model.modules())
    handles = [m.register_forward_hook(hook) for m in modules]
    was_training = model.training
    try:
        device = next(iter(model.parameters())).device
        apply_architecture(groups, architecture, device)
        model.eval()
        model(example.to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    seen: set[int] = set()
    params = 0
    for module in modules:
        if id(module) not in ran:
            continue
        for p in module.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                params += p.numel()
    return Cost(params, flops)
