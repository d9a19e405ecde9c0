"""B2: the slot engine against a naive per-slot overlap checker, on random month-long calendars.

Every calendar is one calendar-month of a random page (weekly hours, overrides, buffers, notice,
horizon, increment) in a random zone; for zones with DST the month contains a change. Each gets
200 and then 1,000 random busy events. ``free_slots`` runs on all of them. Two slow checkers run
on samples, and their answers must match the engine's exactly:

* the naive per-slot overlap checker (the B2 comparator, below): the engine's candidate slots
  with no busy time, each then tested against every busy interval. It shares hours and grid with
  the engine, so the speed ratio measures exactly the sort-and-sweep against a scan per slot;
* the test suite's reference (``tests/engine/reference.py``), which shares nothing with the
  engine: every grid step of every local day resolved with ``zoneinfo`` and checked against
  every open and busy interval. It checks hours, grid and DST at month scale; its speed is
  reported for information.

Engine times are the mean of three runs per calendar, the checkers' one run each; the speed-up is
total checker time over total engine time on the same calendars. A report, not a test: asserts
nothing. ``python -m benchmarks.engine_b2`` prints one line per figure; ``run()`` returns them
(value, unit, comparison, target, passed) with the targets and a verdict. About 40 s.
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from scheduling.engine import (
    FixedHorizon,
    Horizon,
    Interval,
    RollingHorizon,
    SlotRules,
    TimeRange,
    WeeklyRules,
    free_slots,
)
from tests.engine import reference

CALENDARS = 1_000
EVENT_COUNTS = (200, 1_000)
NAIVE_SAMPLE = 400  # calendars per event count that the naive checker also answers
REFERENCE_SAMPLE = 50  # and the (slower still) reference
ENGINE_REPEAT = 3  # engine times are the mean of this many runs
SEED = 20_240_331
TARGET_RATIO = 10.0
TARGET_MS = 2.0
DST_ZONES = [
    "Europe/Helsinki",
    "America/New_York",
    "Australia/Lord_Howe",
    "Europe/London",
    "America/Santiago",
    "Pacific/Chatham",
    "America/Havana",
]
FIXED_ZONES = ["Asia/Kolkata", "Asia/Kathmandu", "America/Sao_Paulo"]
YEARS = (2025, 2026, 2027)

Scenario = tuple[WeeklyRules, SlotRules, list[Interval], datetime, datetime, datetime]


@dataclass(frozen=True)
class Calendar:
    rules: WeeklyRules
    slot_rules: SlotRules
    window_start: datetime
    window_end: datetime
    now: datetime

    def scenario(self, busy: list[Interval]) -> Scenario:
        return self.rules, self.slot_rules, busy, self.window_start, self.window_end, self.now


@cache
def months_with_a_change(zone_name: str) -> list[tuple[int, int]]:
    """(year, month) of every month in YEARS during which the zone's offset changes."""
    zone, months = ZoneInfo(zone_name), []
    for year in YEARS:
        for month in range(1, 13):
            first = date(year, month, 1)
            days = [first + timedelta(days=n) for n in range(32)]
            offsets = {datetime(d.year, d.month, d.day, 12, tzinfo=zone).utcoffset() for d in days if d.month == month}
            if len(offsets) > 1:
                months.append((year, month))
    return months


def minutes(hours: float) -> int:
    return round(hours * 60)


def day_hours(rng: random.Random) -> tuple[TimeRange, ...]:
    kind = rng.random()
    if kind < 0.1:
        return ()
    if kind < 0.2:  # the small hours, where DST changes happen
        return (TimeRange(0, minutes(rng.choice([3, 4, 5]))),)
    opens = minutes(rng.choice([6, 7, 7.5, 8, 8.5, 9, 9.5, 10, 11]))
    closes = min(1440, opens + minutes(rng.choice([4, 6, 7, 8, 8, 9, 10, 12])))
    if rng.random() < 0.4:
        lunch = opens + minutes(rng.choice([3, 3.5, 4]))
        if lunch + 60 < closes:
            return (TimeRange(opens, lunch), TimeRange(lunch + 60, closes))
    return (TimeRange(opens, closes),)


