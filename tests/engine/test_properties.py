"""Property tests: the engine against set arithmetic on minutes and against the slow reference."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduling.engine import (
    FixedHorizon,
    Horizon,
    Interval,
    RollingHorizon,
    SlotRules,
    TimeRange,
    WeeklyRules,
    clip,
    free_slots,
    intersect,
    merge,
    open_hours,
    stable_until,
    subtract,
)
from tests.engine import reference

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASE = datetime(2024, 5, 6, tzinfo=UTC)
ZONES = [
    "Europe/Helsinki",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Havana",  # changes at midnight
    "America/Santiago",  # falls back from 24:00 to 23:00
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Europe/London",
    "UTC",
]
FIRST_DAY, LAST_DAY = date(2024, 1, 1), date(2026, 12, 31)

# --- the interval algebra against sets of minutes ---

minute_intervals = st.lists(st.tuples(st.integers(0, 200), st.integers(1, 40)), max_size=8).map(
    lambda pairs: [Interval(BASE + timedelta(minutes=s), BASE + timedelta(minutes=s + n)) for s, n in pairs]
)


def minutes(intervals: list[Interval]) -> set[int]:
    return {
        minute
        for interval in intervals
        for minute in range(
            (interval.start - BASE) // timedelta(minutes=1), (interval.end - BASE) // timedelta(minutes=1)
        )
    }


def normalised(intervals: list[Interval]) -> bool:
    return all(a.end < b.start for a, b in pairwise(intervals))


@given(minute_intervals, minute_intervals, st.integers(0, 240), st.integers(0, 240))
@settings(max_examples=300)
def test_interval_algebra_matches_sets_of_minutes(a: list[Interval], b: list[Interval], lo: int, hi: int) -> None:
    # covers: BOOK-1
    results = {
        "merge": (merge(a), minutes(a)),
        "subtract": (subtract(a, b), minutes(a) - minutes(b)),
        "intersect": (intersect(a, b), minutes(a) & minutes(b)),
        "clip": (clip(a, BASE + timedelta(minutes=lo), BASE + timedelta(minutes=hi)), minutes(a) & set(range(lo, hi))),
    }
    for name, (result, expected) in results.items():
        assert minutes(result) == expected, name
        assert normalised(result), name


# --- scenarios for free_slots ---


@cache
def change_dates(zone_name: str) -> list[date]:
    """Local dates in 2024-2026 on which the zone's offset changes (checked at every local midnight)."""
    zone, found = ZoneInfo(zone_name), []
    day = FIRST_DAY
    previous = datetime(day.year, day.month, day.day, tzinfo=zone).utcoffset()
    while day < LAST_DAY:
        day += timedelta(days=1)
        offset = datetime(day.year, day.month, day.day, 12, tzinfo=zone).utcoffset()
        if offset != previous:
            found.append(day)
        previous = offset
    return found or [FIRST_DAY]


