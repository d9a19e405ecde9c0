"""Bookings as the owner sees them."""

from __future__ import annotations

import uuid

from sqlmodel import col, select

from common.values import BookingStatus
from db.engine import Database
from db.models import Booking


class BookingQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list_bookings(self, owner_id: uuid.UUID, status: BookingStatus | None = None) -> list[Booking]:
        statement = select(Booking).where(Booking.owner_id == owner_id)
        if status is not None:
            statement = statement.where(Booking.status == status)
        async with self._db.session() as session:
            return list((await session.exec(statement.order_by(col(Booking.start_at)))).all())
