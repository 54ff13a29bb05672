"""The ProxylessNAS search space (Cai, Zhu & Han, ICLR 2019): a MobileNetV2-style super-net.

The network is a stem convolution, a fixed first block, then stages of searchable blocks, a
1x1 "feature mix" convolution, global pooling, dropout and a linear classifier.

Every searchable block is a ``LayerChoice`` keyed ``s{stage}_b{block}`` (both counted from 0, so
``s0_b0`` is the first block of the first stage) over inverted-residual ``MBConv`` candidates
named ``k{kernel}_e{expansion}``, kernels outer and expansions inner: with the defaults
``k3_e3, k3_e6, k5_e3, k5_e6, k7_e3, k7_e6``. A block whose input and output have the same
channels and stride 1 also adds its input back (the residual connection) and offers a last
candidate, ``zero``: its branch then outputs zeros, so the block is the identity and the
network is one block shallower. That is how the paper searches depth. The first block of a
stage (new width or stride) has no residual and no ``zero``.

Defaults are the ImageNet search space of the paper (section 4.2, the MobileNetV2 backbone),
as NNI's ProxylessNAS example builds it: a 32-channel stride-2 stem, a first block of 16
channels (MBConv, 3x3, expansion 1, no residual), stage widths 24, 40, 80, 96, 192, 320 with
4, 4, 4, 4, 4, 1 blocks and strides 2, 2, 2, 1, 2, 1, a 1280-channel feature mix, BatchNorm
momentum 0.1 and eps 1e-3, dropout 0, and the six candidates above.

``width_mult`` scales every width (stem, first block, stages) and rounds it as MobileNetV2
does: to the nearest multiple of 8, at least 8, and never more than 10 % below the scaled
value; at 1.0 too, so every built width is a multiple of 8 (``widths`` on the network lists
them). ``last_channels`` is scaled only when ``width_mult > 1`` (MobileNetV2's rule too).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from trials.nas.mutables import LayerChoice
from trials.nas.zoo.ops import Zero

PROXYLESS_STAGE_WIDTHS = (24, 40, 80, 96, 192, 320)
PROXYLESS_STAGE_DEPTHS = (4, 4, 4, 4, 4, 1)
PROXYLESS_STAGE_STRIDES = (2, 2, 2, 1, 2, 1)
PROXYLESS_KERNELS = (3, 5, 7)
PROXYLESS_EXPANSIONS = (3, 6)
FIRST_BLOCK_KINDS = ("mbconv", "choice")
KERNEL_SIZES = (1, 3, 5, 7, 9)  # odd, so "same" padding keeps the size


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNetV2's channel rounding: nearest multiple of ``divisor``, at most 10 % below."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def candidate_name(kernel: int, expansion: int) -> str:
    return f"k{kernel}_e{expansion}"


def candidate_names(
    kernels: Sequence[int] = PROXYLESS_KERNELS,
    expansions: Sequence[int] = PROXYLESS_EXPANSIONS,
    zero: bool = False,
) -> tuple[str, ...]:
    """The candidates of one block, in the order the ``LayerChoice`` holds them."""
    names = tuple(candidate_name(k, e) for k in kernels for e in expansions)
    return (*names, "zero") if zero else names


class MBConv(nn.Sequential):
    """MobileNetV2's inverted residual branch (the residual add is the block's job):
    1x1 expansion to ``c_in * expansion`` channels with BN and ReLU6 (left out when the
    expansion is 1), depthwise ``kernel x kernel`` with the stride, BN, ReLU6, then a linear
    1x1 projection to ``c_out`` with BN. Convolutions have no bias (a BatchNorm follows)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        expansion: int,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-3,
    ) -> None:
        hidden = c_in * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [
                nn.Conv2d(c_in, hidden, 1, bias=False),
                nn.BatchNorm2d(hidden, eps=bn_eps, momentum=bn_momentum),
                nn.ReLU6(inplace=True),
            ]
        layers += [
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden, eps=bn_eps, momentum=bn_momentum),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, eps=bn_eps, momentum=bn_momentum),
        ]
        super().__init__(*layers)


class ProxylessBlock(nn.Module):
    """One searchable block: a ``LayerChoice`` over the MBConv candidates (plus ``zero`` when
    the block is residual), its input added back when the shapes allow."""

    def __init__(
        self,
        key: str,
        c_in: int,
        c_out: int,
        stride: int,
        kernels: Sequence[int] = PROXYLESS_KERNELS,
        expansions: Sequence[int] = PROXYLESS_EXPANSIONS,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-3,
        residual: bool | None = None,
    ) -> None:
        super().__init__()
        can_add = stride == 1 and c_in == c_out
        self.residual = can_add if residual is None else residual and can_add
        ops: OrderedDict[str, nn.Module] = OrderedDict(
            (candidate_name(k, e), MBConv(c_in, c_out, k, stride, e, bn_momentum, bn_eps))
            for k in kernels
            for e in expansions
        )
        if self.residual:
            ops["zero"] = Zero(c_in, c_out, stride)
        self.op = LayerChoice(ops, key=key)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.op(x)
        return out + x if self.residual else out


def _check_ints(
    name: str, values: tuple[int, ...], allowed: tuple[int, ...] | None = None, unique: bool = False
) -> None:
    if not values:
        raise ValueError(f"{name} must not be empty")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must hold positive integers, got {values}")
        if allowed is not None and value not in allowed:
            raise ValueError(f"{name} must hold values in {allowed}, got {values}")
    if unique and len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a value, got {values}")


