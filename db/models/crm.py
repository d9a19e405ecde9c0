"""The owner's CRM side: meetings logged on contacts, tasks, and what calendar sync did.

Bookings stay the record of meetings booked on a page (a contact's meetings include them);
the ``meetings`` table holds the others: those found in the owner's calendar and those the
owner made on a contact.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from common.values import MeetingSource
from db.columns import enum_field, id_field, timestamp_field


class Meeting(SQLModel, table=True):
    __tablename__ = "meetings"
    __table_args__ = (
        # One meeting per contact for each calendar event (an event with two contacts logs two).
        UniqueConstraint("contact_id", "calendar_id", "external_event_id"),
        Index("ix_meetings_calendar_event", "calendar_id", "external_event_id"),
    )

    id: uuid.UUID = id_field()
    owner_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    contact_id: uuid.UUID = Field(foreign_key="contacts.id", ondelete="CASCADE", index=True)
    title: str = Field(max_length=300)
    start_at: datetime = timestamp_field()
    end_at: datetime = timestamp_field()
    source: MeetingSource = enum_field(MeetingSource.OWNER)
    calendar_invitation_sent: bool = False
    # The calendar event it came from (calendar sync) or was written as (an owner's meeting).
    calendar_id: uuid.UUID | None = Field(default=None, foreign_key="calendars.id", ondelete="SET NULL")
    external_event_id: str | None = Field(default=None, max_length=1024)
    # An owner's meeting: when its event was last written where the meeting is (None while a
    # change is on its way), so a later change of the event in the calendar is the owner's.
    calendar_event_written_at: datetime | None = timestamp_field(nullable=True)
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()


class Task(SQLModel, table=True):
    __tablename__ = "tasks"

    id: uuid.UUID = id_field()
    owner_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    contact_id: uuid.UUID | None = Field(default=None, foreign_key="contacts.id", ondelete="SET NULL", index=True)
    title: str = Field(max_length=300)
    due_at: datetime | None = timestamp_field(nullable=True)
    done: bool = False
    # Its event in the connection's tasks calendar, while it has one.
    calendar_event_id: str | None = Field(default=None, max_length=1024)
    # The idempotency key of the event it has or is getting: every worker that makes it uses
    # this one, so the provider keeps a single event; a new one after the event was removed.
    calendar_event_key: str | None = Field(default=None, max_length=64)
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()


class CalendarImport(SQLModel, table=True):
    """What calendar sync decided about one event, and why: the owner reads these."""

    __tablename__ = "calendar_imports"
    __table_args__ = (Index("ix_calendar_imports_owner_at", "owner_id", "at"),)

    id: uuid.UUID = id_field()
    owner_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    calendar_id: uuid.UUID | None = Field(default=None, foreign_key="calendars.id", ondelete="SET NULL")
    external_event_id: str = Field(max_length=1024)
    title: str = Field(default="", max_length=300)
    start_at: datetime = timestamp_field()
    imported: bool = False
    reason: str = Field(max_length=300)
    at: datetime = timestamp_field()
