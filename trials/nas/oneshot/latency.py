"""Latency tables: what each candidate of each layer choice costs on the target hardware.

ProxylessNAS (Cai et al. 2019) makes latency differentiable by modelling the network's latency
as a sum over its layers: the expected latency of a choice is ``sum_i p_i * lat_i`` over its
candidates, so the search needs one number per (choice key, candidate). A table holds them plus
a ``fixed`` part for everything that is not a choice (stem, head, ...), in ``unit`` (``ms``
for measured tables). Tables are plain JSON so that one measured on a phone can be edited or
written by hand::

    {"device": "cpu", "unit": "ms", "fixed": 0.8, "candidates": {"conv1": {"k3": 0.2, "k5": 0.4}}}

Three ways to get one: :meth:`LatencyTable.profile` times every candidate in isolation at the
input it sees in the network; :meth:`LatencyTable.from_cost` uses a proxy (multiply-adds,
parameters or any function of the module and its input); or the constructor with a dict.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trials.nas.oneshot.choices import ChoiceGroup, apply_architecture, connect_all
from trials.nas.oneshot.cost import measure

#: (module, positional args, keyword args) -> cost of running the module on them.
CostFn = Callable[[nn.Module, tuple[Any, ...], dict[str, Any]], float]
_Inputs = list[tuple[tuple[Any, ...], dict[str, Any]]]


@dataclass(frozen=True)
class LatencyTable:
    """Cost per (choice key, candidate name) plus a ``fixed`` cost of the rest of the network."""

    candidates: Mapping[str, Mapping[str, float]]
    fixed: float = 0.0
    device: str = "custom"
    unit: str = "ms"

    def __post_init__(self) -> None:
        if not isinstance(self.candidates, Mapping):
            raise ValueError(
                f"LatencyTable: candidates must be a dict key -> {{candidate: cost}}, got {type(self.candidates).__name__}"
            )
        clean: dict[str, dict[str, float]] = {}
        for key, row in self.candidates.items():
            if not isinstance(row, Mapping):
                raise ValueError(
                    f"LatencyTable: choice {key!r} must map candidate names to costs, got {type(row).__name__}"
                )
            clean[str(key)] = {}
            for name, value in row.items():
                clean[str(key)][str(name)] = _cost(f"choice {key!r} candidate {name!r}", value)
        object.__setattr__(self, "candidates", clean)
        object.__setattr__(self, "fixed", _cost("fixed", self.fixed))

    # -- reading ----------------------------------------------------------------------------
    def check(self, groups: Sequence[ChoiceGroup]) -> None:
        """Raise a one-line ValueError naming the first choice key or candidate the table lacks."""
        for group in groups:
            if not group.is_layer:
                continue
            row = self.candidates.get(group.key)
            if row is None:
                known = ", ".join(repr(k) for k in self.candidates) or "none"
                raise ValueError(f"latency table has no choice {group.key!r} (it has: {known})")
            for name in group.candidates:
                if name not in row:
                    raise ValueError(
                        f"latency table lacks candidate {name!r} of choice {group.key!r} "
                        f"(it has: {', '.join(repr(n) for n in row) or 'none'})"
                    )

    def costs(self, group: ChoiceGroup) -> list[float]:
        """The group's candidates' costs, in candidate order (after :meth:`check`)."""
        row = self.candidates[group.key]
        return [row[name] for name in group.candidates]

    def architecture_cost(
        self, groups: Sequence[ChoiceGroup], architecture: Mapping[str, Sequence[int]]
    ) -> float:
        """``fixed`` plus the chosen candidate of every layer choice."""
        self.check(groups)
        total = self.fixed
        for group in groups:
            if group.is_layer:
                costs = self.costs(group)
                total += sum(costs[i] for i in architecture[group.key])
        return total

    def scaled(self, factor: float, unit: str) -> LatencyTable:
        """The same table in another unit (e.g. ``scaled(1000, "us")`` from ms)."""
        return LatencyTable(
            {k: {n: v * factor for n, v in row.items()} for k, row in self.candidates.items()},
            fixed=self.fixed * factor,
            device=self.device,
            unit=unit,
        )

    # -- JSON -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "unit": self.unit,
            "fixed": self.fixed,
            "candidates": {k: dict(row) for k, row in self.candidates.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LatencyTable:
        if not isinstance(data, Mapping) or "candidates" not in data:
            raise ValueError('a latency table needs a "candidates" object: {key: {candidate: cost}}')
        return cls(
            data["candidates"],
            fixed=data.get("fixed", 0.0),
            device=str(data.get("device", "custom")),
            unit=str(data.get("unit", "ms")),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not a JSON latency table ({err})") from None
        return cls.from_json(data)

    # -- building ---------------------------------------------------------------------------
    @classmethod
    @torch.no_grad()
    def profile(
        cls,
        model: nn.Module,
        groups: Sequence[ChoiceGroup],
        example_input: Any,
        device: str | torch.device = "cpu",
        warmup: int = 3,
        repeats: int = 10,
    ) -> LatencyTable:
        """Time every candidate alone, in eval mode, at the input it gets in the network.

        The inputs are captured in one forward pass with every candidate on; each candidate's
        latency is the median of ``repeats`` timed runs after ``warmup`` untimed ones (CUDA is
        synchronised around each). A key shared by several modules costs the sum over them.
        ``fixed`` is the whole network with the first candidate of every choice, minus those
        candidates' latencies (at least 0). The model is moved to ``device``.
        """
        if warmup < 0 or repeats < 1:
            raise ValueError(
                f"LatencyTable.profile: need warmup >= 0 and repeats >= 1, got {warmup} and {repeats}"
            )
        device = torch.device(device)
        model.to(device)
        inputs = _capture(model, groups, _to(example_input, device), device)

        table: dict[str, dict[str, float]] = {}
        was_training = model.training
        model.eval()  # BatchNorm on running statistics, dropout off: inference, as deployed
        try:
            for group in _layer_groups(groups):
                table[group.key] = {
                    name: sum(
                        time_ms(partial(module.candidates[index], *args, **kwargs), device, warmup, repeats)
                        for module, calls in zip(group.modules, inputs[group.key], strict=True)
                        for args, kwargs in calls
                    )
                    for index, name in enumerate(group.candidates)
                }
        finally:
            model.train(was_training)
        apply_architecture(groups, {g.key: [0] for g in groups}, device)
        whole = measure_latency(model, example_input, device, warmup, repeats)
        fixed = max(0.0, whole - sum(table[g.key][g.candidates[0]] for g in _layer_groups(groups)))
        return cls(table, fixed=fixed, device=str(device), unit="ms")

    @classmethod
    @torch.no_grad()
    def from_cost(
        cls,
        model: nn.Module,
        groups: Sequence[ChoiceGroup],
        example_input: torch.Tensor,
        cost: str | CostFn = "flops",
    ) -> LatencyTable:
        """A proxy table: ``flops`` (multiply-adds per sample, in millions: ``MFLOPs``),
        ``params`` (in millions: ``Mparams``), or ``cost(module, args, kwargs)`` per candidate
        (unit ``cost``). ``fixed`` is the network's cost under the first candidates minus theirs."""
        if not callable(cost) and cost not in ("flops", "params"):
            raise ValueError(
                f"LatencyTable.from_cost: cost must be 'flops', 'params' or a function, got {cost!r}"
            )
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        inputs = _capture(model, groups, _to(example_input, device), device)

        def one(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
            if callable(cost):
                return float(cost(module, args, kwargs))
            measured = measure(_Bound(module, args, kwargs, device), [], {}, torch.zeros(1))
            return (measured.flops if cost == "flops" else measured.params) / 1e6

        table: dict[str, dict[str, float]] = {}
        for group in _layer_groups(groups):
            table[group.key] = {
                name: sum(
                    one(module.candidates[index], args, kwargs)  # type: ignore[attr-defined]
                    for module, calls in zip(group.modules, inputs[group.key], strict=True)
                    for args, kwargs in calls
                )
                for index, name in enumerate(group.candidates)
            }
        unit = "cost" if callable(cost) else {"flops": "MFLOPs", "params": "Mparams"}[cost]
        fixed = 0.0
        if not callable(cost):
            first = {g.key: [0] for g in groups}
            whole = measure(model, groups, first, example_input)
            value = (whole.flops if cost == "flops" else whole.params) / 1e6
            fixed = max(0.0, value - sum(table[g.key][g.candidates[0]] for g in _layer_groups(groups)))
        return cls(table, fixed=fixed, device=str(device), unit=unit)


def time_ms(fn: Callable[[], Any], device: torch.device, warmup: int = 3, repeats: int = 10) -> float:
    """Median milliseconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones; CUDA is
    synchronised around each call, so the time is the kernels', not the launch's."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        started = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - started) * 1000.0)
    return float(statistics.median(times))


@torch.no_grad()
def measure_latency(
    model: nn.Module,
    example_input: Any,
    device: str | torch.device = "cpu",
    warmup: int = 3,
    repeats: int = 10,
) -> float:
    """Milliseconds of one forward pass of the whole ``model`` (in eval mode, on ``device``,
    median as in :func:`time_ms`); its training mode is restored afterwards."""
    device = torch.device(device)
    model.to(device)
    example = _to(example_input, device)
    was_training = model.training
    model.eval()
    try:
        return time_ms(lambda: model(example), device, warmup, repeats)
    finally:
        model.train(was_training)


class _Bound(nn.Module):
    """A candidate with its captured inputs, so that :func:`measure` can run it alone."""

    def __init__(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], device: torch.device
    ) -> None:
        super().__init__()
        self.inner = module
        self.anchor = nn.Parameter(
            torch.empty(0, device=device)
        )  # measure() reads the device from a parameter
        self.call = (args, kwargs)

    def forward(self, _: torch.Tensor) -> Any:
        args, kwargs = self.call
        return self.inner(*args, **kwargs)


def _layer_groups(groups: Sequence[ChoiceGroup]) -> list[ChoiceGroup]:
    return [g for g in groups if g.is_layer]


def _capture(
    model: nn.Module, groups: Sequence[ChoiceGroup], example: Any, device: torch.device
) -> dict[str, list[_Inputs]]:
    """Per key, per module of the group: the (args, kwargs) of every call in one forward pass."""
    found: dict[str, list[_Inputs]] = {g.key: [[] for _ in g.modules] for g in _layer_groups(groups)}
    handles = []
    for group in _layer_groups(groups):
        for slot, module in zip(found[group.key], group.modules, strict=True):

            def hook(
                _: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], slot: _Inputs = slot
            ) -> None:
                slot.append((_detach(args), _detach(kwargs)))

            handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
    was_training = model.training
    model.eval()
    try:
        connect_all(groups, device)
        model(example)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    for group in _layer_groups(groups):
        if not any(found[group.key]):
            raise ValueError(
                f"LayerChoice {group.key!r} did not run in the example forward pass; it cannot be profiled"
            )
    return found


def _detach(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_detach(v) for v in value)
    if isinstance(value, dict):
        return {k: _detach(v) for k, v in value.items()}
    return value


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(_to(v, device) for v in value)
    return value


def _cost(what: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"latency table: {what} must be a number, got {value!r}") from None
    if not number >= 0.0 or number == float("inf"):
        raise ValueError(f"latency table: {what} must be a finite number >= 0, got {value!r}")
    return number
