"""Column helpers shared by the tables: aware UTC timestamps, JSON, short enum strings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Dialect, String
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on every database.

    SQLite keeps no offset: it would store 12:00+02:00 as 12:00 and return it naive. So values
    are converted to UTC before they are stored (naive ones are refused) and marked UTC when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime; Kokous stores aware UTC times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def id_field() -> Any:
    return Field(default_factory=new_id, primary_key=True)


def timestamp_field(*, nullable: bool = False, index: bool = False) -> Any:
    """An aware UTC timestamp column; naive values are refused by the model layer."""
    if nullable:
        return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)
    return Field(default_factory=utc_now, sa_type=UTCDateTime, index=index)


def json_field(*, default_factory: Any = list) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


def enum_field(default: str | None = None, *, index: bool = False) -> Any:
    """Enums are stored as short strings so migrations never alter database enum types."""
    return Field(default=default, sa_type=String(16), index=index)
