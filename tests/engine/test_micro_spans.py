"""Busy time given as integer microseconds (as the database reads it) gives the same slots as Intervals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given

from scheduling.engine import Interval, MicroSpans, SlotRules, WeeklyRules, free_slots
from scheduling.engine.epoch import from_micros, to_micros
from tests.engine.test_free_slots import HELSINKI, MONDAY, local, starts, weekdays
from tests.engine.test_properties import SETTINGS, scenarios

Scenario = tuple[WeeklyRules, SlotRules, list[Interval], datetime, datetime, datetime]


def micro_spans(busy: list[Interval]) -> MicroSpans:
    return MicroSpans([(to_micros(interval.start), to_micros(interval.end)) for interval in busy])


@given(scenarios())
@SETTINGS
def test_free_slots_from_micro_spans_equal_those_from_intervals(scenario: Scenario) -> None:
    # covers: BOOK-1
    rules, slot_rules, busy, window_start, window_end, now = scenario
    expected = free_slots(rules, slot_rules, busy, window_start, window_end, now)
    assert free_slots(rules, slot_rules, micro_spans(busy), window_start, window_end, now) == expected


def test_micro_spans_round_outwards_to_whole_seconds_and_skip_empty_pairs() -> None:
    # covers: BOOK-1
    rules, slot_rules = weekdays("Europe/Helsinki", ("09:00", "12:00")), SlotRules(duration=30, increment=30)
    edge = local(HELSINKI, MONDAY, "10:00")
    busy = [Interval(edge - timedelta(microseconds=1), edge + timedelta(minutes=30, microseconds=1))]
    empty = [(to_micros(edge), to_micros(edge)), (to_micros(edge) + 5, to_micros(edge))]
    as_micros = MicroSpans([*micro_spans(busy).spans, *empty])
    day = local(HELSINKI, MONDAY, "00:00")
    window = (day, day + timedelta(days=1), day - timedelta(days=1))
    assert starts(free_slots(rules, slot_rules, as_micros, *window)) == ["09:00", "11:00", "11:30"]
    assert free_slots(rules, slot_rules, as_micros, *window) == free_slots(rules, slot_rules, busy, *window)


def test_microseconds_convert_exactly() -> None:
    # covers: BOOK-1
    for moment in [datetime(1970, 1, 1, tzinfo=UTC), datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC)]:
        assert from_micros(to_micros(moment)) == moment
    assert to_micros(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC)) == 1_000_005
