"""What every calendar provider adapter offers, in our own value types.

Adapters hide their vendor SDK entirely: nothing returned from here is a googleapiclient,
msal, exchangelib or caldav object, and every failure is one of ``providers.errors``.
Times are aware UTC in and out; zones are IANA names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class CalendarAccess(StrEnum):
    """The owner's access to a calendar; only OWNER, WRITER and READER may be integrated."""

    OWNER = "OWNER"
    WRITER = "WRITER"
    READER = "READER"
    FREE_BUSY = "FREE_BUSY"

    @property
    def may_integrate(self) -> bool:
        return self is not CalendarAccess.FREE_BUSY

    @property
    def may_write(self) -> bool:
        return self in (CalendarAccess.OWNER, CalendarAccess.WRITER)


@dataclass(frozen=True)
class ProviderCalendar:
    external_id: str
    name: str
    access: CalendarAccess
    primary: bool = False
    timezone: str | None = None  # IANA name when the provider says


@dataclass(frozen=True)
class BusyBlock:
    """One busy interval of one calendar (``calendar_id`` is the provider's id)."""

    calendar_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Attendee:
    email: str
    name: str = ""


@dataclass(frozen=True)
class EventDraft:
    """A meeting to write; ``idempotency_key`` is stable per booking so a retry never duplicates."""

    idempotency_key: str
    summary: str
    start: datetime
    end: datetime
    timezone: str
    attendees: tuple[Attendee, ...] = ()
    description: str = ""
    location: str = ""
    organizer_email: str | None = None


@dataclass(frozen=True)
class WrittenEvent:
    calendar_id: str
    event_id: str


@dataclass(frozen=True)
class AuthorizationStart:
    """Where to send the owner, and what must be kept until the callback (never shown to them)."""

    url: str
    verifier: dict[str, str] = field(default_factory=dict)


class ConnectedAccount(Protocol):
    """Credentials an adapter returns when an account connects."""

    @property
    def account_email(self) -> str: ...

    def to_json(self) -> str: ...


class OAuthFlow(Protocol):
    """The two halves of an authorization code flow (Google, Microsoft)."""

    async def start(self, state: str) -> AuthorizationStart:
        """The consent URL carrying ``state``; ``verifier`` must be kept until the callback."""
        ...

    async def finish(self, query_params: dict[str, str], verifier: dict[str, str]) -> ConnectedAccount:
        """Redeem what the callback received (``code``, or ``error`` when the owner declined)."""
        ...


class CalendarClient(Protocol):
    """An authorized client for one connection. Every method may raise ``ProviderError``."""

    async def list_calendars(self) -> list[ProviderCalendar]:
        """Every calendar the account can see, with the owner's access to it."""
        ...

    async def busy_intervals(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> list[BusyBlock]:
        """Busy time of the given calendars overlapping [start, end); free and tentative-free are left out."""
        ...

    async def create_event(self, calendar_id: str, draft: EventDraft) -> WrittenEvent:
        """Create the event, or return the one already created with the same idempotency key."""
        ...

    async def update_event(self, calendar_id: str, event_id: str, draft: EventDraft) -> WrittenEvent: ...

    async def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete the event; one that is already gone is not an error."""
        ...

    def credentials_json(self) -> str:
        """The connection's credentials as they are now (tokens may have been refreshed), to store encrypted."""
        ...

    async def revoke(self) -> None:
        """End the app's access at the provider where it allows that; else nothing."""
        ...

    async def aclose(self) -> None:
        """Release connections the client keeps open."""
        ...