def random_calendar(rng: random.Random) -> Calendar:
    zone_name = rng.choice(DST_ZONES + DST_ZONES + FIXED_ZONES)
    zone = ZoneInfo(zone_name)
    year, month = rng.choice(months_with_a_change(zone_name) or [(rng.choice(YEARS), rng.randint(1, 12))])
    window_start = datetime(year, month, 1, tzinfo=zone)
    window_end = (window_start + timedelta(days=32)).replace(day=1)
    weekly = {day: day_hours(rng) for day in range(7) if day < 5 or rng.random() < 0.3}
    month_days = [date(year, month, day) for day in range(1, 29)]
    overrides = {day: day_hours(rng) for day in rng.sample(month_days, rng.randint(0, 3))}
    horizon: Horizon = RollingHorizon(rng.choice([45, 60, 90]))
    if rng.random() < 0.15:
        horizon = FixedHorizon(date(year, month, rng.randint(1, 5)), date(year, month, rng.randint(20, 28)))
    slot_rules = SlotRules(
        duration=rng.choice([15, 20, 30, 30, 45, 60, 60, 90]),
        increment=rng.choice([5, 10, 15, 15, 20, 30, 30, 60]),
        buffer_before=rng.choice([0, 0, 5, 10, 15]),
        buffer_after=rng.choice([0, 0, 5, 10, 15]),
        minimum_notice=rng.choice([0, 0, 60, 240, 1440]),
        horizon=horizon,
    )
    now = window_start - timedelta(minutes=rng.randint(0, 3 * 1440))
    if rng.random() < 0.1:  # asked mid-month: the notice and the past cut in
        now = window_start + timedelta(days=rng.randint(1, 20), minutes=rng.randint(0, 1439))
    return Calendar(
        WeeklyRules(zone_name, weekly, overrides), slot_rules, window_start, window_end, now.astimezone(UTC)
    )


