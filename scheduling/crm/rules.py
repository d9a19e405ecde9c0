"""What an owner sends about contacts, meetings and tasks, checked before anything is written.

Each check raises ``ValidationFailed`` naming the input field, so services answer
``InvalidInput`` and store nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from scheduling import validation
from scheduling.errors import ValidationFailed

MAX_NAME = 200
MAX_TITLE = 300  # the tables' title columns
MAX_PROPERTIES = 50
MAX_PROPERTY_KEY = 40  # as a page's form field keys, so a booking's answers land on the same keys
MAX_PROPERTY_VALUE = 2_000
MAX_MEETING_LENGTH = timedelta(days=14)
_VALUE_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # newlines and tabs are fine


def name(value: str) -> str:
    """A contact's name; empty is allowed (the email stands for them)."""
    return validation.text("name", value, max_length=MAX_NAME, required=False)


def title(value: str) -> str:
    return validation.text("title", value, max_length=MAX_TITLE)


def properties(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Keys are lower-case identifiers (as form field keys) used once; values plain text."""
    if len(pairs) > MAX_PROPERTIES:
        raise ValidationFailed("properties", f"a contact holds at most {MAX_PROPERTIES} properties")
    checked: dict[str, str] = {}
    for key, value in pairs:
        key = key.strip()
        if not key.isidentifier() or not key.islower() or len(key) > MAX_PROPERTY_KEY:
            raise ValidationFailed(
                "properties", f"property key {key[:MAX_PROPERTY_KEY]!r} must be a lower-case identifier"
            )
        if key in checked:
            raise ValidationFailed("properties", f"property key {key!r} repeats")
        value = value.strip()
        if len(value) > MAX_PROPERTY_VALUE or _VALUE_CONTROL.search(value):
            raise ValidationFailed(
                "properties", f"property {key!r} must be plain text of at most {MAX_PROPERTY_VALUE} characters"
            )
        checked[key] = value
    return checked


def moment(field: str, value: datetime) -> datetime:
    """An aware time, kept as UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed(field, f"{field} needs a UTC offset")
    return value.astimezone(UTC)


def meeting_times(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """A meeting starts before it ends and lasts at most two weeks."""
    start, end = moment("start", start), moment("end", end)
    if end <= start:
        raise ValidationFailed("end", "end must be after start")
    if end - start > MAX_MEETING_LENGTH:
        raise ValidationFailed("end", f"a meeting lasts at most {MAX_MEETING_LENGTH.days} days")
    return start, end
