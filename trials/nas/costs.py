"""What a model costs, in one call and without training: its parameters, its multiply-adds per
sample and its measured latency, as a dict ready to merge into a trial's final result.

A multi-objective search (``objectives: [{metric: accuracy}, {metric: latency_ms, mode:
minimize}]``) needs these numbers from every trial; :func:`model_costs` gives them under the
names the objectives use::

    costs = model_costs(model, (1, 3, 32, 32))
    trials.report_final_result({"accuracy": accuracy, **costs})

It counts with :func:`trials.nas.oneshot.cost.measure` (only the modules a forward pass runs,
so a super-net with a fixed architecture applied costs what that architecture uses) and times
with :func:`trials.nas.oneshot.latency.measure_latency` (warm-up, then the median of repeats).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from trials.nas.oneshot.cost import measure
from trials.nas.oneshot.latency import measure_latency


def model_costs(
    model: nn.Module,
    input_shape: Sequence[int],
    latency: bool = True,
    device: str | torch.device = "cpu",
    warmup: int = 3,
    repeats: int = 10,
) -> dict[str, float]:
    """``{"params", "flops", "latency_ms"}`` of ``model`` on a random input of ``input_shape``
    (batch first; ``flops`` are multiply-adds per sample). The model is moved to ``device``
    and left there, in the training mode it had; ``latency=False`` leaves out the timing."""
    shape = _shape(input_shape)
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup: must be a whole number >= 0, got {warmup!r}")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats: must be a whole number >= 1, got {repeats!r}")
    target = torch.device(device)
    model.to(target)
    example = torch.randn(shape, device=target)
    cost = measure(model, [], {}, example)
    out: dict[str, float] = {"params": cost.params, "flops": cost.flops}
    if latency:
        out["latency_ms"] = measure_latency(model, example, target, warmup, repeats)
    return out


def _shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    valid = (
        isinstance(input_shape, (tuple, list, torch.Size))
        and len(input_shape) > 0
        and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape)
    )
    if not valid:
        raise ValueError(
            f"input_shape: must be the shape of one input batch, batch first, e.g. (1, 3, 32, 32); got {input_shape!r}"
        )
    return tuple(input_shape)
