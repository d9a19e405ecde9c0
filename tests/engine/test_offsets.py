"""The offset table: sampled once a day, it must still find every change to the second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduling.engine.epoch import ceil_seconds, floor_seconds, from_seconds
from scheduling.engine.offsets import OffsetTable, offset_at

ZONES = ["Europe/Helsinki", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Havana", "Asia/Gaza"]
START, END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)


def changes_by_zoneinfo(zone: ZoneInfo) -> list[int]:
    """Every instant in [START, END) where the offset differs from a second earlier, found hour by hour."""
    found = []
    instant, previous = floor_seconds(START), offset_at(zone, floor_seconds(START))
    while instant < floor_seconds(END):
        following = instant + 3600
        if offset_at(zone, following) != previous:
            second = next(t for t in range(instant, following + 1) if offset_at(zone, t) != previous)
            found.append(second)
            previous = offset_at(zone, following)
        instant = following
    return found


@pytest.mark.parametrize("zone_name", ZONES)
def test_the_table_finds_every_change_to_the_second(zone_name: str) -> None:
    # covers: BOOK-1
    zone = ZoneInfo(zone_name)
    table = OffsetTable(zone, floor_seconds(START), floor_seconds(END))
    assert table.changes == changes_by_zoneinfo(zone)
    for change in table.changes:
        for instant in (change - 1, change, change + 1):
            assert table.offset(instant) == offset_at(zone, instant)


@pytest.mark.parametrize("zone_name", ZONES)
def test_to_utc_agrees_with_zoneinfo_folds(zone_name: str) -> None:
    # covers: BOOK-1
    zone = ZoneInfo(zone_name)
    table = OffsetTable(zone, floor_seconds(START), floor_seconds(END))
    wall = datetime(2024, 1, 1, 0, 30)
    while wall < datetime(2026, 12, 31):
        instants = {wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)}
        real = sorted(i for i in instants if i.astimezone(zone).replace(tzinfo=None) == wall)
        local = floor_seconds(wall.replace(tzinfo=UTC))
        if real:
            assert from_seconds(table.to_utc(local, latest=False)) == real[0]
            assert from_seconds(table.to_utc(local, latest=True)) == real[-1]
        else:  # in a gap: the first instant after it, which is where the offset changes
            assert table.to_utc(local, latest=False) in table.changes
        wall += timedelta(minutes=30 if wall.day in (6, 7, 27, 28, 29, 30, 31) else 24 * 60)


def test_epoch_seconds_are_exact() -> None:
    # covers: BOOK-1
    late = datetime(9000, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert floor_seconds(late) + 1 == ceil_seconds(late)
    assert from_seconds(floor_seconds(late)) == late.replace(microsecond=0)
    early = datetime(1960, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC)
    assert floor_seconds(early) == floor_seconds(early.replace(microsecond=0)) == ceil_seconds(early) - 1
