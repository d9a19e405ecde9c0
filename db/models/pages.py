"""Scheduling pages and the domains that may serve them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlmodel import Field, SQLModel

from db.columns import id_field, json_field, timestamp_field


class SchedulingPage(SQLModel, table=True):
    """A bookable page. Slugs are unique across every domain, so slug alone is unique."""

    __tablename__ = "scheduling_pages"

    id: uuid.UUID = id_field()
    owner_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    enabled: bool = True
    domain: str | None = Field(default=None, max_length=253)
    timezone: str = Field(max_length=64)
    durations: list[int] = json_field()
    start_increment: int = 15
    buffer_minutes: int = 0
    minimum_notice_minutes: int = 0
    booking_horizon_days: int = 60
    fixed_range_start: date | None = None
    fixed_range_end: date | None = None
    # [{"weekday": "MONDAY", "start": "09:00", "end": "17:00"}, ...]
    weekly_hours: list[dict[str, Any]] = json_field()
    # [{"date": "2026-12-24", "intervals": [{"start": "09:00", "end": "12:00"}]}, ...]
    date_overrides: list[dict[str, Any]] = json_field()
    # [{"key": "company", "label": "Company", "kind": "TEXT", "required": false}, ...]
    form_fields: list[dict[str, Any]] = json_field()
    redirect_url: str | None = Field(default=None, max_length=2000)
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()


class Domain(SQLModel, table=True):
    """A domain connected in domain management; any user may host pages on it."""

    __tablename__ = "domains"

    id: uuid.UUID = id_field()
    host: str = Field(max_length=253, unique=True, index=True)
    created_at: datetime = timestamp_field()