class ProxylessNASNetwork(nn.Module):
    """The ProxylessNAS super-net; see the module docstring for the keys, defaults and rounding.

    Small test configurations shrink it, e.g. ``stage_widths=(8, 16), stage_depths=(2, 2),
    stage_strides=(2, 1), stem_channels=8, first_channels=8, last_channels=16`` on 8x8 images.
    ``first_block="choice"`` makes the first block a ``LayerChoice`` keyed ``first`` over the
    same MBConv candidates (never residual, so no ``zero``) instead of the fixed expansion-1
    MBConv. Arguments are checked up front; a bad one raises ``ValueError`` naming it.
    """

    def __init__(
        self,
        n_classes: int = 1000,
        width_mult: float = 1.0,
        stage_widths: Sequence[int] = PROXYLESS_STAGE_WIDTHS,
        stage_depths: Sequence[int] = PROXYLESS_STAGE_DEPTHS,
        stage_strides: Sequence[int] = PROXYLESS_STAGE_STRIDES,
        in_channels: int = 3,
        stem_channels: int = 32,
        stem_stride: int = 2,
        first_channels: int = 16,
        first_block: str = "mbconv",
        last_channels: int = 1280,
        dropout: float = 0.0,
        kernels: Sequence[int] = PROXYLESS_KERNELS,
        expansions: Sequence[int] = PROXYLESS_EXPANSIONS,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-3,
    ) -> None:
        super().__init__()
        stage_widths, stage_depths = tuple(stage_widths), tuple(stage_depths)
        stage_strides, kernels, expansions = tuple(stage_strides), tuple(kernels), tuple(expansions)
        self._check(
            n_classes, width_mult, stage_widths, stage_depths, stage_strides, in_channels,
            stem_channels, stem_stride, first_channels, first_block, last_channels, dropout,
            kernels, expansions,
        )  # fmt: skip
        bn = {"eps": bn_eps, "momentum": bn_momentum}
        stem = make_divisible(stem_channels * width_mult)
        first = make_divisible(first_channels * width_mult)
        widths = [make_divisible(w * width_mult) for w in stage_widths]
        last = make_divisible(last_channels * width_mult) if width_mult > 1.0 else last_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem, 3, stem_stride, 1, bias=False),
            nn.BatchNorm2d(stem, **bn),
            nn.ReLU6(inplace=True),
        )
        if first_block == "choice":
            self.first: nn.Module = ProxylessBlock(
                "first", stem, first, 1, kernels, expansions, bn_momentum, bn_eps, residual=False
            )
        else:
            self.first = MBConv(stem, first, 3, 1, 1, bn_momentum, bn_eps)
        blocks: list[nn.Module] = []
        c_in = first
        for stage, (width, depth, stride) in enumerate(zip(widths, stage_depths, stage_strides, strict=True)):
            for block in range(depth):
                blocks.append(
                    ProxylessBlock(
                        f"s{stage}_b{block}",
                        c_in,
                        width,
                        stride if block == 0 else 1,
                        kernels,
                        expansions,
                        bn_momentum,
                        bn_eps,
                    )
                )
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.feature_mix = nn.Sequential(
            nn.Conv2d(c_in, last, 1, bias=False), nn.BatchNorm2d(last, **bn), nn.ReLU6(inplace=True)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(last, n_classes)
        self.widths = (stem, first, *widths, last)  # the channels as built, for inspection

    @staticmethod
    def _check(
        n_classes: int,
        width_mult: float,
        stage_widths: tuple[int, ...],
        stage_depths: tuple[int, ...],
        stage_strides: tuple[int, ...],
        in_channels: int,
        stem_channels: int,
        stem_stride: int,
        first_channels: int,
        first_block: str,
        last_channels: int,
        dropout: float,
        kernels: tuple[int, ...],
        expansions: tuple[int, ...],
    ) -> None:
        """One ``ValueError`` naming the first bad argument, before any module is built."""
        for name, value in (
            ("n_classes", n_classes),
            ("in_channels", in_channels),
            ("stem_channels", stem_channels),
            ("first_channels", first_channels),
            ("last_channels", last_channels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
        if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or not width_mult > 0:
            raise ValueError(f"width_mult must be a number > 0, got {width_mult!r}")
        if first_block not in FIRST_BLOCK_KINDS:
            raise ValueError(f"first_block must be one of {FIRST_BLOCK_KINDS}, got {first_block!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        _check_ints("stage_widths", stage_widths)
        if len(stage_depths) != len(stage_widths) or len(stage_strides) != len(stage_widths):
            raise ValueError(
                "stage_widths, stage_depths and stage_strides must have one entry per stage, got "
                f"{len(stage_widths)}, {len(stage_depths)} and {len(stage_strides)} entries"
            )
        _check_ints("stage_depths", stage_depths)
        _check_ints("stage_strides", stage_strides, (1, 2))
        _check_ints("kernels", kernels, KERNEL_SIZES, unique=True)
        _check_ints("expansions", expansions, unique=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.feature_mix(self.blocks(self.first(self.stem(x))))
        return self.classifier(self.dropout(self.pool(x).flatten(1)))
