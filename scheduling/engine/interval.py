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


_new = object.__new__
_set_start = Interval.__dict__["start"].__set__
_set_end = Interval.__dict__["end"].__set__


def unchecked_interval(start: datetime, end: datetime) -> Interval:
    """An Interval the engine built itself from UTC datetimes with start < end, without re-checking.

    Free slots are the engine's most repeated output; filling the slots directly costs about
    half of going through ``__init__`` and ``__post_init__``.
    """
    interval: Interval = _new(Interval)
    _set_start(interval, start)
    _set_end(interval, end)
    return interval
