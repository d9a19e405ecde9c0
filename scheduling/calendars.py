"""An owner's calendar connections and calendars, as the dashboard lists them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import col, select

from db.engine import Database
from db.models import Calendar, CalendarConnection


@dataclass(frozen=True)
class ConnectionView:
    connection: CalendarConnection
    calendars: tuple[Calendar, ...]


class CalendarService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list_connections(self, owner_id: uuid.UUID) -> list[ConnectionView]:
        """Every connection with its calendars, in two queries whatever their number."""
        async with self._db.session() as session:
            connections = (
                await session.exec(
                    select(CalendarConnection)
                    .where(CalendarConnection.user_id == owner_id)
                    .order_by(col(CalendarConnection.created_at))
                )
            ).all()
            ids = [connection.id for connection in connections]
            calendars = (
                await session.exec(
                    select(Calendar)
                    .where(col(Calendar.connection_id).in_(ids))
                    .order_by(col(Calendar.is_primary).desc(), col(Calendar.name))
                )
            ).all()
        return [
            ConnectionView(
                connection=connection,
                calendars=tuple(c for c in calendars if c.connection_id == connection.id),
            )
            for connection in connections
        ]
