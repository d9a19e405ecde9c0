"""Interval and its set algebra: table tests of the edge cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from scheduling.engine import Interval, clip, intersect, merge, subtract

BASE = datetime(2024, 5, 6, tzinfo=UTC)


def at(hour: float) -> datetime:
    return BASE + timedelta(hours=hour)


def iv(start: float, end: float) -> Interval:
    return Interval(at(start), at(end))


def ivs(*pairs: tuple[float, float]) -> list[Interval]:
    return [iv(start, end) for start, end in pairs]


def test_interval_refuses_naive_datetimes() -> None:
    # covers: BOOK-1
    with pytest.raises(ValueError, match="timezone-aware"):
        Interval(datetime(2024, 5, 6, 9), at(10))
    with pytest.raises(ValueError, match="timezone-aware"):
        Interval(at(9), datetime(2024, 5, 6, 10))


@pytest.mark.parametrize(("start", "end"), [(10, 10), (11, 10)])
def test_interval_refuses_start_not_before_end(start: float, end: float) -> None:
    # covers: BOOK-1
    with pytest.raises(ValueError, match="start < end"):
        iv(start, end)


def test_interval_stores_utc_and_orders_by_instant() -> None:
    # covers: BOOK-1
    # 01:30 twice on New York's fall-back night: equal wall clocks, an hour apart.
    zone = ZoneInfo("America/New_York")
    first = datetime(2024, 11, 3, 1, 30, tzinfo=zone)
    second = datetime(2024, 11, 3, 1, 30, tzinfo=zone, fold=1)
    early, late = Interval(first, second), Interval(second, datetime(2024, 11, 3, 1, 40, tzinfo=zone, fold=1))
    assert early.start.tzinfo is UTC
    assert early.start == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)
    assert early.end == datetime(2024, 11, 3, 6, 30, tzinfo=UTC)
    assert early < late
    assert Interval(at(1).astimezone(timezone(timedelta(hours=3))), at(2)) == iv(1, 2)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], []),
        ([(1, 2)], [(1, 2)]),
        ([(1, 2), (2, 3)], [(1, 3)]),  # touching join
        ([(1, 2), (3, 4)], [(1, 2), (3, 4)]),
        ([(3, 4), (1, 2)], [(1, 2), (3, 4)]),  # unsorted
        ([(1, 5), (2, 3)], [(1, 5)]),  # containing
        ([(1, 3), (2, 4)], [(1, 4)]),  # overlapping
        ([(5, 6), (1, 2), (1.5, 5)], [(1, 6)]),  # a chain, unsorted
        ([(1, 2), (1, 2)], [(1, 2)]),  # duplicates
    ],
)
def test_merge(given: list[tuple[float, float]], expected: list[tuple[float, float]]) -> None:
    # covers: BOOK-1
    assert merge(ivs(*given)) == ivs(*expected)


@pytest.mark.parametrize(
    ("base", "remove", "expected"),
    [
        ([], [(1, 2)], []),
        ([(1, 5)], [], [(1, 5)]),
        ([(1, 5)], [(2, 3)], [(1, 2), (3, 5)]),  # a hole
        ([(1, 5)], [(0, 6)], []),  # containing
        ([(1, 5)], [(1, 5)], []),  # equal
        ([(1, 5)], [(5, 6)], [(1, 5)]),  # touching after
        ([(1, 5)], [(0, 1)], [(1, 5)]),  # touching before
        ([(1, 5)], [(0, 2), (4, 6)], [(2, 4)]),  # both ends
        ([(1, 3), (4, 6)], [(2, 5)], [(1, 2), (5, 6)]),  # one cut across two
        ([(1, 10)], [(2, 3), (3, 4), (6, 7)], [(1, 2), (4, 6), (7, 10)]),
        ([(4, 6), (1, 3)], [(5, 7), (0, 2)], [(2, 3), (4, 5)]),  # unsorted
        ([(1, 2), (3, 4), (5, 6)], [(0, 10)], []),
    ],
)
def test_subtract(
    base: list[tuple[float, float]], remove: list[tuple[float, float]], expected: list[tuple[float, float]]
) -> None:
    # covers: BOOK-1
    assert subtract(ivs(*base), ivs(*remove)) == ivs(*expected)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([], [(1, 2)], []),
        ([(1, 2)], [], []),
        ([(1, 3)], [(2, 4)], [(2, 3)]),
        ([(1, 2)], [(2, 3)], []),  # touching is not overlapping
        ([(1, 10)], [(2, 3), (4, 5)], [(2, 3), (4, 5)]),  # containing
        ([(1, 3), (5, 7)], [(2, 6)], [(2, 3), (5, 6)]),
        ([(5, 7), (1, 3)], [(2, 6)], [(2, 3), (5, 6)]),  # unsorted
        ([(1, 5)], [(1, 5)], [(1, 5)]),
        ([(1, 2), (2, 3)], [(1.5, 2.5)], [(1.5, 2.5)]),  # touching inputs join first
    ],
)
def test_intersect(
    a: list[tuple[float, float]], b: list[tuple[float, float]], expected: list[tuple[float, float]]
) -> None:
    # covers: BOOK-1
    assert intersect(ivs(*a), ivs(*b)) == ivs(*expected)
    assert intersect(ivs(*b), ivs(*a)) == ivs(*expected)


@pytest.mark.parametrize(
    ("given", "start", "end", "expected"),
    [
        ([], 0, 10, []),
        ([(1, 5)], 2, 4, [(2, 4)]),
        ([(1, 5)], 0, 10, [(1, 5)]),
        ([(1, 5)], 5, 10, []),  # touching
        ([(1, 3), (4, 6)], 2, 5, [(2, 3), (4, 5)]),
        ([(4, 6), (1, 3)], 2, 5, [(2, 3), (4, 5)]),  # unsorted
        ([(1, 5)], 4, 2, []),  # empty window
        ([(1, 5)], 3, 3, []),
    ],
)
def test_clip(given: list[tuple[float, float]], start: float, end: float, expected: list[tuple[float, float]]) -> None:
    # covers: BOOK-1
    assert clip(ivs(*given), at(start), at(end)) == ivs(*expected)


def test_clip_refuses_a_naive_window() -> None:
    # covers: BOOK-1
    with pytest.raises(ValueError, match="timezone-aware"):
        clip(ivs((1, 2)), datetime(2024, 5, 6), at(3))


def test_results_are_new_lists() -> None:
    # covers: BOOK-1
    given = ivs((1, 2))
    assert merge(given) is not given
    assert subtract(given, []) is not given