def random_busy(rng: random.Random, calendar: Calendar, count: int) -> list[Interval]:
    """Busy events around the month: meetings on a 5-minute grid, some odd seconds, a few days long."""
    start = calendar.window_start.astimezone(UTC) - timedelta(days=2)
    span = int((calendar.window_end.astimezone(UTC) - start).total_seconds() // 60) + 1440
    busy = []
    for _ in range(count):
        begins = start + timedelta(minutes=rng.randrange(0, span, 5))
        if rng.random() < 0.05:
            begins += timedelta(seconds=rng.randint(1, 59))
        if rng.random() < 0.02:
            length = timedelta(days=rng.randint(1, 3))
        else:
            length = timedelta(minutes=rng.choice([15, 30, 30, 45, 60, 60, 90, 120, 180]))
        busy.append(Interval(begins, begins + length))
    return busy


def naive_free_slots(
    rules: WeeklyRules,
    slot_rules: SlotRules,
    busy: Sequence[Interval],
    window_start: datetime,
    window_end: datetime,
    now: datetime,
) -> list[Interval]:
    """The naive per-slot overlap checker: every candidate slot tested against every busy interval."""
    before, after = timedelta(minutes=slot_rules.buffer_before), timedelta(minutes=slot_rules.buffer_after)
    candidates = free_slots(rules, slot_rules, [], window_start, window_end, now)
    return [
        slot
        for slot in candidates
        if not any(event.start < slot.end + after and slot.start - before < event.end for event in busy)
    ]


def timed(function: Callable[..., list[Interval]], scenario: Scenario, repeat: int = 1) -> tuple[list[Interval], float]:
    """The answer and the mean wall time in seconds of ``repeat`` runs."""
    answer: list[Interval] = []
    started = time.perf_counter()
    for _ in range(repeat):
        answer = function(*scenario)
    return answer, (time.perf_counter() - started) / repeat


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class Comparison:
    """The engine against one slow checker on a sample of calendars."""

    compared: int = 0
    mismatches: int = 0
    slower: int = 0  # calendars on which the engine took longer
    engine_seconds: float = 0.0
    checker_seconds: float = 0.0

    def add(self, answer: list[Interval], seconds: float, expected: list[Interval], checker: float) -> None:
        self.compared += 1
        self.mismatches += answer != expected
        self.slower += seconds > checker
        self.engine_seconds += seconds
        self.checker_seconds += checker

    @property
    def ratio(self) -> float:
        return self.checker_seconds / self.engine_seconds if self.engine_seconds else math.nan

    @property
    def checker_ms(self) -> float:
        return self.checker_seconds / self.compared * 1000 if self.compared else math.nan


@dataclass
class Level:
    """Everything measured at one number of busy events."""

    events: int
    engine_ms: list[float]
    slots: int
    naive: Comparison
    reference: Comparison


def measure(count: int, calendars: list[Calendar], rng: random.Random, naive: int, ref: int) -> Level:
    """Engine on every calendar; the naive checker on the first ``naive``, the reference on the first ``ref``."""
    level = Level(count, [], 0, Comparison(), Comparison())
    for index, calendar in enumerate(calendars):
        scenario = calendar.scenario(random_busy(rng, calendar, count))
        answer, seconds = timed(free_slots, scenario, repeat=ENGINE_REPEAT)
        level.engine_ms.append(seconds * 1000)
        level.slots += len(answer)
        if index < naive:
            level.naive.add(answer, seconds, *timed(naive_free_slots, scenario))
        if index < ref:
            level.reference.add(answer, seconds, *timed(reference.free_slots, scenario))
    return level


def figure(
    name: str, value: float, unit: str, comparison: str, target: str | None = None, passed: bool | None = None
) -> dict[str, Any]:
    """A figure in the shape of ``benchmarks.Figure``, so registering B2 later is one loop."""
    return {"name": name, "value": value, "unit": unit, "comparison": comparison, "target": target, "passed": passed}


def figures(level: Level) -> list[dict[str, Any]]:
    at = f"at {level.events:,} events"
    naive, ref, engine_ms = level.naive, level.reference, level.engine_ms
    calendars = len(engine_ms)
    return [
        figure(
            f"answers differing {at}",
            naive.mismatches + ref.mismatches,
            "calendars",
            f"naive checker on {naive.compared}, reference on {ref.compared} calendars",
            "0",
            naive.mismatches + ref.mismatches == 0,
        ),
        figure(
            f"speed-up {at}",
            naive.ratio,
            "x",
            f"naive per-slot checker {naive.checker_ms:.1f} ms per calendar, {naive.compared} calendars",
            f">= {TARGET_RATIO:g}x",
            naive.ratio >= TARGET_RATIO,
        ),
        figure(
            f"calendars where the engine was slower {at}",
            naive.slower,
            "calendars",
            f"of {naive.compared}",
            "0 (never slower)",
            naive.slower == 0,
        ),
        figure(
            f"speed-up over the reference {at}",
            ref.ratio,
            "x",
            f"reference {ref.checker_ms:.0f} ms per calendar, {ref.compared} calendars; for information",
        ),
        figure(
            f"engine per calendar-month {at}",
            statistics.fmean(engine_ms),
            "ms",
            f"mean of {calendars} calendars, p95 {percentile(engine_ms, 0.95):.2f} ms, max {max(engine_ms):.2f} ms, "
            f"{level.slots / calendars:.0f} slots per calendar",
            f"<= {TARGET_MS:g} ms",
            statistics.fmean(engine_ms) <= TARGET_MS,
        ),
    ]


def run(
    calendars: int = CALENDARS, naive: int = NAIVE_SAMPLE, ref: int = REFERENCE_SAMPLE, seed: int = SEED
) -> dict[str, Any]:
    """Measure B2: the figures (value, unit, comparison, target, passed) and a verdict."""
    rng = random.Random(seed)
    pages = [random_calendar(rng) for _ in range(calendars)]
    gc.collect()
    measured = [figure for count in EVENT_COUNTS for figure in figures(measure(count, pages, rng, naive, ref))]
    passed = all(item["passed"] is not False for item in measured)
    return {
        "benchmark": "B2",
        "title": "slot engine vs a naive per-slot overlap checker",
        "calendars": calendars,
        "seed": seed,
        "targets": {
            "answers": "identical on every compared calendar",
            "speed-up": f">= {TARGET_RATIO:g}x at 200 and 1,000 events, slower on no calendar",
            "per calendar-month": f"<= {TARGET_MS:g} ms",
        },
        "figures": measured,
        "passed": passed,
        "verdict": "PASS" if passed else "FAIL",
    }


def line(item: dict[str, Any]) -> str:
    """One figure as ``python -m benchmarks`` prints it."""
    value = item["value"]
    if isinstance(value, float):
        value = f"{value:.1f}x" if item["unit"] == "x" else f"{value:.2f} {item['unit']}"
    else:
        value = f"{value} {item['unit']}"
    parts = [item["comparison"]]
    if item["target"] is not None:
        parts.append(f"target {item['target']}: {'PASS' if item['passed'] else 'FAIL'}")
    return f"B2 {item['name']}: {value} ({'; '.join(parts)})"


if __name__ == "__main__":
    started = time.perf_counter()
    result = run()
    for item in result["figures"]:
        sys.stdout.write(line(item) + "\n")
    sys.stdout.write(f"B2 verdict: {result['verdict']} ({time.perf_counter() - started:.0f} s)\n")
