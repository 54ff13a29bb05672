"""The candidate operations of the zoo's cells (DARTS, ENAS and NAS-Bench-201 spaces).

Each is a plain ``nn.Module`` with the channel arithmetic of its paper, so a cell's parameter
count can be worked out by hand: a ``k x k`` convolution from ``a`` to ``b`` channels holds
``a * b * k * k`` weights (no bias: a BatchNorm follows), a depthwise one ``a * k * k``, and an
affine BatchNorm ``2 * channels``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def batchnorm(
    channels: int, affine: bool = True, momentum: float = 0.1, track: bool = True
) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, affine=affine, momentum=momentum, track_running_stats=track)


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution, BatchNorm: the DARTS and NAS-Bench-201 ordering."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        affine: bool = True,
        momentum: float = 0.1,
        track: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation=dilation, bias=False),
            batchnorm(c_out, affine, momentum, track),
        )


class ConvBNReLU(nn.Sequential):
    """Convolution, BatchNorm, ReLU: the ENAS ordering."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, padding: int = 0) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
            batchnorm(c_out),
            nn.ReLU(),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise (dilated) convolution, pointwise convolution, BatchNorm."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            batchnorm(c_out, affine),
        )


class SepConv(nn.Sequential):
    """DARTS' separable convolution: two depthwise-separable blocks, the first with the stride."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True
    ) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class PoolBN(nn.Sequential):
    """Max or average pooling followed by BatchNorm (DARTS' pooling candidates)."""

    def __init__(self, kind: str, channels: int, kernel: int, stride: int, padding: int, affine: bool = True):
        if kind == "max":
            pool: nn.Module = nn.MaxPool2d(kernel, stride, padding)
        elif kind == "avg":
            pool = nn.AvgPool2d(kernel, stride, padding, count_include_pad=False)
        else:
            raise ValueError(f"PoolBN: kind must be 'max' or 'avg', got {kind!r}")
        super().__init__(pool, batchnorm(channels, affine))


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing every other pixel: two strided 1x1 convolutions, the
    second shifted by one pixel, concatenated. ``c_out`` must be even."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True, relu: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce: c_out must be even, got {c_out}")
        self.relu = nn.ReLU() if relu else nn.Identity()
        self.conv1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = batchnorm(c_out, affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.after_relu(self.relu(x))

    def after_relu(self, x: torch.Tensor) -> torch.Tensor:
        """Everything but the leading ReLU, for a caller that shares one ReLU among candidates."""
        if x.shape[-1] % 2 or x.shape[-2] % 2:  # padded to x's size, so that odd sizes lose no row
            shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        else:  # the stride-2 conv never reads the pad's row and column: leave them out
            shifted = x[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv1(x), self.conv2(shifted)], dim=1))


class Zero(nn.Module):
    """The "none" operation: zeros of the output's shape (an edge that carries nothing)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.c_out = c_out
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if x.shape[1] != self.c_out:
            shape = (x.shape[0], self.c_out, *x.shape[2:])
            return x.new_zeros(shape)
        return x.mul(0.0)


class SepConvBN(nn.Sequential):
    """ENAS' separable convolution: ReLU, depthwise, pointwise, BatchNorm (stride 1)."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels, bias=False),
            nn.Conv2d(channels, channels, 1, bias=False),
            batchnorm(channels),
        )


class ConvBranch(nn.Module):
    """An ENAS macro branch: 1x1 conv to ``c_out``, then a (separable) ``k x k`` conv, BN, ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, separable: bool) -> None:
        super().__init__()
        self.preproc = ConvBNReLU(c_in, c_out)
        if separable:
            self.conv: nn.Module = nn.Sequential(
                nn.Conv2d(c_out, c_out, kernel, padding=kernel // 2, groups=c_out, bias=False),
                nn.Conv2d(c_out, c_out, 1, bias=False),
            )
        else:
            self.conv = nn.Conv2d(c_out, c_out, kernel, padding=kernel // 2, bias=False)
        self.post = nn.Sequential(batchnorm(c_out), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.conv(self.preproc(x)))


class PoolBranch(nn.Module):
    """An ENAS macro branch: 1x1 conv to ``c_out``, then 3x3 max or average pooling, BN."""

    def __init__(self, kind: str, c_in: int, c_out: int) -> None:
        super().__init__()
        self.preproc = ConvBNReLU(c_in, c_out)
        self.pool = PoolBN(kind, c_out, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.preproc(x))
