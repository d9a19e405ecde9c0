"""At booking time, ask the providers about the one interval being booked (ARCHITECTURE rule 7).

Slots come from the local cache; a booking is the moment to be sure, so the owner's integrated
calendars are asked for that interval alone, all connections at once, within a short timeout.
When a provider cannot answer, the cache decides only if it is fresh; otherwise the booking is
refused (fail closed). Lost access makes the calendar inactive, as everywhere.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from enum import Enum

from sqlmodel import col, select

from db.models import Calendar, CalendarConnection
from providers.errors import ProviderAuthError, ProviderError
from scheduling.clock import Clock
from scheduling.concurrency import run_all
from scheduling.engine import Interval, subtract
from scheduling.provider_access import ProviderAccess
from scheduling.values import CalendarStatus

logger = logging.getLogger(__name__)


class Verdict(Enum):
    FREE = "free"
    BUSY = "busy"
    INACTIVE = "inactive"  # a calendar lost access while we asked
    UNKNOWN = "unknown"  # a provider could not answer and the cache is stale


class LiveBusyCheck:
    def __init__(
        self,
        access: ProviderAccess,
        clock: Clock,
        *,
        timeout: float = 4.0,
        fresh: timedelta = timedelta(minutes=15),
    ) -> None:
        self._access = access
        self._db = access.db
        self._clock = clock
        self._timeout = timeout
        self._fresh = fresh

    async def verdict(
        self, owner_id: uuid.UUID, start: datetime, end: datetime, *, moving: Interval | None = None
    ) -> Verdict:
        """What the owner's calendars say of [start, end) now; ``moving`` is where a booking being
        moved is now, whose own event does not count as busy."""
        async with self._db.session() as session:
            rows = (
                await session.exec(
                    select(CalendarConnection, Calendar)
                    .join(Calendar, col(Calendar.connection_id) == col(CalendarConnection.id))
                    .where(
                        col(CalendarConnection.user_id) == owner_id,
                        col(CalendarConnection.credentials).is_not(None),
                        col(Calendar.integrated).is_(True),
                        col(Calendar.status) == CalendarStatus.ACTIVE,
                    )
                )
            ).all()
        by_connection: dict[uuid.UUID, tuple[CalendarConnection, list[Calendar]]] = {}
        for connection, calendar in rows:
            by_connection.setdefault(connection.id, (connection, []))[1].append(calendar)
        verdicts = await run_all(
            self._ask(connection, calendars, start, end, moving) for connection, calendars in by_connection.values()
        )
        for worst in (Verdict.INACTIVE, Verdict.BUSY, Verdict.UNKNOWN):
            if worst in verdicts:
                return worst
        return Verdict.FREE

    async def _ask(
        self,
        connection: CalendarConnection,
        calendars: list[Calendar],
        start: datetime,
        end: datetime,
        moving: Interval | None,
    ) -> Verdict:
        try:
            async with asyncio.timeout(self._timeout), self._access.client(connection) as client:
                blocks = await client.busy_intervals([calendar.external_id for calendar in calendars], start, end)
        except ProviderAuthError:
            return Verdict.INACTIVE
        except (ProviderError, TimeoutError) as exc:
            oldest = min((calendar.busy_synced_at for calendar in calendars if calendar.busy_synced_at), default=None)
            fresh = oldest is not None and oldest >= self._clock() - self._fresh
            logger.warning(
                "live busy check of connection %s failed (%s); %s",
                connection.id,
                getattr(exc, "message", type(exc).__name__),
                "trusting the fresh cache" if fresh else "refusing: the cache is stale",
            )
            return Verdict.FREE if fresh else Verdict.UNKNOWN
        busy = subtract([Interval(block.start, block.end) for block in blocks], [moving] if moving else [])
        return Verdict.BUSY if any(block.start < end and start < block.end for block in busy) else Verdict.FREE
