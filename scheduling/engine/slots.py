"""Free slots: open hours, minus busy time widened by the buffers, on the local start grid.

One pass: busy time is sorted and merged once, subtracted from the open hours in a linear sweep,
and slots are read off the free stretches that remain; no slot is ever checked against the
busy list. Everything inside runs on integer epoch seconds; datetimes exist only at the edges.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from scheduling.engine.bookable import bookable_range
from scheduling.engine.busy import Busy, busy_spans
from scheduling.engine.epoch import MINUTE, ceil_seconds, floor_seconds, from_seconds, require_aware
from scheduling.engine.grid import grid_runs
from scheduling.engine.hours import open_spans, table_for
from scheduling.engine.interval import Interval, unchecked_interval
from scheduling.engine.policy import SlotRules
from scheduling.engine.spans import clip_spans, subtract_spans
from scheduling.engine.weekly import WeeklyRules


def free_slots(
    rules: WeeklyRules,
    slot_rules: SlotRules,
    busy: Busy,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
) -> list[Interval]:
    """Every bookable slot starting in [window_start, window_end), sorted by start.

    A slot [s, s + duration) is offered when s is on the local increment grid, the whole slot
    lies inside one stretch of open hours and inside the bookable range (minimum notice, horizon),
    and the slot with its buffers overlaps no busy interval. It may end after ``window_end``.
    Busy time comes as Intervals or, read straight from the database, as :class:`MicroSpans`.
    """
    window_start, window_end = require_aware(window_start, "window_start"), require_aware(window_end, "window_end")
    bookable = bookable_range(rules, slot_rules, now)
    if bookable is None:
        return []
    duration = slot_rules.duration * MINUTE
    first = max(ceil_seconds(window_start), ceil_seconds(bookable.start))
    last = min(ceil_seconds(window_end) - 1, floor_seconds(bookable.end) - duration)
    if last < first:
        return []
    end = last + duration
    table = table_for(rules, first, end)
    allowed = clip_spans(open_spans(rules, table, first, end), first, end)
    if not allowed:
        return []
    before, after = slot_rules.buffer_before * MINUTE, slot_rules.buffer_after * MINUTE
    free = subtract_spans(allowed, busy_spans(busy, allowed[0][0], allowed[-1][1], before, after))
    return _intervals(grid_runs(table, slot_rules.increment * MINUTE, free, duration), slot_rules)


def _intervals(runs: list[range], slot_rules: SlotRules) -> list[Interval]:
    step, length = timedelta(minutes=slot_rules.increment), timedelta(minutes=slot_rules.duration)
    slots: list[Interval] = []
    for run in runs:
        start = from_seconds(run.start)
        for _ in run:
            slots.append(unchecked_interval(start, start + length))
            start += step
    return slots
