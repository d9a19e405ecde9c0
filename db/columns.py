"""Column helpers shared by the tables: aware UTC timestamps, JSON, short enum strings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, String
from sqlmodel import Field


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def id_field() -> Any:
    return Field(default_factory=new_id, primary_key=True)


def timestamp_field(*, nullable: bool = False, index: bool = False) -> Any:
    """An aware UTC timestamp column; naive values are refused by the model layer."""
    if nullable:
        return Field(default=None, sa_type=DateTime(timezone=True), nullable=True, index=index)
    return Field(default_factory=utc_now, sa_type=DateTime(timezone=True), index=index)


def json_field(*, default_factory: Any = list) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


def enum_field(default: str | None = None, *, index: bool = False) -> Any:
    """Enums are stored as short strings so migrations never alter database enum types."""
    return Field(default=default, sa_type=String(16), index=index)
