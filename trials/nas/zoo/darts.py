"""The DARTS search space (Liu et al. 2019): ``DartsCell`` and a CIFAR-style network of them.

A cell takes the outputs of the two previous cells, brings both to ``channels``, and builds
``n_nodes`` intermediate nodes. Node ``d`` (``d = 2 .. n_nodes + 1``) has one ``LayerChoice``
per earlier node ``i`` (key ``<prefix>_n<d>_p<i>``, the operation on edge i -> d) and one
``InputChoice`` (key ``<prefix>_n<d>_switch``, ``n_chosen=2``) that keeps two of those edges.
The cell's output concatenates every intermediate node (``n_nodes * channels`` channels).

``prefix`` is ``normal`` or ``reduce`` as in NNI, so all normal cells share one architecture
and so do all reduction cells; pass ``key_prefix`` (or ``shared_keys=False`` to the network)
to give each cell its own.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from trials.nas.mutables import InputChoice, LayerChoice
from trials.nas.zoo.ops import DilConv, FactorizedReduce, PoolBN, ReLUConvBN, SepConv

#: The candidate operations of every edge, in NNI's order.
DARTS_OPS = ("maxpool", "avgpool", "skipconnect", "sepconv3x3", "sepconv5x5", "dilconv3x3", "dilconv5x5")


def darts_op(name: str, channels: int, stride: int, affine: bool) -> nn.Module:
    """One DARTS candidate from ``channels`` to ``channels``; ``stride`` 2 on a reduction edge."""
    c = channels
    if name == "maxpool":
        return PoolBN("max", c, 3, stride, 1, affine)
    if name == "avgpool":
        return PoolBN("avg", c, 3, stride, 1, affine)
    if name == "skipconnect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine)
    if name == "sepconv3x3":
        return SepConv(c, c, 3, stride, 1, affine)
    if name == "sepconv5x5":
        return SepConv(c, c, 5, stride, 2, affine)
    if name == "dilconv3x3":
        return DilConv(c, c, 3, stride, 2, 2, affine)
    if name == "dilconv5x5":
        return DilConv(c, c, 5, stride, 4, 2, affine)
    raise ValueError(f"unknown DARTS operation {name!r}; allowed: {', '.join(DARTS_OPS)}")


class DartsNode(nn.Module):
    """One intermediate node: an operation on each incoming edge, then two of the edges kept."""

    def __init__(self, prefix: str, index: int, channels: int, reduction: bool, affine: bool) -> None:
        super().__init__()
        self.edges = nn.ModuleList()
        for source in range(index):
            stride = 2 if reduction and source < 2 else 1
            ops = OrderedDict((name, darts_op(name, channels, stride, affine)) for name in DARTS_OPS)
            self.edges.append(LayerChoice(ops, key=f"{prefix}_n{index}_p{source}"))
        self.switch = InputChoice(
            choose_from=[edge.key for edge in self.edges], n_chosen=2, key=f"{prefix}_n{index}_switch"
        )

    def forward(self, states: list[torch.Tensor]) -> torch.Tensor:
        # edges the switch drops are not computed (a sampled or final architecture runs two)
        kept = set(self.switch.active) if self.switch.mask is not None else set(range(len(self.edges)))
        return self.switch(
            [
                edge(state) if i in kept else None
                for i, (edge, state) in enumerate(zip(self.edges, states, strict=True))
            ]
        )


class DartsCell(nn.Module):
    """A DARTS cell (see the module docstring); NNI's arguments plus ``affine`` and ``key_prefix``.

    ``affine`` turns on the BatchNorm scales; DARTS searches without them (so an operation
    cannot rescale itself against its architecture weight) and retrains with them.
    """

    def __init__(
        self,
        n_nodes: int,
        channels_pp: int,
        channels_p: int,
        channels: int,
        reduction_p: bool,
        reduction: bool,
        affine: bool = False,
        key_prefix: str | None = None,
    ) -> None:
        super().__init__()
        if n_nodes < 1:
            raise ValueError(f"DartsCell: n_nodes must be at least 1, got {n_nodes}")
        self.reduction = reduction
        self.n_nodes = n_nodes
        if reduction_p:
            self.preproc0: nn.Module = FactorizedReduce(channels_pp, channels, affine)
        else:
            self.preproc0 = ReLUConvBN(channels_pp, channels, 1, affine=affine)
        self.preproc1 = ReLUConvBN(channels_p, channels, 1, affine=affine)
        prefix = key_prefix if key_prefix is not None else ("reduce" if reduction else "normal")
        self.nodes = nn.ModuleList(
            DartsNode(prefix, d, channels, reduction, affine) for d in range(2, n_nodes + 2)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preproc0(s0), self.preproc1(s1)]
        for node in self.nodes:
            states.append(node(states))
        return torch.cat(states[2:], dim=1)


class DartsNetwork(nn.Module):
    """The DARTS search network: a stem, ``n_layers`` cells (reduction cells at 1/3 and 2/3 of
    the depth, where the channels double), global average pooling and a linear classifier.

    The CIFAR-10 search setting of the paper is ``DartsNetwork(3, 16, 10, n_layers=8)``; the
    digits examples use ``DartsNetwork(1, 8, 10, n_layers=3, n_nodes=3)``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 16,
        n_classes: int = 10,
        n_layers: int = 8,
        n_nodes: int = 4,
        stem_multiplier: int = 3,
        shared_keys: bool = True,
        affine: bool = False,
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        stem_channels = stem_multiplier * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False), nn.BatchNorm2d(stem_channels)
        )
        channels_pp, channels_p, current = stem_channels, stem_channels, channels
        reduction_p = False
        self.cells = nn.ModuleList()
        reductions = {n_layers // 3, 2 * n_layers // 3}
        for i in range(n_layers):
            reduction = i in reductions
            if reduction:
                current *= 2
            prefix = None if shared_keys else f"cell{i}_{'reduce' if reduction else 'normal'}"
            cell = DartsCell(
                n_nodes, channels_pp, channels_p, current, reduction_p, reduction, affine, prefix
            )
            self.cells.append(cell)
            channels_pp, channels_p = channels_p, current * n_nodes
            reduction_p = reduction
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout_rate)
        self.classifier = nn.Linear(channels_p, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.dropout(self.pool(s1).flatten(1)))
