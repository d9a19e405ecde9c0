"""Expected failures, returned as values (the API turns each into a union member)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from common.values import CalendarProvider, ConnectionFailure


@dataclass(frozen=True)
class NotFound:
    message: str


@dataclass(frozen=True)
class InvalidInput:
    message: str
    field: str | None = None


@dataclass(frozen=True)
class SlugTaken:
    message: str
    slug: str


@dataclass(frozen=True)
class SlotUnavailable:
    """The time is taken or not bookable; ``alternatives`` are the nearest free slots, shown in
    ``timezone`` (the invitee's)."""

    message: str
    alternatives: tuple[tuple[datetime, datetime], ...] = ()
    timezone: str = "UTC"


@dataclass(frozen=True)
class CalendarInactive:
    """An integrated calendar of the owner lost access; nobody can book until it is fixed."""

    message: str


@dataclass(frozen=True)
class CalendarUnreachable:
    """The owner's calendars could not be asked about the time and what is kept of them is too
    old to trust; nothing was stored, and trying again shortly usually works."""

    message: str
    retry_after_seconds: int = 60


@dataclass(frozen=True)
class RateLimited:
    """Too many calls from one client, on one page, or to one address; nothing was changed."""

    message: str
    retry_after_seconds: int


@dataclass(frozen=True)
class PrimaryCalendarNotRemovable:
    """The primary calendar goes only with its connection, which ``connection_id`` names."""

    message: str
    connection_id: uuid.UUID


@dataclass(frozen=True)
class PageNotFound:
    message: str


@dataclass(frozen=True)
class PermissionRequired:
    """Connecting needs a setting the owner has not turned on; ``setting`` names it."""

    message: str
    setting: str


@dataclass(frozen=True)
class ProviderNotConfigured:
    message: str
    provider: CalendarProvider


@dataclass(frozen=True)
class ConnectionLimitReached:
    """The account already holds as many connections as it may."""

    message: str


@dataclass(frozen=True)
class ConnectionFailed:
    message: str
    reason: ConnectionFailure


@dataclass(frozen=True)
class ContactExists:
    """The owner has a contact with this email already; ``contact_id`` names it."""

    message: str
    contact_id: uuid.UUID


Expected = (
    NotFound
    | InvalidInput
    | SlugTaken
    | SlotUnavailable
    | CalendarInactive
    | CalendarUnreachable
    | PageNotFound
    | PrimaryCalendarNotRemovable
    | PermissionRequired
    | ProviderNotConfigured
    | ConnectionLimitReached
    | ConnectionFailed
    | RateLimited
    | ContactExists
)


class Refused(Exception):
    """Raised inside a transaction so it rolls back; the service returns ``result``.

    Returning from inside ``async with db.transaction()`` would commit whatever was already
    changed, so a refusal must leave the block by exception.
    """

    def __init__(self, result: Expected) -> None:
        super().__init__(result.message)
        self.result = result


class ValidationFailed(Refused):
    """A value was refused; ``field`` names the input field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(InvalidInput(message=message, field=field))
        self.field = field
        self.message = message

    def as_result(self) -> InvalidInput:
        return InvalidInput(message=self.message, field=self.field)
