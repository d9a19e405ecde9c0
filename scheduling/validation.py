"""Checks for what people type: names, emails, slugs, URLs, zones, times of day."""

from __future__ import annotations

import re
from datetime import time
from functools import cache
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from scheduling.errors import ValidationFailed

_EMAIL = re.compile(r"^[^@\s<>\"',;:()\[\]\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def text(field: str, value: str, *, max_length: int, required: bool = True) -> str:
    """Plain one-line text: no markup, no control characters (no header injection)."""
    value = value.strip()
    if required and not value:
        raise ValidationFailed(field, f"{field} must not be empty")
    if len(value) > max_length:
        raise ValidationFailed(field, f"{field} must be at most {max_length} characters")
    if _CONTROL.search(value):
        raise ValidationFailed(field, f"{field} must be one line of plain text")
    if "<" in value or ">" in value:
        raise ValidationFailed(field, f"{field} must not contain < or >")
    return value


def email(field: str, value: str) -> str:
    value = value.strip().lower()
    if len(value) > 254 or _CONTROL.search(value) or not _EMAIL.match(value):
        raise ValidationFailed(field, f"{field} is not a valid email address")
    return value


def slug(field: str, value: str) -> str:
    value = value.strip().lower()
    if not _SLUG.match(value):
        raise ValidationFailed(field, f"{field} must be 1-64 lower-case letters, digits or hyphens, not at the ends")
    return value


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def timezone(field: str, value: str) -> str:
    """An IANA zone name such as Europe/Helsinki."""
    value = value.strip()
    if value not in _zones():
        raise ValidationFailed(field, f"{field} {value[:64]!r} is not an IANA time zone name")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(field, f"{field} {value[:64]!r} is not available") from None
    return value


def host(field: str, value: str) -> str:
    """A DNS host name (no scheme, port or path), lower-cased."""
    value = value.strip().lower().rstrip(".")
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_HOST_LABEL.match(x) for x in labels):
        raise ValidationFailed(field, f"{field} must be a host name such as meet.example.com")
    return value


def web_url(field: str, value: str, *, max_length: int = 2000) -> str:
    """An absolute http(s) URL; other schemes such as javascript: are refused."""
    value = value.strip()
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018  (a non-numeric port raises here)
    except ValueError:
        raise ValidationFailed(field, f"{field} has an invalid port") from None
    if (
        len(value) > max_length
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or _CONTROL.search(value)
        or " " in value
    ):
        raise ValidationFailed(field, f"{field} must be an absolute http:// or https:// URL")
    return value


def time_of_day(field: str, value: str) -> time | None:
    """``HH:MM``; ``24:00`` (end of day) is returned as None."""
    match = _TIME_OF_DAY.match(value.strip())
    if not match:
        raise ValidationFailed(field, f"{field} must be a time of day as HH:MM, got {value[:10]!r}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours == 24:
        if minutes:
            raise ValidationFailed(field, f"{field} must not be later than 24:00")
        return None
    return time(hours, minutes)


def minutes_of_day(field: str, value: str) -> int:
    parsed = time_of_day(field, value)
    return 24 * 60 if parsed is None else parsed.hour * 60 + parsed.minute


def integer(field: str, value: int, *, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ValidationFailed(field, f"{field} must be between {low} and {high}")
    return value
