"""Bookings (confirmed meetings and requests) and the contacts who made them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from common.values import BookingSource, BookingStatus, CalendarWrite
from db.columns import enum_field, id_field, json_field, timestamp_field


class Booking(SQLModel, table=True):
    __tablename__ = "bookings"
    __table_args__ = (
        UniqueConstraint("page_id", "idempotency_key"),
        Index("ix_bookings_owner_start", "owner_id", "start_at"),
        # A calendar's sync finds the bookings of the events it sees.
        Index("ix_bookings_calendar_event", "calendar_event_calendar_id", "calendar_event_id"),
    )

    id: uuid.UUID = id_field()
    owner_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    page_id: uuid.UUID = Field(foreign_key="scheduling_pages.id", ondelete="CASCADE", index=True)
    contact_id: uuid.UUID | None = Field(default=None, foreign_key="contacts.id", ondelete="SET NULL")
    start_at: datetime = timestamp_field(index=True)
    end_at: datetime = timestamp_field()
    status: BookingStatus = enum_field(BookingStatus.CONFIRMED, index=True)
    source: BookingSource = enum_field(BookingSource.PAGE)
    invitee_name: str = Field(max_length=200)
    invitee_email: str = Field(max_length=254)
    invitee_timezone: str = Field(max_length=64)
    answers: dict[str, Any] = json_field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, max_length=200)
    # SHA-256 of the normalised request, so a reused key with a different request is refused.
    request_fingerprint: str | None = Field(default=None, max_length=64)
    calendar_write: CalendarWrite = Field(
        default=CalendarWrite.NONE, sa_type=String(16), sa_column_kwargs={"server_default": "NONE"}
    )
    rescheduled_from_id: uuid.UUID | None = None
    # Raised by each reschedule: the invitee's manage link names it, so an older link is retired.
    manage_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # The event written on the owner's primary calendar, and why a write failed for good.
    calendar_event_id: str | None = Field(default=None, max_length=1024)
    calendar_event_calendar_id: uuid.UUID | None = Field(default=None, foreign_key="calendars.id", ondelete="SET NULL")
    calendar_write_error: str | None = Field(default=None, max_length=500)
    # When a sync of its calendar first named that event: until then an event the owner deletes
    # may not be reported at all (Exchange says nothing of an item made and gone between rounds).
    calendar_event_seen_at: datetime | None = timestamp_field(nullable=True)
    created_at: datetime = timestamp_field()
    cancelled_at: datetime | None = timestamp_field(nullable=True)


class Contact(SQLModel, table=True):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("owner_id", "email"),)

    id: uuid.UUID = id_field()
    owner_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    email: str = Field(max_length=254)
    name: str = Field(default="", max_length=200)
    properties: dict[str, Any] = json_field(default_factory=dict)
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()
