"""Busy time per calendar: the local cache that provider sync fills and slot queries read."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from db.columns import id_field, timestamp_field


class BusyInterval(SQLModel, table=True):
    __tablename__ = "busy_intervals"
    __table_args__ = (
        Index("ix_busy_intervals_calendar_start", "calendar_id", "start_at"),
        Index("ix_busy_intervals_calendar_event", "calendar_id", "external_id"),
    )

    id: uuid.UUID = id_field()
    calendar_id: uuid.UUID = Field(foreign_key="calendars.id", ondelete="CASCADE")
    start_at: datetime = timestamp_field()
    end_at: datetime = timestamp_field()
    # The provider's event id when known, so incremental sync can replace one event's time.
    external_id: str | None = Field(default=None, max_length=500)
    updated_at: datetime = timestamp_field()
