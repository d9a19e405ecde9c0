"""An obviously correct, slow free-slot finder to check the engine against.

It shares no code with the engine: wall times are resolved by probing ``zoneinfo`` with both
``fold`` values, candidate starts are enumerated grid step by grid step on every local day, and
every candidate is checked against every busy interval and every open interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scheduling.engine import FixedHorizon, Interval, SlotRules, WeeklyRules

MINUTE = timedelta(minutes=1)


def occurrences(zone: ZoneInfo, wall: datetime) -> list[datetime]:
    """The UTC instants whose wall clock in ``zone`` reads ``wall`` (naive): none, one or two."""
    found = set()
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall:
            found.add(instant)
    return sorted(found)


def after_gap(zone: ZoneInfo, wall: datetime) -> datetime:
    """For a wall time that does not exist: the first instant whose wall clock is later."""
    guesses = [wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    instant = min(guesses)
    while instant.astimezone(zone).replace(tzinfo=None) <= wall:
        instant += MINUTE
    return instant


def to_utc(zone: ZoneInfo, wall: datetime, *, latest: bool) -> datetime:
    found = occurrences(zone, wall)
    if not found:
        return after_gap(zone, wall)
    return found[-1] if latest else found[0]


def day_start(zone: ZoneInfo, day: date) -> datetime:
    return to_utc(zone, datetime.combine(day, time()), latest=False)


def dates(zone: ZoneInfo, start: datetime, end: datetime) -> list[date]:
    """Local dates of [start, end), a day more each side."""
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def open_intervals(rules: WeeklyRules, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Open hours of every local date touching [start, end) (and a day each side), merged."""
    zone = ZoneInfo(rules.timezone)
    spans = []
    for day in dates(zone, start, end):
        ranges = rules.overrides[day] if day in rules.overrides else rules.weekly.get(day.weekday(), ())
        for time_range in ranges:
            midnight = datetime.combine(day, time())
            opens = to_utc(zone, midnight + time_range.start * MINUTE, latest=False)
            if time_range.end == 1440:
                closes = day_start(zone, day + timedelta(days=1))
            else:
                closes = to_utc(zone, midnight + time_range.end * MINUTE, latest=True)
            if opens < closes:
                spans.append((opens, closes))
    merged: list[tuple[datetime, datetime]] = []
    for opens, closes in sorted(spans):
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return merged


def bookable(rules: WeeklyRules, slot_rules: SlotRules, now: datetime) -> tuple[datetime, datetime]:
    zone = ZoneInfo(rules.timezone)
    earliest = now + slot_rules.minimum_notice * MINUTE
    horizon = slot_rules.horizon
    if isinstance(horizon, FixedHorizon):
        return max(earliest, day_start(zone, horizon.first)), day_start(zone, horizon.last + timedelta(days=1))
    today = now.astimezone(zone).date()
    return earliest, day_start(zone, today + timedelta(days=horizon.days + 1))


def free_slots(
    rules: WeeklyRules,
    slot_rules: SlotRules,
    busy: Sequence[Interval],
    window_start: datetime,
    window_end: datetime,
    now: datetime,
) -> list[Interval]:
    zone = ZoneInfo(rules.timezone)
    duration = slot_rules.duration * MINUTE
    before, after = slot_rules.buffer_before * MINUTE, slot_rules.buffer_after * MINUTE
    earliest, horizon_end = bookable(rules, slot_rules, now)
    hours = open_intervals(rules, window_start, window_end + duration)
    slots = set()
    for day in dates(zone, window_start, window_end):
        for minute in range(0, 1440, slot_rules.increment):
            for start in occurrences(zone, datetime.combine(day, time()) + minute * MINUTE):
                end = start + duration
                if not (window_start <= start < window_end and start >= earliest and end <= horizon_end):
                    continue
                if not any(opens <= start and end <= closes for opens, closes in hours):
                    continue
                if any(b.start < end + after and start - before < b.end for b in busy):
                    continue
                slots.add(Interval(start, end))
    return sorted(slots)
