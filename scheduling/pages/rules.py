"""Validation of a scheduling page's settings into the stored shape."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from typing import Any

from common.values import FormFieldKind, Weekday
from scheduling import validation
from scheduling.errors import ValidationFailed

RESERVED_FORM_KEYS = frozenset({"name", "email"})
DEFAULT_WEEKLY_HOURS: tuple[dict[str, str], ...] = tuple(
    {"weekday": day.value, "start": "09:00", "end": "17:00"} for day in list(Weekday)[:5]
)


@dataclass(frozen=True)
class HoursRange:
    """Wall-clock hours of one day as the owner types them ("09:00" to "17:00")."""

    start: str
    end: str


@dataclass(frozen=True)
class WeeklyHours:
    weekday: Weekday
    start: str
    end: str


@dataclass(frozen=True)
class DateOverride:
    """Hours for one date instead of the weekly ones; no intervals means unavailable."""

    date: date
    intervals: tuple[HoursRange, ...]


@dataclass(frozen=True)
class FormField:
    key: str
    label: str
    kind: FormFieldKind = FormFieldKind.TEXT
    required: bool = False


def durations(values: list[int]) -> list[int]:
    if not 1 <= len(values) <= 10:
        raise ValidationFailed("durations", "give between 1 and 10 meeting durations")
    for value in values:
        validation.integer("durations", value, low=5, high=720)
    if len(set(values)) != len(values):
        raise ValidationFailed("durations", "durations must not repeat")
    return sorted(values)


def _ranges(field: str, ranges: list[HoursRange]) -> list[dict[str, str]]:
    """Validated, sorted ranges of one day; overlaps are refused rather than guessed at."""
    spans = []
    for time_range in ranges:
        start = validation.minutes_of_day(field, time_range.start)
        end = validation.minutes_of_day(field, time_range.end)
        if start >= end:
            raise ValidationFailed(field, f"{field}: {time_range.start} is not before {time_range.end}")
        spans.append((start, end, time_range))
    spans.sort(key=lambda span: span[0])
    for previous, current in itertools.pairwise(spans):
        if current[0] < previous[1]:
            raise ValidationFailed(field, f"{field}: the hours {current[2].start}-{current[2].end} overlap")
    return [{"start": span[2].start, "end": span[2].end} for span in spans]


def weekly_hours(values: list[WeeklyHours]) -> list[dict[str, Any]]:
    if len(values) > 70:
        raise ValidationFailed("weeklyHours", "at most 70 weekly intervals")
    result: list[dict[str, Any]] = []
    for day in Weekday:
        ranges = [HoursRange(value.start, value.end) for value in values if value.weekday == day]
        for span in _ranges("weeklyHours", ranges):
            result.append({"weekday": day.value, **span})
    return result


def date_overrides(values: list[DateOverride]) -> list[dict[str, Any]]:
    if len(values) > 400:
        raise ValidationFailed("dateOverrides", "at most 400 date overrides")
    dates = [value.date for value in values]
    if len(set(dates)) != len(dates):
        raise ValidationFailed("dateOverrides", "each date may be overridden once")
    return [
        {"date": value.date.isoformat(), "intervals": _ranges("dateOverrides", list(value.intervals))}
        for value in sorted(values, key=lambda value: value.date)
    ]


def form_fields(values: list[FormField]) -> list[dict[str, Any]]:
    if len(values) > 20:
        raise ValidationFailed("formFields", "at most 20 form fields")
    keys: set[str] = set()
    result = []
    for value in values:
        key = value.key.strip()
        if not key.isidentifier() or not key.islower() or len(key) > 40 or key in RESERVED_FORM_KEYS:
            raise ValidationFailed(
                "formFields", f"form field key {key[:40]!r} must be a lower-case identifier other than name or email"
            )
        if key in keys:
            raise ValidationFailed("formFields", f"form field key {key!r} repeats")
        keys.add(key)
        label = validation.text("formFields", value.label, max_length=100)
        result.append({"key": key, "label": label, "kind": value.kind.value, "required": value.required})
    return result


def fixed_range(start: date | None, end: date | None, *, latest: date) -> tuple[date | None, date | None]:
    """A fixed booking range replaces the rolling horizon; both ends or neither, and it may not
    end after ``latest`` (the farthest day whose busy time is kept)."""
    if (start is None) != (end is None):
        raise ValidationFailed("fixedRange", "give both the first and the last bookable date, or neither")
    if start is not None and end is not None and start > end:
        raise ValidationFailed("fixedRange", "the fixed range starts after it ends")
    if end is not None and end > latest:
        raise ValidationFailed("fixedRange", f"the last bookable date may be at most {latest.isoformat()}")
    return start, end
