"""nearest_free: the alternatives offered when a wanted slot was just taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduling.engine import Interval, nearest_free

BASE = datetime(2024, 5, 6, tzinfo=UTC)


def slot(hour: float) -> Interval:
    start = BASE + timedelta(hours=hour)
    return Interval(start, start + timedelta(minutes=30))


SLOTS = [slot(hour) for hour in (9, 10, 11, 12, 13, 16)]


@pytest.mark.parametrize(
    ("wanted", "limit", "expected"),
    [
        (11.25, 3, [10, 11, 12]),  # 15 min, 45 min, 75 min away; returned by start
        (15.5, 3, [13, 16, 12]),  # nearest first would be 16, 13, 12: sorted by start instead
        (11.5, 1, [11]),  # 11 and 12 tie: the earlier wins
        (11.5, 2, [11, 12]),
        (8, 2, [9, 10]),  # before every slot
        (20, 2, [13, 16]),  # after every slot
        (11, 10, [9, 10, 11, 12, 13, 16]),  # fewer slots than the limit
        (11, 0, []),
    ],
)
def test_nearest_free(wanted: float, limit: int, expected: list[float]) -> None:
    # covers: BOOK-1
    result = nearest_free(SLOTS, BASE + timedelta(hours=wanted), limit=limit)
    assert result == sorted(slot(hour) for hour in expected)


def test_nearest_free_of_nothing_and_unsorted_input() -> None:
    # covers: BOOK-1
    assert nearest_free([], BASE) == []
    assert nearest_free(list(reversed(SLOTS)), BASE + timedelta(hours=12)) == [slot(11), slot(12), slot(13)]


def test_nearest_free_refuses_a_naive_time() -> None:
    # covers: BOOK-1
    with pytest.raises(ValueError, match="timezone-aware"):
        nearest_free(SLOTS, datetime(2024, 5, 6, 11))
