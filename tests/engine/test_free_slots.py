"""free_slots and bookable_range: examples of each rule, in UTC and in zones with DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduling.engine import (
    FixedHorizon,
    Interval,
    RollingHorizon,
    SlotRules,
    TimeRange,
    WeeklyRules,
    bookable_range,
    free_slots,
    open_hours,
)

HELSINKI = ZoneInfo("Europe/Helsinki")
MONDAY = date(2024, 5, 6)  # Helsinki is +3 in May
LONG_AGO = datetime(2024, 4, 1, tzinfo=UTC)


def hm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def ranges(*pairs: tuple[str, str]) -> tuple[TimeRange, ...]:
    return tuple(TimeRange(hm(start), hm(end)) for start, end in pairs)


def weekdays(zone: str, *pairs: tuple[str, str]) -> WeeklyRules:
    return WeeklyRules(zone, dict.fromkeys(range(5), ranges(*pairs)), {})


def local(zone: ZoneInfo, day: date, text: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(text), zone)


def starts(slots: list[Interval], zone: ZoneInfo = HELSINKI) -> list[str]:
    return [slot.start.astimezone(zone).strftime("%H:%M") for slot in slots]


def day_slots(
    rules: WeeklyRules, slot_rules: SlotRules, busy: list[Interval], day: date = MONDAY, now: datetime | None = None
) -> list[Interval]:
    """Slots on one local day, asked for the day before unless ``now`` is given."""
    zone = ZoneInfo(rules.timezone)
    start = datetime.combine(day, time(), zone)
    return free_slots(rules, slot_rules, busy, start, start + timedelta(days=1), now or start - timedelta(days=1))


def busy_local(day: date, start: str, end: str, zone: ZoneInfo = HELSINKI) -> Interval:
    return Interval(local(zone, day, start), local(zone, day, end))


def test_every_grid_start_when_nothing_is_busy() -> None:
    # covers: BOOK-1
    slots = day_slots(weekdays("Europe/Helsinki", ("09:00", "11:00")), SlotRules(duration=30, increment=15), [])
    assert starts(slots) == ["09:00", "09:15", "09:30", "09:45", "10:00", "10:15", "10:30"]
    assert all(slot.end - slot.start == timedelta(minutes=30) for slot in slots)
    assert all(slot.start.tzinfo is UTC for slot in slots)


def test_buffers_keep_time_free_around_busy_intervals() -> None:
    # covers: BOOK-1
    rules = weekdays("Europe/Helsinki", ("09:00", "17:00"))
    busy = [busy_local(MONDAY, "12:00", "13:00")]
    plain = day_slots(rules, SlotRules(duration=30, increment=15), busy)
    assert {"11:30", "13:00"} <= set(starts(plain))
    assert "12:00" not in starts(plain)
    buffered = starts(day_slots(rules, SlotRules(duration=30, increment=15, buffer_before=15, buffer_after=10), busy))
    # a meeting needs 10 min free after it: 11:15-11:45 ends 11:55, fine; 11:30-12:00 would need 12:10.
    assert "11:15" in buffered
    assert "11:30" not in buffered
    # and 15 min free before it: 13:00 would start right after the busy hour; 13:15 is the first.
    assert "13:00" not in buffered
    assert "13:15" in buffered


def test_buffers_may_fall_outside_open_hours() -> None:
    # covers: BOOK-1
    rules = weekdays("Europe/Helsinki", ("09:00", "10:00"))
    assert starts(day_slots(rules, SlotRules(duration=60, increment=30, buffer_before=30, buffer_after=30), [])) == [
        "09:00"
    ]


def test_minimum_notice_counts_from_now() -> None:
    # covers: BOOK-1
    rules = weekdays("Europe/Helsinki", ("09:00", "12:00"))
    now = local(HELSINKI, MONDAY, "09:07")
    slots = day_slots(rules, SlotRules(duration=30, increment=15, minimum_notice=60), [], now=now)
    assert starts(slots)[0] == "10:15"  # 10:07 is the earliest start; the grid's next point is 10:15
    assert day_slots(rules, SlotRules(duration=30, increment=15, minimum_notice=180), [], now=now) == []


def test_rolling_horizon_ends_at_the_local_end_of_the_day() -> None:
    # covers: BOOK-1
    rules = WeeklyRules("Europe/Helsinki", dict.fromkeys(range(7), ranges(("09:00", "10:00"))), {})
    slot_rules = SlotRules(duration=60, increment=60, horizon=RollingHorizon(days=1))
    now = datetime(2024, 5, 5, 22, 30, tzinfo=UTC)  # already Monday 01:30 in Helsinki: today is Monday
    assert bookable_range(rules, slot_rules, now) == Interval(now, local(HELSINKI, date(2024, 5, 8), "00:00"))
    start = local(HELSINKI, MONDAY, "00:00")
    slots = free_slots(rules, slot_rules, [], start, start + timedelta(days=7), now)
    assert [slot.start.astimezone(HELSINKI).date() for slot in slots] == [MONDAY, date(2024, 5, 7)]
    today_only = SlotRules(duration=60, increment=60, horizon=RollingHorizon(days=0))
    assert len(free_slots(rules, today_only, [], start, start + timedelta(days=7), now)) == 1


def test_a_slot_must_end_by_the_horizon() -> None:
    # covers: BOOK-1
    rules = WeeklyRules("Europe/Helsinki", dict.fromkeys(range(7), ranges(("00:00", "24:00"))), {})
    slot_rules = SlotRules(duration=60, increment=30, horizon=RollingHorizon(days=0))
    now = local(HELSINKI, MONDAY, "21:00")
    slots = free_slots(rules, slot_rules, [], now, now + timedelta(days=2), now)
    assert starts(slots) == ["21:00", "21:30", "22:00", "22:30", "23:00"]  # 23:30 would end after midnight


def test_fixed_horizon_allows_only_its_local_dates() -> None:
    # covers: BOOK-1
    rules = WeeklyRules("Europe/Helsinki", dict.fromkeys(range(7), ranges(("09:00", "10:00"))), {})
    slot_rules = SlotRules(duration=60, increment=60, horizon=FixedHorizon(date(2024, 5, 7), date(2024, 5, 8)))
    start = local(HELSINKI, MONDAY, "00:00")
    slots = free_slots(rules, slot_rules, [], start, start + timedelta(days=7), LONG_AGO)
    assert [slot.start.astimezone(HELSINKI).date() for slot in slots] == [date(2024, 5, 7), date(2024, 5, 8)]
    assert bookable_range(rules, slot_rules, LONG_AGO) == Interval(
        local(HELSINKI, date(2024, 5, 7), "00:00"), local(HELSINKI, date(2024, 5, 9), "00:00")
    )
    # once the last date has passed nothing is bookable
    assert bookable_range(rules, slot_rules, local(HELSINKI, date(2024, 5, 9), "00:00")) is None
    assert free_slots(rules, slot_rules, [], start, start + timedelta(days=7), start + timedelta(days=3)) == []


def test_fixed_horizon_still_applies_the_minimum_notice() -> None:
    # covers: BOOK-1
    rules = WeeklyRules("UTC", {}, {})
    slot_rules = SlotRules(30, 30, minimum_notice=90, horizon=FixedHorizon(date(2024, 5, 6), date(2024, 5, 6)))
    now = datetime(2024, 5, 6, 8, tzinfo=UTC)
    assert bookable_range(rules, slot_rules, now) == Interval(
        now + timedelta(minutes=90), datetime(2024, 5, 7, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("increment", "expected"),
    [
        (15, ["09:15", "09:30", "09:45", "10:00", "10:15", "10:30"]),
        (20, ["09:20", "09:40", "10:00", "10:20"]),
        (25, ["09:10", "09:35", "10:00", "10:25"]),  # counted from midnight: 09:10 is 22 x 25 minutes
        (60, ["10:00"]),
    ],
)
def test_increments_are_counted_from_local_midnight(increment: int, expected: list[str]) -> None:
    # covers: BOOK-1
    rules = weekdays("Europe/Helsinki", ("09:10", "11:00"))
    assert starts(day_slots(rules, SlotRules(duration=30, increment=increment), [])) == expected


@pytest.mark.parametrize("zone_name", ["Asia/Kolkata", "Australia/Lord_Howe", "Asia/Kathmandu", "America/St_Johns"])
def test_quarter_hours_are_local_quarter_hours_at_odd_offsets(zone_name: str) -> None:
    # covers: BOOK-1
    zone = ZoneInfo(zone_name)
    rules = weekdays(zone_name, ("09:00", "10:00"))
    slots = day_slots(rules, SlotRules(duration=30, increment=15), [])
    assert starts(slots, zone) == ["09:00", "09:15", "09:30"]


@pytest.mark.parametrize(
    ("zone_name", "day"),
    [
        ("Europe/Helsinki", date(2024, 3, 31)),
        ("Europe/Helsinki", date(2024, 10, 27)),
        ("America/New_York", date(2024, 3, 10)),
        ("America/New_York", date(2024, 11, 3)),
        ("Australia/Lord_Howe", date(2024, 4, 7)),
        ("Australia/Lord_Howe", date(2024, 10, 6)),
    ],
)
def test_the_grid_stays_on_the_wall_clock_on_dst_days(zone_name: str, day: date) -> None:
    # covers: BOOK-1
    zone = ZoneInfo(zone_name)
    rules = WeeklyRules(zone_name, dict.fromkeys(range(7), ranges(("09:00", "17:00"))), {})
    slots = day_slots(rules, SlotRules(duration=60, increment=60), [], day=day)
    assert starts(slots, zone) == [f"{hour:02d}:00" for hour in range(9, 17)]


def test_a_repeated_hour_offers_both_of_its_starts() -> None:
    # covers: BOOK-1
    zone = ZoneInfo("America/New_York")
    rules = WeeklyRules("America/New_York", {6: ranges(("00:00", "03:00"))}, {})
    slots = day_slots(rules, SlotRules(duration=30, increment=30), [], day=date(2024, 11, 3))
    assert starts(slots, zone) == ["00:00", "00:30", "01:00", "01:30", "01:00", "01:30", "02:00", "02:30"]
    assert [slot.start.hour for slot in slots] == [4, 4, 5, 5, 6, 6, 7, 7]  # four real hours, in UTC


def test_a_skipped_hour_offers_nothing_inside_it() -> None:
    # covers: BOOK-1
    zone = ZoneInfo("America/New_York")
    rules = WeeklyRules("America/New_York", {6: ranges(("01:00", "04:00"))}, {})
    slots = day_slots(rules, SlotRules(duration=30, increment=30), [], day=date(2024, 3, 10))
    assert starts(slots, zone) == ["01:00", "01:30", "03:00", "03:30"]
    # 01:30-02:00 EST ends at 03:00 EDT, the same instant: the range is continuous in real time
    assert slots[1].end == slots[2].start


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (15, ["09:00", "09:15", "09:30", "09:45", "10:15", "10:30", "10:45"]),
        (45, ["09:00", "09:15", "10:15"]),
        (60, ["09:00"]),
        (90, []),
    ],
)
def test_several_durations_around_a_busy_quarter(duration: int, expected: list[str]) -> None:
    # covers: BOOK-1
    rules = weekdays("Europe/Helsinki", ("09:00", "11:00"))
    busy = [busy_local(MONDAY, "10:00", "10:15")]
    assert starts(day_slots(rules, SlotRules(duration=duration, increment=15), busy)) == expected


def test_a_busy_interval_spanning_days_blocks_all_of_them() -> None:
    # covers: BOOK-1
    rules = WeeklyRules("Europe/Helsinki", dict.fromkeys(range(7), ranges(("09:00", "17:00"))), {})
    busy = [Interval(local(HELSINKI, MONDAY, "15:00"), local(HELSINKI, date(2024, 5, 8), "10:00"))]
    start = local(HELSINKI, MONDAY, "00:00")
    slots = free_slots(rules, SlotRules(60, 60), busy, start, start + timedelta(days=3), LONG_AGO)
    by_day = {
        day: [s for s in slots if s.start.astimezone(HELSINKI).date() == day] for day in (MONDAY, date(2024, 5, 7))
    }
    assert starts(by_day[MONDAY]) == ["09:00", "10:00", "11:00", "12:00", "13:00", "14:00"]
    assert by_day[date(2024, 5, 7)] == []
    assert starts(slots)[-7:] == ["10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]


def test_a_slot_may_not_straddle_two_open_intervals() -> None:
    # covers: BOOK-1
    split = weekdays("Europe/Helsinki", ("09:00", "12:00"), ("13:00", "15:00"))
    assert starts(day_slots(split, SlotRules(duration=60, increment=30), [])) == [
        "09:00",
        "09:30",
        "10:00",
        "10:30",
        "11:00",
        "13:00",
        "13:30",
        "14:00",
    ]
    touching = weekdays("Europe/Helsinki", ("09:00", "12:00"), ("12:00", "13:00"))
    assert "11:30" in starts(day_slots(touching, SlotRules(duration=60, increment=30), []))


def test_a_slot_may_run_across_midnight_when_the_hours_do() -> None:
    # covers: BOOK-1
    rules = WeeklyRules("Europe/Helsinki", {0: ranges(("22:00", "24:00")), 1: ranges(("00:00", "01:00"))}, {})
    assert starts(day_slots(rules, SlotRules(duration=90, increment=30), [])) == ["22:00", "22:30", "23:00", "23:30"]


def test_window_clips_starts_not_ends() -> None:
    # covers: BOOK-1
    rules = weekdays("Europe/Helsinki", ("09:00", "17:00"))
    start, end = local(HELSINKI, MONDAY, "10:10"), local(HELSINKI, MONDAY, "11:00")
    slots = free_slots(rules, SlotRules(duration=60, increment=15), [], start, end, LONG_AGO)
    assert starts(slots) == ["10:15", "10:30", "10:45"]  # 10:45-11:45 ends after the window: still offered
    assert free_slots(rules, SlotRules(60, 15), [], end, start, LONG_AGO) == []


def test_busy_outside_the_window_still_counts_with_buffers() -> None:
    # covers: BOOK-1
    rules = weekdays("Europe/Helsinki", ("09:00", "17:00"))
    busy = [busy_local(MONDAY, "08:00", "09:30")]
    start = local(HELSINKI, MONDAY, "09:00")
    slots = free_slots(rules, SlotRules(30, 30, buffer_before=30), busy, start, start + timedelta(hours=2), LONG_AGO)
    assert starts(slots) == ["10:00", "10:30"]


def test_unsorted_overlapping_busy_in_any_zone() -> None:
    # covers: BOOK-1
    rules = weekdays("Europe/Helsinki", ("09:00", "12:00"))
    new_york = ZoneInfo("America/New_York")
    busy = [
        busy_local(MONDAY, "11:00", "11:30"),
        Interval(datetime(2024, 5, 6, 2, 30, tzinfo=new_york), datetime(2024, 5, 6, 3, 15, tzinfo=new_york)),  # 09:30
        busy_local(MONDAY, "09:45", "10:00"),
    ]
    assert starts(day_slots(rules, SlotRules(30, 15), busy)) == ["09:00", "10:15", "10:30", "11:30"]


def test_sub_second_busy_edges_are_respected() -> None:
    # covers: BOOK-1
    rules = weekdays("Europe/Helsinki", ("09:00", "11:00"))
    ends_just_after = [Interval(local(HELSINKI, MONDAY, "09:00"), local(HELSINKI, MONDAY, "10:00:00.000001"))]
    assert starts(day_slots(rules, SlotRules(30, 30), ends_just_after)) == ["10:30"]
    starts_just_before = [Interval(local(HELSINKI, MONDAY, "10:29:59.999999"), local(HELSINKI, MONDAY, "11:00"))]
    assert starts(day_slots(rules, SlotRules(30, 30), starts_just_before)) == ["09:00", "09:30"]


def test_slots_avoid_busy_with_buffers_and_stay_in_open_hours() -> None:
    # covers: BOOK-1
    rules = WeeklyRules(
        "America/New_York", {0: ranges(("08:00", "12:00"), ("13:00", "18:00")), 6: ranges(("00:00", "04:00"))}, {}
    )
    slot_rules = SlotRules(duration=45, increment=15, buffer_before=10, buffer_after=20)
    start = datetime(2024, 10, 28, tzinfo=UTC)
    busy = [
        Interval(start + timedelta(minutes=37 * n), start + timedelta(minutes=37 * n + 23)) for n in range(0, 400, 3)
    ]
    slots = free_slots(rules, slot_rules, busy, start, start + timedelta(days=10), start)
    hours = open_hours(rules, start - timedelta(days=1), start + timedelta(days=11))
    assert slots
    for slot in slots:
        assert any(h.start <= slot.start and slot.end <= h.end for h in hours)
        guarded = Interval(slot.start - timedelta(minutes=10), slot.end + timedelta(minutes=20))
        assert not any(b.start < guarded.end and guarded.start < b.end for b in busy)
    assert slots == sorted(set(slots))


def test_bookable_range_is_none_when_empty() -> None:
    # covers: BOOK-1
    rules = WeeklyRules("UTC", {}, {})
    now = datetime(2024, 5, 6, 23, tzinfo=UTC)
    assert bookable_range(rules, SlotRules(30, 30, minimum_notice=60, horizon=RollingHorizon(0)), now) is None
    assert bookable_range(rules, SlotRules(30, 30, minimum_notice=59, horizon=RollingHorizon(0)), now) == Interval(
        now + timedelta(minutes=59), datetime(2024, 5, 7, tzinfo=UTC)
    )


def test_bad_inputs_are_refused() -> None:
    # covers: BOOK-1
    rules = weekdays("UTC", ("09:00", "17:00"))
    aware = datetime(2024, 5, 6, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        free_slots(rules, SlotRules(30, 30), [], datetime(2024, 5, 6), aware, aware)
    with pytest.raises(ValueError, match="timezone-aware"):
        free_slots(rules, SlotRules(30, 30), [], aware, aware + timedelta(days=1), datetime(2024, 5, 6))
    with pytest.raises(ValueError, match="positive"):
        SlotRules(0, 30)
    with pytest.raises(ValueError, match="positive"):
        SlotRules(30, 0)
    with pytest.raises(ValueError, match="negative"):
        SlotRules(30, 30, buffer_before=-5)
    with pytest.raises(ValueError, match="days"):
        RollingHorizon(-1)
    with pytest.raises(ValueError, match="first <= last"):
        FixedHorizon(date(2024, 5, 7), date(2024, 5, 6))
