"""Calendar connections (one per provider account) and the calendars they expose."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from common.values import CalendarProvider, CalendarStatus
from db.columns import enum_field, id_field, timestamp_field


class CalendarConnection(SQLModel, table=True):
    __tablename__ = "calendar_connections"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    provider: CalendarProvider = enum_field()
    account_email: str = Field(max_length=254)
    calendar_sync: bool = True
    scheduling_pages: bool = True
    # Legacy accounts may hold one connection for calendar settings and one for meetings.
    purpose: str = Field(default="MEETINGS", max_length=16)
    credentials: bytes | None = Field(default=None, sa_type=LargeBinary, repr=False)
    # A process refreshing this connection's busy time holds it until then (several processes share the work).
    sync_lease_until: datetime | None = timestamp_field(nullable=True)
    # When the provider last answered for this connection (busy time, or the health probe).
    checked_at: datetime | None = timestamp_field(nullable=True)
    # Authentication failures in a row; Exchange's first 401 may be a fluke, so access is lost on the second.
    auth_failures: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # The sub-calendar made in this account for the owner's tasks (task sync), while there is one.
    tasks_calendar_id: str | None = Field(default=None, max_length=1024)
    created_at: datetime = timestamp_field()


class Calendar(SQLModel, table=True):
    __tablename__ = "calendars"
    __table_args__ = (UniqueConstraint("connection_id", "external_id"),)

    id: uuid.UUID = id_field()
    connection_id: uuid.UUID = Field(foreign_key="calendar_connections.id", ondelete="CASCADE", index=True)
    external_id: str = Field(max_length=500)
    name: str = Field(default="", max_length=300)
    access_role: str = Field(default="owner", max_length=32)
    is_primary: bool = False
    integrated: bool = False
    status: CalendarStatus = enum_field(CalendarStatus.ACTIVE)
    inactive_reason: str | None = Field(default=None, max_length=200)
    inactive_since: datetime | None = timestamp_field(nullable=True)
    # When the owner was last told someone tried to book while it was inactive (one email per incident).
    inactive_notified_at: datetime | None = timestamp_field(nullable=True)
    # When busy time was last fetched from the provider: the freshness of slot answers.
    busy_synced_at: datetime | None = timestamp_field(nullable=True)
    # The range whose busy time that fetch holds: slots are offered only inside it.
    covered_from: datetime | None = timestamp_field(nullable=True)
    covered_until: datetime | None = timestamp_field(nullable=True)
    # Where the provider's change list stands for this calendar (a Google sync token, a Graph delta
    # link, an EWS sync state, a CalDAV sync token), when it has one; EWS states run to kilobytes.
    sync_token: str | None = Field(default=None, sa_type=Text, repr=False)
    # The provider refused a push channel for this calendar (some calendars cannot be watched):
    # not asked again until then, and its connection is polled meanwhile.
    push_refused_until: datetime | None = timestamp_field(nullable=True)
    # When the last fetch failed (None once one succeeds): answers then say times may be missing.
    busy_failed_at: datetime | None = timestamp_field(nullable=True)
    created_at: datetime = timestamp_field()


class ConnectionAttempt(SQLModel, table=True):
    """An OAuth connection under way: what must be kept between the redirect and the callback.

    The browser carries only a signed reference to this row (the ``state``); the PKCE verifier
    and msal's flow stay here, encrypted, and the row is deleted when the callback uses it.
    """

    __tablename__ = "connection_attempts"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    provider: CalendarProvider = enum_field()
    verifier: bytes = Field(sa_type=LargeBinary, repr=False)
    expires_at: datetime = timestamp_field()
    created_at: datetime = timestamp_field()


class PushChannel(SQLModel, table=True):
    """A provider's push channel for one calendar: it posts to our webhook on every change.

    ``id`` is the channel id the provider echoes; the token it echoes too is kept only as a
    SHA-256 digest, compared in constant time, so a database reader cannot forge notifications.
    """

    __tablename__ = "push_channels"

    id: uuid.UUID = id_field()
    calendar_id: uuid.UUID = Field(foreign_key="calendars.id", ondelete="CASCADE", index=True)
    # The provider's own id: Google's resource id, or the Graph subscription id its notifications name.
    resource_id: str = Field(max_length=500, index=True)
    token_digest: str = Field(max_length=64, repr=False)
    expires_at: datetime = timestamp_field()
    created_at: datetime = timestamp_field()
