"""Sampling architectures evenly over a FLOPs band (SPOS' supernet training, as NNI does it).

Uniform sampling over a space favours the FLOPs where most architectures lie, so a super-net
trained that way serves the cheap and the expensive ends badly. :class:`BandSampler` splits
``[low, high]`` into ``bins`` equal FLOPs bins, picks a bin uniformly, then draws uniform
architectures until one falls in it. When ``timeout`` draws find none, it takes the closest
one found and says so (a band too narrow, or a bin the space cannot reach).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trials.nas.oneshot.choices import ChoiceGroup, random_architecture

Architecture = dict[str, list[int]]


@dataclass(frozen=True)
class FlopsBand:
    """``bins`` equal FLOPs bins between ``low`` and ``high`` (the last bin includes ``high``)."""

    low: float
    high: float
    bins: int = 7

    def __post_init__(self) -> None:
        for name, value in (("low", self.low), ("high", self.high)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"FlopsBand: {name} must be a finite number, got {value!r}")
        if not self.low < self.high:
            raise ValueError(f"FlopsBand: low must be below high, got low={self.low}, high={self.high}")
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 1:
            raise ValueError(f"FlopsBand: bins must be an integer >= 1, got {self.bins!r}")

    def contains(self, flops: float) -> bool:
        return self.low <= flops <= self.high

    def bin_range(self, index: int) -> tuple[float, float]:
        width = (self.high - self.low) / self.bins
        return self.low + index * width, self.low + (index + 1) * width

    def bin_of(self, flops: float) -> int | None:
        """The bin ``flops`` falls in, or None outside the band."""
        if not self.contains(flops):
            return None
        index = int((flops - self.low) / (self.high - self.low) * self.bins)
        return min(index, self.bins - 1)

    def distance(self, flops: float, index: int) -> float:
        """How far ``flops`` lies outside bin ``index`` (0 inside)."""
        start, end = self.bin_range(index)
        return max(start - flops, flops - end, 0.0)


@dataclass(frozen=True)
class BandSample:
    architecture: Architecture
    flops: float
    hit: bool  # False: no draw fell in the chosen bin; ``architecture`` is the closest found


class BandSampler:
    """Draws architectures of ``groups`` evenly over ``band``'s bins (see the module docstring).

    ``flops`` gives an architecture's cost; it is called once per distinct architecture (its
    results are cached). Every random draw comes from the ``rng`` passed to :meth:`sample`, so a
    seeded, checkpointed generator makes the sampling reproducible and resumable.
    """

    def __init__(
        self,
        groups: Sequence[ChoiceGroup],
        band: FlopsBand,
        flops: Callable[[Architecture], float],
        timeout: int = 500,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
            raise ValueError(
                f"BandSampler: timeout must be an integer >= 1 (draws per sample), got {timeout!r}"
            )
        self.groups = tuple(groups)
        self.band = band
        self.flops = flops
        self.timeout = timeout

    def sample(self, rng: random.Random) -> BandSample:
        target = rng.randrange(self.band.bins)
        closest: BandSample | None = None
        for _ in range(self.timeout):
            architecture = random_architecture(self.groups, rng)
            flops = float(self.flops(architecture))
            if self.band.bin_of(flops) == target:
                return BandSample(architecture, flops, True)
            if closest is None or self.band.distance(flops, target) < self.band.distance(
                closest.flops, target
            ):
                closest = BandSample(architecture, flops, False)
        assert closest is not None
        return closest
