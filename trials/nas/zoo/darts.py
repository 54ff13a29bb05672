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
from collections.abc import Callable

import torch
import torch.nn.functional as F
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


def _after_relu(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """What ``module`` computes after its leading out-of-place ReLU, or None if it has none."""
    if isinstance(module, FactorizedReduce):
        return module.after_relu if isinstance(module.relu, nn.ReLU) else None
    if not isinstance(module, nn.Sequential) or len(module) == 0:
        return None
    first = module[0]
    if isinstance(first, nn.ReLU):
        if first.inplace:
            return None
        inner = None
    else:
        inner = _after_relu(first)
        if inner is None:
            return None
    rest = list(module)[1:]

    def after(x: torch.Tensor) -> torch.Tensor:
        x = inner(x) if inner is not None else x
        for layer in rest:
            x = layer(x)
        return x

    return after


class DartsEdge(LayerChoice):
    """A DARTS edge. Five of its candidates begin with a ReLU of the edge's input (the separable
    and dilated convolutions, and the factorized reduction that skips on a reduction edge), so a
    weighted mixture computes that ReLU once and runs the rest of each on it: the same numbers,
    with three or four fewer ReLUs forward and backward and as many fewer gradient sums.
    A sampled or fixed architecture (a bool mask) runs its candidates as they are.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self._require_mask()
        if mask.dtype == torch.bool:
            return super().forward(x)
        return self._finish(self.candidate_outputs(x))

    def mixes(self) -> bool:
        """Whether a weighted mixture of every candidate is on, summed (what DartsNode folds)."""
        mask = self.mask
        return (
            mask is not None
            and mask.dtype != torch.bool
            and self.reduction == "sum"
            and not self.return_mask
            and len(self._active) == len(self)
        )

    def candidate_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The active candidates' outputs on ``x``, unweighted, one ReLU shared among them."""
        relu: torch.Tensor | None = None
        outputs = []
        for index in self._active:
            candidate = self[index]
            rest = _after_relu(candidate)
            if rest is None:
                outputs.append(candidate(x))
                continue
            if relu is None:
                relu = F.relu(x)
            outputs.append(rest(relu))
        return outputs


class DartsNode(nn.Module):
    """One intermediate node: an operation on each incoming edge, then two of the edges kept."""

    def __init__(self, prefix: str, index: int, channels: int, reduction: bool, affine: bool) -> None:
        super().__init__()
        self.edges = nn.ModuleList()
        for source in range(index):
            stride = 2 if reduction and source < 2 else 1
            ops = OrderedDict((name, darts_op(name, channels, stride, affine)) for name in DARTS_OPS)
            self.edges.append(DartsEdge(ops, key=f"{prefix}_n{index}_p{source}"))
        self.switch = InputChoice(
            choose_from=[edge.key for edge in self.edges], n_chosen=2, key=f"{prefix}_n{index}_switch"
        )

    def forward(self, states: list[torch.Tensor]) -> torch.Tensor:
        if self.folds():
            return self.mixture(states)
        # edges the switch drops are not computed (a sampled or final architecture runs two)
        kept = set(self.switch.active) if self.switch.mask is not None else set(range(len(self.edges)))
        return self.switch(
            [
                edge(state) if i in kept else None
                for i, (edge, state) in enumerate(zip(self.edges, states, strict=True))
            ]
        )

    def folds(self) -> bool:
        """Whether the switch and every edge mix all of their inputs and candidates by weight,
        each edge with as many candidates: then the node is one weighted sum (see ``mixture``)."""
        switch, edges = self.switch, self.edges
        return (
            switch.mask is not None
            and switch.mask.dtype != torch.bool
            and switch.reduction == "sum"
            and not switch.return_mask
            and switch.active == list(range(len(edges)))
            and all(
                isinstance(edge, DartsEdge) and edge.mixes() and len(edge) == len(edges[0]) for edge in edges
            )
        )

    def fold_weights(self) -> torch.Tensor:
        """``s_i * w_ij`` for edge ``i``'s candidate ``j``, flattened (see ``mixture``)."""
        switch = self.switch.mask
        assert switch is not None
        return (switch.unsqueeze(1) * torch.stack([edge.mask for edge in self.edges])).flatten()  # type: ignore[misc]

    def mixture(self, states: list[torch.Tensor], weights: torch.Tensor | None = None) -> torch.Tensor:
        """sum_i s_i sum_j w_ij op_ij(x_i) as sum_ij (s_i w_ij) op_ij(x_i): every candidate of every
        edge stacked once and weighted by one multiply, instead of a mixture per edge and another
        over the edges (the same sum, rounded in another order). ``weights``: ``fold_weights()``,
        when the cell computed them for all its nodes at once."""
        outputs = [
            out
            for edge, state in zip(self.edges, states, strict=True)
            for out in edge.candidate_outputs(state)
        ]
        weights = self.fold_weights() if weights is None else weights
        stacked = torch.stack(outputs)
        return (stacked * weights.to(stacked.dtype).view(-1, *[1] * (stacked.dim() - 1))).sum(0)


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
        weights = self._fold_weights()
        for index, node in enumerate(self.nodes):
            states.append(node(states) if weights is None else node.mixture(states, weights[index]))
        return torch.cat(states[2:], dim=1)

    def _fold_weights(self) -> tuple[torch.Tensor, ...] | None:
        """Every node's ``fold_weights()`` from one multiply, when every node folds its edges
        (each edge with as many candidates); else None, and each node does its own."""
        nodes: list[DartsNode] = list(self.nodes)  # type: ignore[arg-type]
        if not all(node.folds() for node in nodes):
            return None
        edges = [edge for node in nodes for edge in node.edges]
        if len({len(edge) for edge in edges}) != 1:
            return None
        switches = torch.cat([node.switch.mask for node in nodes])  # type: ignore[misc]
        weights = (switches.unsqueeze(1) * torch.stack([edge.mask for edge in edges])).flatten()
        return weights.split([len(node.edges) * len(edges[0]) for node in nodes])


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
