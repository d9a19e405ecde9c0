"""Integer epoch seconds: the engine's inner unit.

Slot starts are whole seconds, so comparing them with a busy interval rounded outwards (start
floored, end ceiled) gives exactly the answer the microsecond datetimes would, while integer
arithmetic keeps the hot loops cheap. Conversions happen only at the engine's boundary. Busy time
read from the database may come in as exact integer microseconds instead (``to_micros``), so
thousands of rows never become datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE = 60
DAY = 86_400
MICROS = 1_000_000  # per second


def require_aware(value: datetime, name: str) -> datetime:
    """The value in UTC; a naive datetime is refused, as at every boundary."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def floor_seconds(value: datetime) -> int:
    """Whole seconds since the epoch, rounded down (exact: a timedelta keeps days, seconds, microseconds)."""
    delta = value - EPOCH
    return delta.days * DAY + delta.seconds


def ceil_seconds(value: datetime) -> int:
    """Whole seconds since the epoch, rounded up."""
    delta = EPOCH - value
    return -(delta.days * DAY + delta.seconds)


def from_seconds(seconds: int) -> datetime:
    """The UTC datetime of whole epoch seconds."""
    return datetime.fromtimestamp(seconds, UTC)


def to_micros(value: datetime) -> int:
    """Exact microseconds since the epoch of an aware datetime (the unit stored rows are read in)."""
    delta = require_aware(value, "value") - EPOCH
    return (delta.days * DAY + delta.seconds) * MICROS + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The UTC datetime of microseconds since the epoch (exact, unlike a float timestamp)."""
    return EPOCH + timedelta(microseconds=micros)
