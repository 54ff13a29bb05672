"""``nni.nas.pytorch.utils``: the meters NNI's training scripts print, and ``to_device``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch


class AverageMeter:
    """A running average of one quantity: ``update(value, n)`` adds ``n`` samples of ``value``."""

    def __init__(self, name: str, fmt: str = ":f") -> None:
        self.name = name
        self.fmt = fmt
        self.reset()

    def reset(self) -> None:
        self.val = 0.0
        self.avg = 0.0
        self.sum = 0.0
        self.count = 0

    def update(self, val: float, n: int = 1) -> None:
        if not isinstance(val, (int, float)):
            val = float(val)  # a 0-dim tensor or a numpy number
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count

    def __str__(self) -> str:
        return ("{name} {val" + self.fmt + "} ({avg" + self.fmt + "})").format(**self.__dict__)

    def summary(self) -> str:
        return ("{name}: {avg" + self.fmt + "}").format(**self.__dict__)


class AverageMeterGroup:
    """One ``AverageMeter`` per metric name, created on first ``update(dict)``; read a meter as
    ``group.loss`` or ``group["loss"]``."""

    def __init__(self) -> None:
        self.meters: OrderedDict[str, AverageMeter] = OrderedDict()

    def update(self, data: Mapping[str, float]) -> None:
        for name, value in data.items():
            if name not in self.meters:
                self.meters[name] = AverageMeter(name, ":4f")
            self.meters[name].update(value)

    def __getattr__(self, name: str) -> AverageMeter:
        meters = self.__dict__.get("meters", {})
        if name in meters:
            return meters[name]
        raise AttributeError(f"AverageMeterGroup has no meter {name!r}; it has {', '.join(meters) or 'none'}")

    def __getitem__(self, name: str) -> AverageMeter:
        return self.meters[name]

    def __str__(self) -> str:
        return "  ".join(str(meter) for meter in self.meters.values())

    def summary(self) -> str:
        return "  ".join(meter.summary() for meter in self.meters.values())


def to_device(obj: Any, device: torch.device | str) -> Any:
    """``obj`` with every tensor in it (also inside lists, tuples and dicts) moved to ``device``."""
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, tuple):
        return tuple(to_device(item, device) for item in obj)
    if isinstance(obj, list):
        return [to_device(item, device) for item in obj]
    if isinstance(obj, Mapping):
        return {key: to_device(value, device) for key, value in obj.items()}
    if isinstance(obj, (int, float, str)):
        return obj
    raise ValueError(f"to_device: cannot move a {type(obj).__name__} to {device}")


def _reset_global_mutable_counting() -> None:
    """Kept for NNI scripts that call it between two models. nasctl numbers automatic keys
    (``LayerChoice1``, ...) per model already, so there is no process-wide count to reset."""
