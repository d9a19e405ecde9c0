"""Opening hours as the owner writes them: local wall-clock ranges per weekday, and date overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class TimeRange:
    """Minutes after local midnight, [start, end); ``end == 1440`` is 24:00, the next day's start."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= MINUTES_PER_DAY:
            raise ValueError(f"a time range needs 0 <= start < end <= 1440 minutes, got {self.start}..{self.end}")


@dataclass(frozen=True)
class WeeklyRules:
    """Hours in the zone ``timezone``: ``weekly[0]`` is Monday; an override replaces its date's weekday.

    An override with no ranges closes the day. Ranges may touch (they join); they should not overlap.
    """

    timezone: str
    weekly: Mapping[int, tuple[TimeRange, ...]]
    overrides: Mapping[date, tuple[TimeRange, ...]]

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {self.timezone!r}") from error
        if any(not 0 <= weekday <= 6 for weekday in self.weekly):
            raise ValueError(f"weekdays are 0 (Monday) to 6, got {sorted(self.weekly)}")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # ZoneInfo caches instances by name

    def ranges_on(self, day: date) -> tuple[TimeRange, ...]:
        """The ranges that apply on a local date."""
        if day in self.overrides:
            return self.overrides[day]
        return self.weekly.get(day.weekday(), ())
