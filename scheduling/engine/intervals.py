"""Union, difference, intersection and clipping of :class:`Interval` lists.

Inputs are normalised first (an O(n) pass when they already are), so unsorted or overlapping
lists give the right answer too; outputs are sorted with touching intervals joined.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from scheduling.engine.epoch import require_aware
from scheduling.engine.interval import Interval
from scheduling.engine.spans import clip_spans, intersect_spans, merge_spans, subtract_spans

_Pairs = list[tuple[datetime, datetime]]


def _pairs(intervals: Iterable[Interval]) -> _Pairs:
    return merge_spans((interval.start, interval.end) for interval in intervals)


def _intervals(pairs: _Pairs) -> list[Interval]:
    return [Interval(start, end) for start, end in pairs]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """The union; touching intervals join."""
    return _intervals(_pairs(intervals))


def subtract(base: Sequence[Interval], remove: Sequence[Interval]) -> list[Interval]:
    """What is in ``base`` and not in ``remove``."""
    return _intervals(subtract_spans(_pairs(base), _pairs(remove)))


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """What is in both."""
    return _intervals(intersect_spans(_pairs(a), _pairs(b)))


def clip(intervals: Sequence[Interval], start: datetime, end: datetime) -> list[Interval]:
    """The parts inside [start, end); empty when start >= end."""
    start, end = require_aware(start, "start"), require_aware(end, "end")
    return _intervals(clip_spans(_pairs(intervals), start, end))
