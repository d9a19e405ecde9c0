"""Work to do after a commit (calendar writes, emails), claimed and retried by the worker."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from db.columns import id_field, json_field, timestamp_field


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"

    id: uuid.UUID = id_field()
    kind: str = Field(max_length=40, index=True)
    payload: dict[str, Any] = json_field(default_factory=dict)
    attempts: int = 0
    available_at: datetime = timestamp_field(index=True)
    last_error: str | None = Field(default=None, max_length=2000)
    done_at: datetime | None = timestamp_field(nullable=True, index=True)
    created_at: datetime = timestamp_field()
