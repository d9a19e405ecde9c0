"""open_hours: weekly wall-clock rules to UTC instants, across DST changes in several zones.

Expected instants are written out in UTC by hand from the zones' rules, not computed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduling.engine import Interval, TimeRange, WeeklyRules, open_hours

NINE_TO_FIVE = (TimeRange(9 * 60, 17 * 60),)
EVERY_DAY = dict.fromkeys(range(7), NINE_TO_FIVE)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def hm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def on_date(zone: str, day: date, start: str, end: str) -> WeeklyRules:
    """Rules open only on ``day``, from ``start`` to ``end`` (wall clock)."""
    return WeeklyRules(zone, {}, {day: (TimeRange(hm(start), hm(end)),)})


def hours_around(rules: WeeklyRules, day: date) -> list[Interval]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return open_hours(rules, start - timedelta(days=2), start + timedelta(days=3))


# (zone, the day before a change, the change day, the day after)
DST_DAYS = [
    ("Europe/Helsinki", date(2024, 3, 30), date(2024, 3, 31), date(2024, 4, 1)),
    ("Europe/Helsinki", date(2024, 10, 26), date(2024, 10, 27), date(2024, 10, 28)),
    ("America/New_York", date(2024, 3, 9), date(2024, 3, 10), date(2024, 3, 11)),
    ("America/New_York", date(2024, 11, 2), date(2024, 11, 3), date(2024, 11, 4)),
    ("Australia/Lord_Howe", date(2024, 4, 6), date(2024, 4, 7), date(2024, 4, 8)),
    ("Australia/Lord_Howe", date(2024, 10, 5), date(2024, 10, 6), date(2024, 10, 7)),
    ("Asia/Kolkata", date(2024, 3, 30), date(2024, 3, 31), date(2024, 4, 1)),
]


@pytest.mark.parametrize(("zone_name", "before", "change", "after"), DST_DAYS)
def test_nine_to_five_stays_nine_to_five_local(zone_name: str, before: date, change: date, after: date) -> None:
    # covers: BOOK-1
    zone = ZoneInfo(zone_name)
    rules = WeeklyRules(zone_name, EVERY_DAY, {})
    found = open_hours(rules, datetime.combine(before, time(), zone), datetime.combine(after, time(23), zone))
    assert [(i.start.astimezone(zone), i.end.astimezone(zone)) for i in found] == [
        (datetime.combine(day, time(9), zone), datetime.combine(day, time(17), zone)) for day in (before, change, after)
    ]
    assert all(i.end - i.start == timedelta(hours=8) for i in found)  # the changes happen at night


@pytest.mark.parametrize(
    ("zone", "day", "start", "end", "expected"),
    [
        # Helsinki, 2024-03-31: 03:00 EET (+2) jumps to 04:00 EEST (+3) at 01:00 UTC.
        ("Europe/Helsinki", date(2024, 3, 31), "02:00", "04:00", [(utc(2024, 3, 31, 0), utc(2024, 3, 31, 1))]),
        ("Europe/Helsinki", date(2024, 3, 31), "03:00", "03:30", []),  # wholly inside the gap
        ("Europe/Helsinki", date(2024, 3, 31), "03:30", "05:00", [(utc(2024, 3, 31, 1), utc(2024, 3, 31, 2))]),
        ("Europe/Helsinki", date(2024, 3, 31), "00:00", "09:00", [(utc(2024, 3, 30, 22), utc(2024, 3, 31, 6))]),
        # Helsinki, 2024-10-27: 04:00 EEST (+3) falls back to 03:00 EET (+2) at 01:00 UTC; 03:00-04:00 twice.
        ("Europe/Helsinki", date(2024, 10, 27), "03:00", "04:00", [(utc(2024, 10, 27, 0), utc(2024, 10, 27, 2))]),
        (
            "Europe/Helsinki",
            date(2024, 10, 27),
            "02:00",
            "03:30",  # ends at the second 03:30
            [(utc(2024, 10, 26, 23), utc(2024, 10, 27, 1, 30))],
        ),
        (
            "Europe/Helsinki",
            date(2024, 10, 27),
            "03:30",  # starts at the first 03:30
            "05:00",
            [(utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 3))],
        ),
        ("Europe/Helsinki", date(2024, 10, 27), "00:00", "09:00", [(utc(2024, 10, 26, 21), utc(2024, 10, 27, 7))]),
        # New York, 2024-03-10: 02:00 EST (-5) jumps to 03:00 EDT (-4) at 07:00 UTC.
        ("America/New_York", date(2024, 3, 10), "02:00", "03:00", []),
        ("America/New_York", date(2024, 3, 10), "01:00", "03:00", [(utc(2024, 3, 10, 6), utc(2024, 3, 10, 7))]),
        ("America/New_York", date(2024, 3, 10), "02:30", "04:00", [(utc(2024, 3, 10, 7), utc(2024, 3, 10, 8))]),
        # New York, 2024-11-03: 02:00 EDT (-4) falls back to 01:00 EST (-5) at 06:00 UTC; 01:00-02:00 twice.
        ("America/New_York", date(2024, 11, 3), "01:00", "02:00", [(utc(2024, 11, 3, 5), utc(2024, 11, 3, 7))]),
        # 01:00 is itself repeated, so a range ending there ends at its second occurrence.
        ("America/New_York", date(2024, 11, 3), "00:00", "01:00", [(utc(2024, 11, 3, 4), utc(2024, 11, 3, 6))]),
        ("America/New_York", date(2024, 11, 3), "02:00", "03:00", [(utc(2024, 11, 3, 7), utc(2024, 11, 3, 8))]),
        # Lord Howe, 2024-04-07: 02:00 (+11) falls back 30 minutes to 01:30 (+10:30) at 15:00 UTC the day before.
        ("Australia/Lord_Howe", date(2024, 4, 7), "01:00", "02:00", [(utc(2024, 4, 6, 14), utc(2024, 4, 6, 15, 30))]),
        (
            "Australia/Lord_Howe",
            date(2024, 4, 7),
            "01:45",
            "03:00",
            [(utc(2024, 4, 6, 14, 45), utc(2024, 4, 6, 16, 30))],
        ),
        # Lord Howe, 2024-10-06: 02:00 (+10:30) jumps 30 minutes to 02:30 (+11) at 15:30 UTC the day before.
        (
            "Australia/Lord_Howe",
            date(2024, 10, 6),
            "02:00",
            "03:00",
            [(utc(2024, 10, 5, 15, 30), utc(2024, 10, 5, 16))],
        ),
        ("Australia/Lord_Howe", date(2024, 10, 6), "02:10", "02:20", []),
        (
            "Australia/Lord_Howe",
            date(2024, 10, 6),
            "01:00",
            "02:15",
            [(utc(2024, 10, 5, 14, 30), utc(2024, 10, 5, 15, 30))],
        ),
        # Kolkata: +05:30 all year.
        ("Asia/Kolkata", date(2024, 3, 31), "09:00", "17:00", [(utc(2024, 3, 31, 3, 30), utc(2024, 3, 31, 11, 30))]),
        ("Asia/Kolkata", date(2024, 3, 31), "00:00", "24:00", [(utc(2024, 3, 30, 18, 30), utc(2024, 3, 31, 18, 30))]),
    ],
)
def test_ranges_touching_a_change_follow_the_documented_choice(
    zone: str, day: date, start: str, end: str, expected: list[tuple[datetime, datetime]]
) -> None:
    # covers: BOOK-1
    assert hours_around(on_date(zone, day, start, end), day) == [Interval(s, e) for s, e in expected]


def test_24_00_is_the_next_days_midnight() -> None:
    # covers: BOOK-1
    zone = "Europe/Helsinki"
    evening, night = (TimeRange(hm("20:00"), 1440),), (TimeRange(0, hm("02:00")),)
    # Saturday before spring-forward: midnight is still +2; the Sunday morning joins on.
    rules = WeeklyRules(zone, {5: evening, 6: night}, {})
    assert hours_around(rules, date(2024, 3, 30)) == [Interval(utc(2024, 3, 30, 18), utc(2024, 3, 31, 0))]
    saturday_only = WeeklyRules(zone, {5: evening}, {})
    assert hours_around(saturday_only, date(2024, 3, 30)) == [Interval(utc(2024, 3, 30, 18), utc(2024, 3, 30, 22))]


def test_24_00_on_a_day_whose_midnight_repeats_ends_at_the_first_midnight() -> None:
    # covers: BOOK-1
    # Havana, 2024-11-03: 01:00 CDT (-4) falls back to 00:00 CST (-5) at 05:00 UTC; midnight happens twice.
    # Saturday's 20:00-24:00 ends where Sunday begins, at the first midnight.
    rules = on_date("America/Havana", date(2024, 11, 2), "20:00", "24:00")
    assert hours_around(rules, date(2024, 11, 2)) == [Interval(utc(2024, 11, 3, 0), utc(2024, 11, 3, 4))]
    # Havana, 2024-03-10: 00:00 CST jumps to 01:00 CDT at 05:00 UTC; Sunday begins at 01:00.
    rules = on_date("America/Havana", date(2024, 3, 9), "22:00", "24:00")
    assert hours_around(rules, date(2024, 3, 9)) == [Interval(utc(2024, 3, 10, 3), utc(2024, 3, 10, 5))]
    rules = on_date("America/Havana", date(2024, 3, 10), "00:00", "02:00")
    assert hours_around(rules, date(2024, 3, 10)) == [Interval(utc(2024, 3, 10, 5), utc(2024, 3, 10, 6))]


def test_overrides_replace_and_close_days() -> None:
    # covers: BOOK-1
    zone = ZoneInfo("Europe/Helsinki")
    weekdays = dict.fromkeys(range(5), NINE_TO_FIVE)
    rules = WeeklyRules(
        "Europe/Helsinki",
        weekdays,
        {
            date(2024, 5, 7): (TimeRange(hm("12:00"), hm("13:00")), TimeRange(hm("15:00"), hm("16:00"))),  # Tuesday
            date(2024, 5, 8): (),  # Wednesday closed
            date(2024, 5, 11): (TimeRange(hm("10:00"), hm("11:00")),),  # Saturday opened
        },
    )
    found = open_hours(rules, datetime(2024, 5, 6, tzinfo=zone), datetime(2024, 5, 13, tzinfo=zone))
    local = [
        (i.start.astimezone(zone).replace(tzinfo=None), i.end.astimezone(zone).replace(tzinfo=None)) for i in found
    ]
    assert [(s.isoformat(" ", "minutes"), e.strftime("%H:%M")) for s, e in local] == [
        ("2024-05-06 09:00", "17:00"),
        ("2024-05-07 12:00", "13:00"),
        ("2024-05-07 15:00", "16:00"),
        ("2024-05-09 09:00", "17:00"),
        ("2024-05-10 09:00", "17:00"),
        ("2024-05-11 10:00", "11:00"),
    ]


def test_touching_ranges_join_and_results_are_clipped() -> None:
    # covers: BOOK-1
    rules = WeeklyRules("UTC", {0: (TimeRange(hm("09:00"), hm("12:00")), TimeRange(hm("12:00"), hm("17:00")))}, {})
    monday = utc(2024, 5, 6)
    assert open_hours(rules, monday, monday + timedelta(days=1)) == [Interval(utc(2024, 5, 6, 9), utc(2024, 5, 6, 17))]
    assert open_hours(rules, utc(2024, 5, 6, 10), utc(2024, 5, 6, 11, 30)) == [
        Interval(utc(2024, 5, 6, 10), utc(2024, 5, 6, 11, 30))
    ]
    assert open_hours(rules, monday, monday) == []


def test_days_are_taken_in_the_rules_zone() -> None:
    # covers: BOOK-1
    # Monday 09:00 in Kiritimati (+14) is Sunday 19:00 UTC; a window on Sunday UTC finds it.
    rules = WeeklyRules("Pacific/Kiritimati", {0: NINE_TO_FIVE}, {})
    assert open_hours(rules, utc(2024, 5, 5), utc(2024, 5, 6)) == [Interval(utc(2024, 5, 5, 19), utc(2024, 5, 6, 0))]
    # Monday 09:00 in Pago Pago (-11) is Monday 20:00 UTC.
    rules = WeeklyRules("Pacific/Pago_Pago", {0: NINE_TO_FIVE}, {})
    assert open_hours(rules, utc(2024, 5, 6), utc(2024, 5, 8)) == [Interval(utc(2024, 5, 6, 20), utc(2024, 5, 7, 4))]


def test_rules_refuse_bad_values() -> None:
    # covers: BOOK-1
    with pytest.raises(ValueError, match="time range"):
        TimeRange(600, 600)
    with pytest.raises(ValueError, match="time range"):
        TimeRange(0, 1441)
    with pytest.raises(ValueError, match="unknown time zone"):
        WeeklyRules("Mars/Olympus_Mons", {}, {})
    with pytest.raises(ValueError, match="weekdays"):
        WeeklyRules("UTC", {7: NINE_TO_FIVE}, {})
    with pytest.raises(ValueError, match="timezone-aware"):
        open_hours(WeeklyRules("UTC", {}, {}), datetime(2024, 5, 6), utc(2024, 5, 7))
