"""The NAS-Bench-201 search space (Dong & Yang 2020): ``NASBench201Cell`` and its network.

A cell is a 4-node DAG. Every edge ``j -> i`` (``j < i``) is a ``LayerChoice`` with key
``"<j>_<i>"`` over ``none``, ``avg_pool_3x3``, ``conv_3x3``, ``conv_1x1`` and ``skip_connect``
(reduction ``mean``, as NNI's), node ``i`` is the sum of its incoming edges and the cell
returns node 3. The 15,625 architectures of the benchmark are the 5^6 choices of one cell
shared by every cell of the network, which is NNI's default; ``key_prefix`` (or
``shared_keys=False`` on the network) gives each cell its own keys instead.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from trials.nas.mutables import LayerChoice
from trials.nas.zoo.ops import FactorizedReduce, ReLUConvBN, Zero

NB201_OPS = ("none", "avg_pool_3x3", "conv_3x3", "conv_1x1", "skip_connect")
N_NODES = 4


class _Pool(nn.Module):
    """3x3 average pooling, after a 1x1 ReLU-conv-BN when the channels change."""

    def __init__(self, c_in: int, c_out: int, stride: int, bn: dict) -> None:
        super().__init__()
        self.preprocess = ReLUConvBN(c_in, c_out, 1, **bn) if c_in != c_out else nn.Identity()
        self.pool = nn.AvgPool2d(3, stride, 1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.preprocess(x))


def nb201_op(name: str, c_in: int, c_out: int, stride: int, bn: dict) -> nn.Module:
    """One NAS-Bench-201 candidate; ``bn`` holds ``affine``, ``momentum`` and ``track``."""
    if name == "none":
        return Zero(c_in, c_out, stride)
    if name == "avg_pool_3x3":
        return _Pool(c_in, c_out, stride, bn)
    if name == "conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, stride, 1, **bn)
    if name == "conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, stride, 0, **bn)
    if name == "skip_connect":
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return FactorizedReduce(c_in, c_out, bn["affine"])
    raise ValueError(f"unknown NAS-Bench-201 operation {name!r}; allowed: {', '.join(NB201_OPS)}")


class NASBench201Cell(nn.Module):
    """A NAS-Bench-201 cell with NNI's arguments, plus ``key_prefix`` (see the module docstring)."""

    def __init__(
        self,
        cell_id: int,
        C_in: int,
        C_out: int,
        stride: int,
        bn_affine: bool = True,
        bn_momentum: float = 0.1,
        bn_track_running_stats: bool = True,
        key_prefix: str = "",
    ) -> None:
        super().__init__()
        self.cell_id = cell_id
        bn = {"affine": bn_affine, "momentum": bn_momentum, "track": bn_track_running_stats}
        self.layers = nn.ModuleList()
        for i in range(1, N_NODES):
            incoming = nn.ModuleList()
            for j in range(i):
                # only edges leaving the input node change the shape
                c_in, edge_stride = (C_in, stride) if j == 0 else (C_out, 1)
                ops = OrderedDict((name, nb201_op(name, c_in, C_out, edge_stride, bn)) for name in NB201_OPS)
                incoming.append(LayerChoice(ops, reduction="mean", key=f"{key_prefix}{j}_{i}"))
            self.layers.append(incoming)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for incoming in self.layers:
            total = incoming[0](nodes[0])
            for j in range(1, len(incoming)):
                total = total + incoming[j](nodes[j])
            nodes.append(total)
        return nodes[-1]


class ResNetBasicBlock(nn.Module):
    """The fixed stride-2 block between the network's stages."""

    def __init__(self, c_in: int, c_out: int, bn: dict) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, **bn)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, **bn)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


class NASBench201Network(nn.Module):
    """The benchmark's network: stem, three stages of ``num_modules_per_stack`` cells with
    ``C``, ``2C``, ``4C`` channels joined by residual blocks, then BN-ReLU, pooling and a
    classifier. The benchmark itself uses ``C=16, num_modules_per_stack=5``."""

    def __init__(
        self,
        stem_out_channels: int = 16,
        num_modules_per_stack: int = 5,
        num_labels: int = 10,
        in_channels: int = 3,
        shared_keys: bool = True,
        bn_affine: bool = True,
        bn_momentum: float = 0.1,
        bn_track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        c = stem_out_channels
        bn = {"affine": bn_affine, "momentum": bn_momentum, "track": bn_track_running_stats}
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.cells = nn.ModuleList()
        cell_id = 0
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage > 0:
                self.cells.append(ResNetBasicBlock(width // 2, width, bn))
            for _ in range(num_modules_per_stack):
                prefix = "" if shared_keys else f"cell{cell_id}_"
                self.cells.append(
                    NASBench201Cell(
                        cell_id, width, width, 1, bn_affine, bn_momentum, bn_track_running_stats, prefix
                    )
                )
                cell_id += 1
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * c, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.classifier(self.pool(self.lastact(x)).flatten(1))
