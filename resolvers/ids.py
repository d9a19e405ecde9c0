"""GraphQL IDs are UUIDs; anything else simply names nothing."""

from __future__ import annotations

import uuid


def parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
