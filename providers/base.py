"""What every calendar provider adapter offers, in our own value types.

Adapters hide their vendor SDK entirely: nothing returned from here is a googleapiclient,
msal, exchangelib or caldav object, and every failure is one of ``providers.errors``.
Times are aware UTC in and out; zones are IANA names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, runtime_checkable


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
class AppMark:
    """An app's marker on an event: apps that write events for people mark them, people don't.

    ``ours`` is True for Kokous's own marker (a booking's event), False for another app's, None
    when the provider shows only that *an* app made it (a Graph ``transactionId``). ``what``
    says what marks it, for the owner to read.
    """

    ours: bool | None
    what: str


@dataclass(frozen=True)
class CalendarEvent:
    """One event as a sync keeps it: its time, whether it blocks the owner's time, and what
    calendar sync needs to tell a meeting the owner made with someone from everything else.

    ``busy`` is false for what a free/busy answer leaves out: an event marked free
    (transparent), one the calendar's owner declined, a cancelled one. ``attendees`` are the
    lower-cased addresses of the people invited besides the calendar's own account (rooms and
    other resources left out). ``special`` names an entry that is no meeting whatever it holds
    (out of office, focus time, a working location). Each instance of a recurring event is an
    event of its own; ``series_id`` names the series it belongs to.
    """

    event_id: str
    start: datetime
    end: datetime
    busy: bool
    ical_uid: str | None = None
    title: str = ""
    attendees: tuple[str, ...] = ()
    organizer_self: bool = True
    all_day: bool = False
    free: bool = False
    declined: bool = False
    cancelled: bool = False
    app: AppMark | None = None
    special: str | None = None
    series_id: str | None = None


@dataclass(frozen=True)
class EventChanges:
    """One sync round of one calendar: every event of the window (``full``), or what changed
    since the last round; ``deleted`` are event ids gone since; ``sync_token`` starts the next."""

    changed: tuple[CalendarEvent, ...]
    deleted: tuple[str, ...]
    sync_token: str
    full: bool


@dataclass(frozen=True)
class WatchChannel:
    """A push channel the provider opened: it posts to our address until ``expires_at``."""

    channel_id: str
    resource_id: str
    expires_at: datetime


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


@runtime_checkable
class SubCalendars(Protocol):
    """What a client offers when the account can hold calendars the app makes (Google, Graph)."""

    async def create_calendar(self, name: str) -> str:
        """Make a calendar named ``name`` in the account; its provider id."""
        ...

    async def delete_calendar(self, calendar_id: str) -> None:
        """Delete a calendar the app made; one already gone is not an error."""
        ...


@runtime_checkable
class IncrementalSync(Protocol):
    """What a client offers when its provider can say what changed since the last round."""

    async def list_changes(
        self, calendar_id: str, *, sync_token: str | None, start: datetime, end: datetime
    ) -> EventChanges:
        """Without a token: every event overlapping [start, end) and a first token (``full``).

        With one: what changed since it, as events (wherever they now are) and deleted ids; or,
        where the provider can only say *that* something changed in a way ids cannot express (a
        recurring series, a deletion of unknown kind), every event of [start, end) again with
        ``full`` set. ``SyncTokenExpired`` when the provider needs a full round again.
        """
        ...


@runtime_checkable
class PushWatch(Protocol):
    """What a client offers when its provider posts a notification on each change."""

    async def watch(
        self, calendar_id: str, *, channel_id: str, address: str, token: str, ttl: timedelta
    ) -> WatchChannel:
        """Ask the provider to post a notification to ``address`` on each change, with ``token``."""
        ...

    async def stop_watch(self, channel_id: str, resource_id: str) -> None:
        """Close a channel; one already gone is not an error."""
        ...


@runtime_checkable
class RenewableWatch(Protocol):
    """A provider whose channels can be given a later end in place (Graph subscriptions)."""

    async def renew_watch(self, resource_id: str, ttl: timedelta) -> datetime:
        """Extend the channel; returns its new end. ``ProviderNotFound`` when it is gone."""
        ...


@runtime_checkable
class HeartbeatWatch(Protocol):
    """A provider whose channels live while it keeps posting (Exchange push subscriptions): each
    notification, status pings included, proves the channel alive for ``heartbeat`` more."""

    heartbeat: timedelta
