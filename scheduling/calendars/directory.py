"""An owner's calendar connections and calendars, as the dashboard lists them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import Database
from db.models import Calendar, CalendarConnection
from scheduling.clock import Clock
from scheduling.errors import NotFound
from scheduling.events import AvailabilityChanged, EventBus


class OwnerChangeHook(Protocol):
    """What a change of the owner's calendar sync or seat asks of parts built on calendars (task
    sync): queued in the change's own transaction; True when something was queued."""

    async def __call__(self, session: AsyncSession, owner_id: uuid.UUID, now: datetime) -> bool: ...


@dataclass(frozen=True)
class ConnectionView:
    connection: CalendarConnection
    calendars: tuple[Calendar, ...]


@dataclass(frozen=True)
class ConnectionSettings:
    """The settings of one connection (calendar sync, scheduling pages); None keeps the current value."""

    calendar_sync: bool | None = None
    scheduling_pages: bool | None = None


class ConnectionDirectory:
    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        clock: Clock,
        wake_outbox: Callable[[], None],
        on_sync_changed: OwnerChangeHook,
    ) -> None:
        self._db = db
        self._bus = bus
        self._clock = clock
        self._wake_outbox = wake_outbox
        self._on_sync_changed = on_sync_changed

    async def update_connection(
        self, owner_id: uuid.UUID, connection_id: uuid.UUID, settings: ConnectionSettings
    ) -> ConnectionView | NotFound:
        """Turning scheduling pages off stops the connection's calendars taking bookings; turning
        calendar sync on or off tells ``on_sync_changed`` (task sync), in the change's transaction."""
        queued = False
        async with self._db.transaction() as session:
            connection = await session.get(CalendarConnection, connection_id)
            if connection is None or connection.user_id != owner_id:
                return NotFound(message="calendar connection not found")  # nothing was changed
            sync_changed = settings.calendar_sync is not None and settings.calendar_sync != connection.calendar_sync
            if settings.calendar_sync is not None:
                connection.calendar_sync = settings.calendar_sync
            if settings.scheduling_pages is not None:
                connection.scheduling_pages = settings.scheduling_pages
            session.add(connection)
            if sync_changed:
                await session.flush()
                queued = await self._on_sync_changed(session, owner_id, self._clock())
            calendars = (await session.exec(select(Calendar).where(Calendar.connection_id == connection.id))).all()
        if queued:
            self._wake_outbox()
        await self._bus.publish(AvailabilityChanged(owner_id=owner_id, reason="connection_settings"))
        return ConnectionView(connection=connection, calendars=tuple(calendars))

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
