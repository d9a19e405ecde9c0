"""What calendar sync decided about the owner's events (imported as a meeting, or skipped and
why), as the owner reads it: newest first."""

from __future__ import annotations

import uuid

from sqlmodel import col, select

from db.engine import Database
from db.models import CalendarImport
from scheduling import validation
from scheduling.errors import InvalidInput, ValidationFailed

DEFAULT_LAST = 50
MAX_LAST = 200


class ImportLog:
    def __init__(self, *, db: Database) -> None:
        self._db = db

    async def recent(self, owner_id: uuid.UUID, last: int | None) -> list[CalendarImport] | InvalidInput:
        """The owner's ``last`` decisions (default 50, at most 200), newest first."""
        try:
            limit = validation.integer("last", DEFAULT_LAST if last is None else last, low=1, high=MAX_LAST)
        except ValidationFailed as failure:
            return failure.as_result()
        statement = (
            select(CalendarImport)
            .where(CalendarImport.owner_id == owner_id)
            .order_by(col(CalendarImport.at).desc(), col(CalendarImport.id))
            .limit(limit)
        )
        async with self._db.session() as session:
            return list((await session.exec(statement)).all())
