"""``DateTime``: ISO 8601 with an offset; naive values are refused at the boundary."""

from __future__ import annotations

from datetime import datetime
from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

DateTime = NewType("DateTime", datetime)

# Meetings fall in this range; outside it, adding a duration or a zone offset overflows.
FIRST_YEAR, LAST_YEAR = 1970, 9000


def _serialize(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive date-time on output")
    return value.isoformat()


def _parse(value: object) -> DateTime:
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("DateTime must be an ISO 8601 string with an offset")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset; naive date-times are refused")
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise ValueError(f"{value!r} is outside the years {FIRST_YEAR} to {LAST_YEAR}")
    return DateTime(parsed)


DATETIME_SCALAR = strawberry.scalar(
    name="DateTime",
    description="ISO 8601 date-time with a UTC offset, such as 2026-12-01T09:00:00+02:00; years 1970 to 9000.",
    serialize=_serialize,
    parse_value=_parse,
)
SCALARS: dict[object, ScalarDefinition] = {DateTime: DATETIME_SCALAR}
