"""The clock the loop measures its limits by.

The daemon runs on :data:`SYSTEM_CLOCK`. Tests of the state machine run the same loop against
the simulated training service on a faster :class:`Clock`, where an hour of experiment passes
in a fraction of a second of real time (``Clock(speed=3600)``; Syne Tune's simulator backend
does the same): the loop converts every wait it makes with :meth:`Clock.real_seconds`, and a
simulated trial reports at clock times. Timestamps stored in the database stay wall-clock times.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Clock:
    """Seconds as the loop counts them; ``speed`` clock seconds pass per real second."""

    speed: float = 1.0
    _origin: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"speed must be > 0, got {self.speed!r}")

    def monotonic(self) -> float:
        """A reading that only goes forward, in clock seconds."""
        return (time.monotonic() - self._origin) * self.speed

    def seconds_since(self, wall_ms: int) -> float:
        """Clock seconds since the wall-clock time ``wall_ms`` (milliseconds since the epoch)."""
        return max(0.0, (time.time() * 1000 - wall_ms) / 1000) * self.speed

    def real_seconds(self, seconds: float) -> float:
        """How long to wait in real time for ``seconds`` to pass on this clock."""
        return seconds / self.speed


#: The clock of a daemon: clock seconds are real seconds.
SYSTEM_CLOCK = Clock()
