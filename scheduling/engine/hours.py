"""Open hours: weekly wall-clock rules turned into UTC instants, correct across DST changes.

A 09:00-17:00 day stays 09:00-17:00 on the wall clock whatever the offset does. Where the wall
clock is not one-to-one, the choices are deliberate:

* a wall time that does not exist (spring-forward gap) maps to the first instant after the gap,
  so a range starting or ending inside the gap is shortened, never shifted past it;
* a repeated wall time (fall-back) maps to its FIRST occurrence when it starts a range and its
  SECOND when it ends one, so the range covers every instant whose wall clock is inside it;
* 24:00 is the first instant of the next local date (its first occurrence, should midnight
  itself repeat), so a day's hours never spill into the next day's.
"""

from __future__ import annotations

from datetime import datetime

from scheduling.engine.epoch import DAY, MINUTE, ceil_seconds, floor_seconds, from_seconds, require_aware
from scheduling.engine.interval import Interval
from scheduling.engine.offsets import OffsetTable, local_date
from scheduling.engine.spans import clip_spans, merge_spans
from scheduling.engine.weekly import MINUTES_PER_DAY, WeeklyRules

# Local dates are padded by a day each side (zones are up to 14 h from UTC). The offset table
# must cover every conversion for those dates: the first lies up to two days before the start
# (a day of padding, up to a day of rounding down to midnight) plus any offset change; four
# days leave room for every zone, even one that jumps across the date line.
_TABLE_PAD = 4 * DAY


def table_for(rules: WeeklyRules, start: int, end: int) -> OffsetTable:
    """An offset table good for the open hours of every local date touching [start, end)."""
    return OffsetTable(rules.zone, start - _TABLE_PAD, end + _TABLE_PAD)


def open_spans(rules: WeeklyRules, table: OffsetTable, start: int, end: int) -> list[tuple[int, int]]:
    """Open hours in epoch seconds of every local date touching [start, end) (padded by a day), merged."""
    spans: list[tuple[int, int]] = []
    first_day = table.local(start) // DAY - 1
    last_day = table.local(end) // DAY + 1
    for day in range(first_day, last_day + 1):
        midnight = day * DAY
        for time_range in rules.ranges_on(local_date(day)):
            opens = table.to_utc(midnight + time_range.start * MINUTE, latest=False)
            at_midnight = time_range.end == MINUTES_PER_DAY
            closes = table.to_utc(midnight + time_range.end * MINUTE, latest=not at_midnight)
            if opens < closes:
                spans.append((opens, closes))
    return merge_spans(spans)


def open_hours(rules: WeeklyRules, start: datetime, end: datetime) -> list[Interval]:
    """The instants in [start, end) that fall in the rules' local hours, merged and sorted."""
    start, end = require_aware(start, "start"), require_aware(end, "end")
    if not start < end:
        return []
    low, high = floor_seconds(start), ceil_seconds(end)
    spans = open_spans(rules, table_for(rules, low, high), low, high)
    instants = [(from_seconds(opens), from_seconds(closes)) for opens, closes in spans]
    return [Interval(opens, closes) for opens, closes in clip_spans(instants, start, end)]
