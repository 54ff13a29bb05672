"""The ENAS search spaces (Pham et al. 2018): the micro cell and the macro network.

**Micro** (``ENASMicroLayer``): each of ``num_nodes`` nodes is a ``MutableScope`` keyed
``<prefix>_node_<i>`` holding two branches, ``x`` and ``y``; a branch picks one earlier
output (``InputChoice`` key ``<prefix>_node_<i>_<x|y>_input``; the first two candidates are
the cell's inputs) and one operation for it (``LayerChoice`` key ``..._<x|y>_op``). A node is
the sum of its branches. Nodes that no later node consumed are joined by a 1x1 convolution
(summing per-node 1x1 convolutions, which equals concatenating the kept nodes and applying the
matching slice of one convolution), then BatchNorm. ``prefix`` is ``normal``/``reduce``, shared
by all cells of a kind as in NNI; ``key_prefix`` gives a cell its own.

**Macro** (``ENASMacroLayer``): one ``LayerChoice`` of six branches on the previous layer's
output, plus an ``InputChoice`` with ``n_chosen=None`` (any subset) of skip connections from
the earlier layers named by ``prev_labels``. Their keys are left to the automatic numbering,
as NNI's are (``LayerChoice1``, ``InputChoice2``, ...).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from trials.nas.mutables import NO_KEY, InputChoice, LayerChoice, MutableScope
from trials.nas.zoo.ops import ConvBranch, FactorizedReduce, PoolBranch, ReLUConvBN, SepConvBN

MICRO_OPS = ("sepconv3x3", "sepconv5x5", "avgpool", "maxpool", "identity")
MACRO_OPS = ("conv3x3", "sepconv3x3", "conv5x5", "sepconv5x5", "avgpool", "maxpool")


def micro_op(name: str, channels: int) -> nn.Module:
    if name == "sepconv3x3":
        return SepConvBN(channels, 3)
    if name == "sepconv5x5":
        return SepConvBN(channels, 5)
    if name == "avgpool":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    if name == "maxpool":
        return nn.MaxPool2d(3, 1, 1)
    if name == "identity":
        return nn.Identity()
    raise ValueError(f"unknown ENAS micro operation {name!r}; allowed: {', '.join(MICRO_OPS)}")


class _Branch(nn.Module):
    """Pick one earlier output, apply one operation to it; returns the output and which was picked."""

    def __init__(self, key: str, prev_labels: list[str], channels: int) -> None:
        super().__init__()
        self.input = InputChoice(choose_from=prev_labels, n_chosen=1, return_mask=True, key=f"{key}_input")
        self.op = LayerChoice(OrderedDict((n, micro_op(n, channels)) for n in MICRO_OPS), key=f"{key}_op")

    def forward(self, prev: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        chosen, mask = self.input(prev)
        return self.op(chosen), mask


class ENASMicroNode(MutableScope):
    """One node of a micro cell: the sum of its two branches."""

    def __init__(self, key: str, prev_labels: list[str], channels: int) -> None:
        super().__init__(key)
        self.x = _Branch(f"{key}_x", prev_labels, channels)
        self.y = _Branch(f"{key}_y", prev_labels, channels)

    def forward(self, prev: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        out_x, mask_x = self.x(prev)
        out_y, mask_y = self.y(prev)
        used = torch.maximum(mask_x.float(), mask_y.float())  # how much each earlier output was taken
        return out_x + out_y, used


class ENASMicroLayer(nn.Module):
    """An ENAS micro cell with NNI's arguments plus ``key_prefix``; returns ``(prev, out)``.

    With ``reduction`` both inputs are first halved (FactorizedReduce); inputs whose channels
    differ from ``out_channels`` are brought to it by a 1x1 ReLU-conv-BN. ``prev`` is the
    second input after any reduction, ready to be the next cell's first input.
    """

    def __init__(
        self,
        num_nodes: int,
        in_channels_pp: int,
        in_channels_p: int,
        out_channels: int,
        reduction: bool,
        key_prefix: str | None = None,
    ) -> None:
        super().__init__()
        if num_nodes < 1:
            raise ValueError(f"ENASMicroLayer: num_nodes must be at least 1, got {num_nodes}")
        self.reduction = reduction
        if reduction:
            self.reduce0: nn.Module = FactorizedReduce(in_channels_pp, out_channels)
            self.reduce1: nn.Module = FactorizedReduce(in_channels_p, out_channels)
            in_channels_pp = in_channels_p = out_channels
        else:
            self.reduce0 = self.reduce1 = nn.Identity()
        self.preproc0 = self._calibrate(in_channels_pp, out_channels)
        self.preproc1 = self._calibrate(in_channels_p, out_channels)
        prefix = key_prefix if key_prefix is not None else ("reduce" if reduction else "normal")
        labels = [NO_KEY, NO_KEY]
        self.nodes = nn.ModuleList()
        for i in range(num_nodes):
            node = ENASMicroNode(f"{prefix}_node_{i}", list(labels), out_channels)
            self.nodes.append(node)
            labels.append(node.key)
        self.final_relu = nn.ReLU()
        self.final_convs = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 1, bias=False) for _ in self.nodes
        )
        self.final_bn = nn.BatchNorm2d(out_channels)

    @staticmethod
    def _calibrate(c_in: int, c_out: int) -> nn.Module:
        return ReLUConvBN(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, pprev: torch.Tensor, prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pprev, prev = self.reduce0(pprev), self.reduce1(prev)
        states = [self.preproc0(pprev), self.preproc1(prev)]
        consumed = states[0].new_zeros(len(self.nodes) + 2)
        for node in self.nodes:
            out, used = node(states)
            used = used.to(device=consumed.device, dtype=consumed.dtype)
            consumed = torch.maximum(consumed, F.pad(used, (0, consumed.numel() - used.numel())))
            states.append(out)
        total = None
        for i, (conv, state) in enumerate(zip(self.final_convs, states[2:], strict=True)):
            term = conv(self.final_relu(state)) * (1 - consumed[i + 2])
            total = term if total is None else total + term
        return prev, self.final_bn(total)


class ENASMacroLayer(MutableScope):
    """One layer of the macro space (see the module docstring), NNI's arguments.

    ``forward(prev_layers)`` takes the outputs of the earlier layers: the last one is this
    layer's input, the ones before it are the skip candidates named by ``prev_labels``.
    """

    def __init__(self, key: str, prev_labels: list[str], in_filters: int, out_filters: int) -> None:
        super().__init__(key)
        self.in_filters, self.out_filters = in_filters, out_filters
        branches = OrderedDict(
            conv3x3=ConvBranch(in_filters, out_filters, 3, separable=False),
            sepconv3x3=ConvBranch(in_filters, out_filters, 3, separable=True),
            conv5x5=ConvBranch(in_filters, out_filters, 5, separable=False),
            sepconv5x5=ConvBranch(in_filters, out_filters, 5, separable=True),
            avgpool=PoolBranch("avg", in_filters, out_filters),
            maxpool=PoolBranch("max", in_filters, out_filters),
        )
        self.mutable = LayerChoice(branches)
        self.skipconnect = InputChoice(choose_from=list(prev_labels), n_chosen=None) if prev_labels else None
        self.batch_norm = nn.BatchNorm2d(out_filters)

    def forward(self, prev_layers: list[torch.Tensor]) -> torch.Tensor:
        out = self.mutable(prev_layers[-1])
        if self.skipconnect is not None:
            connection = self.skipconnect(prev_layers[:-1])
            if connection is not None:
                out = out + connection
        return self.batch_norm(out)


class ENASMacroGeneralModel(nn.Module):
    """The ENAS macro network with NNI's arguments: stem, ``num_layers`` macro layers (every
    earlier layer's output is halved by FactorizedReduce after layers ``num_layers // 3 - 1``
    and ``2 * (num_layers // 3) - 1``), global pooling, dropout and a classifier."""

    def __init__(
        self,
        num_layers: int = 12,
        out_filters: int = 24,
        in_channels: int = 3,
        num_classes: int = 10,
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"ENASMacroGeneralModel: num_layers must be at least 1, got {num_layers}")
        self.num_layers = num_layers
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, out_filters, 3, padding=1, bias=False), nn.BatchNorm2d(out_filters)
        )
        distance = num_layers // 3
        self.pool_after = [i for i in (distance - 1, 2 * distance - 1) if i >= 0]
        self.layers = nn.ModuleList()
        self.pool_layers = nn.ModuleList()
        labels: list[str] = []
        for i in range(num_layers):
            # layer i reads layer i-1 (or the stem) and may add skips from layers 0 .. i-2
            self.layers.append(ENASMacroLayer(f"layer_{i}", labels[:-1], out_filters, out_filters))
            labels.append(f"layer_{i}")
            if i in self.pool_after:
                self.pool_layers.append(FactorizedReduce(out_filters, out_filters, relu=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout_rate)
        self.classifier = nn.Linear(out_filters, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prev = [self.stem(x)]
        pools = iter(self.pool_layers)
        for i, layer in enumerate(self.layers):
            out = layer(prev)
            prev = [*prev[1:], out] if i == 0 else [*prev, out]  # the stem is an input, not a skip
            if i in self.pool_after:
                pool = next(pools)
                prev = [pool(p) for p in prev]
        return self.classifier(self.dropout(self.pool(prev[-1]).flatten(1)))


class ENASMicroNetwork(nn.Module):
    """A network of ``ENASMicroLayer`` cells: a stem, ``num_layers`` cells (reduction cells at
    1/3 and 2/3 of the depth, where the channels double), pooling, dropout and a classifier."""

    def __init__(
        self,
        num_layers: int = 6,
        num_nodes: int = 5,
        out_channels: int = 20,
        in_channels: int = 3,
        num_classes: int = 10,
        dropout_rate: float = 0.0,
        shared_keys: bool = True,
    ) -> None:
        super().__init__()
        stem = 3 * out_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem)
        )
        c_pp = c_p = stem
        c = out_channels
        reductions = {num_layers // 3, 2 * num_layers // 3}
        self.layers = nn.ModuleList()
        for i in range(num_layers):
            reduction = i in reductions
            if reduction:
                c *= 2
            prefix = None if shared_keys else f"cell{i}_{'reduce' if reduction else 'normal'}"
            self.layers.append(ENASMicroLayer(num_nodes, c_pp, c_p, c, reduction, prefix))
            c_pp, c_p = (c if reduction else c_p), c
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout_rate)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prev = cur = self.stem(x)
        for layer in self.layers:
            prev, cur = layer(prev, cur)
        return self.classifier(self.dropout(self.pool(cur).flatten(1)))
