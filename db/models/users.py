"""Owners and their API tokens (stored as SHA-256 digests, never in the clear)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from common.values import Seat
from db.columns import id_field, timestamp_field


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: uuid.UUID = id_field()
    email: str = Field(max_length=254, unique=True, index=True)
    name: str = Field(default="", max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    personal_email_access: bool = False
    hide_from_search_engines: bool = False
    meetings_link_base: str | None = Field(default=None, max_length=300)
    default_page_id: uuid.UUID | None = None
    # Set when an account allowed two connections disconnects one; from then on it holds one.
    single_connection_since: datetime | None = timestamp_field(nullable=True)
    seat: Seat = Field(default=Seat.FREE, sa_type=String(16), sa_column_kwargs={"server_default": "FREE"})
    created_at: datetime = timestamp_field()


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    label: str = Field(default="", max_length=100)  # the token's name, chosen by its owner
    created_at: datetime = timestamp_field()
    # None: never expires. An expired token is refused like an unknown one.
    expires_at: datetime | None = timestamp_field(nullable=True)
    # Written at most once a minute per token, so a request is not a write.
    last_used_at: datetime | None = timestamp_field(nullable=True)
    revoked_at: datetime | None = timestamp_field(nullable=True)
