"""The one time value of the engine: a half-open span of aware instants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from scheduling.engine.epoch import require_aware


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """[start, end) with start < end, stored in UTC.

    Aware values in other zones are converted to UTC rather than kept: Python compares two
    datetimes that share a ``ZoneInfo`` by wall clock, ignoring ``fold``, so intervals inside a
    fall-back hour would sort and overlap wrongly. Naive values are refused.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start, end = self.start, self.end
        if start.tzinfo is not UTC:
            start = require_aware(start, "Interval.start")
            object.__setattr__(self, "start", start)
        if end.tzinfo is not UTC:
            end = require_aware(end, "Interval.end")
            object.__setattr__(self, "end", end)
        if not start < end:
            raise ValueError(f"an interval needs start < end, got {start.isoformat()} .. {end.isoformat()}")
