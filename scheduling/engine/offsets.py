"""A zone's UTC offsets over a stretch of time, so local <-> UTC becomes integer arithmetic.

``zoneinfo`` answers one instant at a time (about a microsecond each); a month of slots needs
thousands of answers. The table asks every two days and bisects to the second where the offset
changed. That cannot miss a change: since 1970 no zone in tzdata has kept an offset for less
than 6.9 days, so two samples never have two changes between them. Outside the sampled
stretch the first and last offsets are assumed.

Local times are "naive epoch seconds": the wall clock read as if it were UTC, so the local date
is ``local // DAY`` and the time of day ``local % DAY``.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime
from zoneinfo import ZoneInfo

from scheduling.engine.epoch import DAY

SAMPLE_STEP = 2 * DAY

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def local_date(day: int) -> date:
    """The date of a local day number (``local_seconds // DAY``)."""
    return date.fromordinal(_EPOCH_ORDINAL + day)


def day_number(day: date) -> int:
    """The local day number of a date: its midnight is ``day_number(day) * DAY`` local seconds."""
    return day.toordinal() - _EPOCH_ORDINAL


def offset_at(zone: ZoneInfo, instant: int) -> int:
    """The zone's UTC offset in seconds at an instant (epoch seconds)."""
    offset = datetime.fromtimestamp(instant, zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset.days * DAY + offset.seconds


class OffsetTable:
    """Offsets of one zone: ``offsets[i]`` holds from ``changes[i - 1]`` (inclusive) to ``changes[i]``."""

    __slots__ = ("changes", "offsets")

    def __init__(self, zone: ZoneInfo, start: int, end: int) -> None:
        self.changes: list[int] = []
        self.offsets: list[int] = [offset_at(zone, start)]
        sample = start
        while sample < end:
            following = min(sample + SAMPLE_STEP, end)
            offset = offset_at(zone, following)
            if offset != self.offsets[-1]:
                self.changes.append(_first_with_new_offset(zone, sample, following, self.offsets[-1]))
                self.offsets.append(offset)
            sample = following

    @classmethod
    def around(cls, zone: ZoneInfo, instant: int) -> OffsetTable:
        """A table good for conversions within a day or so of ``instant``."""
        return cls(zone, instant - 2 * DAY, instant + 2 * DAY)

    def offset(self, instant: int) -> int:
        return self.offsets[bisect_right(self.changes, instant)]

    def local(self, instant: int) -> int:
        """Naive local seconds of an instant."""
        return instant + self.offset(instant)

    def to_utc(self, local: int, *, latest: bool) -> int:
        """The instant whose wall clock reads ``local``.

        A repeated wall time (fall-back) has two: the earliest, or with ``latest`` the last.
        A wall time in a spring-forward gap has none: it maps to the first instant after the gap.
        """
        changes, offsets = self.changes, self.offsets
        if not changes:
            return local - offsets[0]
        occurrences = [
            local - offset for index, offset in enumerate(offsets) if bisect_right(changes, local - offset) == index
        ]
        if occurrences:
            return max(occurrences) if latest else min(occurrences)
        for index, change in enumerate(changes):
            if change + offsets[index] <= local < change + offsets[index + 1]:
                return change
        raise AssertionError(f"local time {local} is neither on the clock nor in a gap")  # pragma: no cover


def _first_with_new_offset(zone: ZoneInfo, before: int, after: int, old: int) -> int:
    """The first second in (before, after] whose offset is no longer ``old``."""
    while after - before > 1:
        middle = (before + after) // 2
        if offset_at(zone, middle) == old:
            before = middle
        else:
            after = middle
    return after