BOUNDARIES = st.one_of(
    st.sampled_from([0, 30, 60, 90, 120, 150, 180, 210, 240, 270, 1380, 1410, 1440]),  # where changes happen
    st.integers(0, 1440 // 5).map(lambda n: n * 5),
)
day_ranges = st.lists(BOUNDARIES, min_size=2, max_size=6, unique=True).map(
    lambda values: tuple(TimeRange(a, b) for a, b in zip(sorted(values)[::2], sorted(values)[1::2], strict=False))
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[WeeklyRules, SlotRules, list[Interval], datetime, datetime, datetime]:
    zone_name = draw(st.sampled_from(ZONES))
    zone = ZoneInfo(zone_name)
    near_a_change = st.sampled_from(change_dates(zone_name))
    anchor = draw(st.one_of(near_a_change, near_a_change, st.dates(FIRST_DAY, LAST_DAY)))
    midnight = datetime(anchor.year, anchor.month, anchor.day, tzinfo=UTC)
    now = midnight - timedelta(minutes=draw(st.integers(0, 3 * 1440)), microseconds=draw(st.integers(0, 10**6 - 1)))
    window_start = midnight + timedelta(
        minutes=draw(st.integers(-1440, 1440)), seconds=draw(st.sampled_from([0, 0, 17]))
    )
    length = draw(st.sampled_from([-30, 0, 45, 180, 720, 1440, 2000, 2880, 4000, 5760]))
    window_end = window_start + timedelta(minutes=length)

    local_dates = [anchor + timedelta(days=n) for n in range(-3, 6)]
    weekly = dict(enumerate(draw(st.lists(day_ranges, min_size=7, max_size=7))))
    overrides = draw(st.dictionaries(st.sampled_from(local_dates), day_ranges, max_size=3))

    horizon: Horizon = draw(
        st.one_of(
            st.sampled_from([0, 1, 3, 4, 5, 6, 7, 8, 9]).map(RollingHorizon),
            st.tuples(st.sampled_from(local_dates[2:5]), st.integers(0, 5)).map(
                lambda pair: FixedHorizon(pair[0], pair[0] + timedelta(days=pair[1]))
            ),
        )
    )
    slot_rules = SlotRules(
        duration=draw(st.sampled_from([5, 15, 20, 30, 45, 60, 90, 120, 240])),
        increment=draw(st.sampled_from([5, 10, 15, 20, 25, 30, 45, 60, 90])),
        buffer_before=draw(st.sampled_from([0, 0, 5, 15, 30, 60])),
        buffer_after=draw(st.sampled_from([0, 0, 5, 10, 45])),
        minimum_notice=draw(st.sampled_from([0, 0, 0, 15, 60, 240, 1440])),
        horizon=horizon,
    )
    busy = []
    for _ in range(draw(st.integers(0, 12))):
        start = window_start + timedelta(
            minutes=draw(st.integers(-2 * 1440, 5 * 1440)), microseconds=draw(st.sampled_from([0, 0, 0, 1, 999_999]))
        )
        end = start + timedelta(minutes=draw(st.integers(1, 12 * 60)))
        in_zone = draw(st.booleans())
        busy.append(Interval(start.astimezone(zone), end.astimezone(zone)) if in_zone else Interval(start, end))
    return WeeklyRules(zone_name, weekly, overrides), slot_rules, busy, window_start, window_end, now


@given(scenarios())
@SETTINGS
def test_free_slots_equal_the_naive_reference(
    scenario: tuple[WeeklyRules, SlotRules, list[Interval], datetime, datetime, datetime],
) -> None:
    # covers: BOOK-1
    assert free_slots(*scenario) == reference.free_slots(*scenario)


@given(scenarios())
@SETTINGS
def test_free_slots_avoid_busy_time_and_stay_in_open_hours(
    scenario: tuple[WeeklyRules, SlotRules, list[Interval], datetime, datetime, datetime],
) -> None:
    # covers: BOOK-1
    rules, slot_rules, busy, window_start, window_end, now = scenario
    slots = free_slots(*scenario)
    zone = ZoneInfo(rules.timezone)
    hours = open_hours(rules, window_start - timedelta(days=1), window_end + timedelta(days=1))
    before, after = timedelta(minutes=slot_rules.buffer_before), timedelta(minutes=slot_rules.buffer_after)
    assert slots == sorted(set(slots))
    for slot in slots:
        assert slot.end - slot.start == timedelta(minutes=slot_rules.duration)
        assert window_start <= slot.start < window_end
        assert slot.start >= now + timedelta(minutes=slot_rules.minimum_notice)
        wall = slot.start.astimezone(zone)
        assert (wall.hour * 60 + wall.minute) % slot_rules.increment == 0
        assert wall.second == 0
        assert any(h.start <= slot.start and slot.end <= h.end for h in hours)  # (2) inside open hours
        assert not any(b.start < slot.end + after and slot.start - before < b.end for b in busy)  # (1)


@given(scenarios())
@SETTINGS
def test_open_hours_equal_the_reference(
    scenario: tuple[WeeklyRules, SlotRules, list[Interval], datetime, datetime, datetime],
) -> None:
    # covers: BOOK-1
    rules, _, _, window_start, window_end, _ = scenario
    end = max(window_end, window_start + timedelta(minutes=1))
    expected = [
        Interval(max(opens, window_start), min(closes, end))
        for opens, closes in reference.open_intervals(rules, window_start, end)
        if opens < end and window_start < closes
    ]
    assert open_hours(rules, window_start, end) == expected


@given(scenarios(), st.floats(0, 1))
@SETTINGS
def test_slots_stay_the_same_until_stable_until_and_not_after(
    scenario: tuple[WeeklyRules, SlotRules, list[Interval], datetime, datetime, datetime], fraction: float
) -> None:
    # covers: BOOK-1, SUB-1
    rules, slot_rules, busy, window_start, window_end, now = scenario
    slots = free_slots(*scenario)
    until = stable_until(rules, slot_rules, now, slots)
    if until is None:
        assert isinstance(slot_rules.horizon, FixedHorizon)
        assert slots == []
        return
    assert until > now
    tick = timedelta(microseconds=1)
    for moment in (until - tick, now + (until - tick - now) * fraction):
        assert free_slots(rules, slot_rules, busy, window_start, window_end, moment) == slots
    # At ``until`` the first slot has gone, or the rolling horizon has opened the next day.
    later = free_slots(rules, slot_rules, busy, window_start, window_end, until)
    assert later != slots or (slots[:1] == later[:1] and not isinstance(slot_rules.horizon, FixedHorizon))
