"""A page's booking policy: meeting length, start grid, buffers, notice and how far ahead one may book."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class RollingHorizon:
    """Bookable until the end of the local day ``days`` days after today (in the page's zone)."""

    days: int

    def __post_init__(self) -> None:
        if self.days < 0:
            raise ValueError(f"a rolling horizon needs days >= 0, got {self.days}")


@dataclass(frozen=True)
class FixedHorizon:
    """Bookable only on the local dates ``first`` to ``last``, inclusive (in the page's zone)."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"a fixed horizon needs first <= last, got {self.first} .. {self.last}")


Horizon = RollingHorizon | FixedHorizon


@dataclass(frozen=True)
class SlotRules:
    """All in minutes. Buffers must be free of busy time around a meeting but may fall outside open hours."""

    duration: int
    increment: int
    buffer_before: int = 0
    buffer_after: int = 0
    minimum_notice: int = 0
    horizon: Horizon = RollingHorizon(60)

    def __post_init__(self) -> None:
        if self.duration <= 0 or self.increment <= 0:
            raise ValueError(f"duration and increment must be positive, got {self.duration} and {self.increment}")
        if min(self.buffer_before, self.buffer_after, self.minimum_notice) < 0:
            raise ValueError("buffers and minimum notice must not be negative")
