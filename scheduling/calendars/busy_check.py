"""At booking time, ask the providers about the one interval being booked: their answer decides.

Slots come from the local cache; a booking is the moment to be sure, so the owner's integrated
calendars are asked for that interval alone, all connections at once, within a short timeout.
A calendar found gone, unshared or unauthorised turns inactive at once (nobody books until the
owner acts). Only a passing failure (timeout, server error, rate limit) lets the cache decide,
and only when it was fetched recently and holds that time; every such fallback is logged and
counted. Otherwise the booking is refused (fail closed).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlmodel import col

from common.values import CalendarProvider, CalendarStatus
from db.models import Calendar, CalendarConnection
from db.plain import Plain, Rows
from providers.errors import (
    CalendarGone,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from scheduling.calendars.access import ProviderAccess, RefusedOnce
from scheduling.clock import Clock
from scheduling.concurrency import run_all
from scheduling.engine import Interval, subtract

logger = logging.getLogger(__name__)

TRANSIENT = (ProviderUnavailable, ProviderRateLimited, TimeoutError)


class Verdict(Enum):
    FREE = "free"
    BUSY = "busy"
    INACTIVE = "inactive"  # a calendar lost access (or is gone) while we asked
    UNKNOWN = "unknown"  # a provider could not answer and the cache cannot stand in for it


@dataclass(frozen=True)
class LiveCalendar:
    """An active integrated calendar as the live check and its fallback to the cache need it."""

    id: uuid.UUID
    external_id: str
    busy_synced_at: datetime | None
    covered_from: datetime | None
    covered_until: datetime | None


@dataclass(frozen=True)
class CachedCalendar:
    """An integrated calendar's busy-time cache state, whatever its status: the booking's slot
    check takes it from this read instead of reading it again."""

    status: CalendarStatus
    busy_synced_at: datetime | None
    covered_from: datetime | None
    covered_until: datetime | None
    busy_failed_at: datetime | None


@dataclass(frozen=True)
class OwnerCalendars:
    """The owner's calendars as one booking needs them, read once and passed along: whether the
    page is online, whether an inactive calendar refuses, and which connections to ask."""

    online: bool  # a connection that takes bookings has a calendar
    inactive: bool  # an integrated calendar lost access
    # Active integrated calendars of connections with credentials, by connection: the ones asked.
    to_ask: tuple[tuple[CalendarConnection, tuple[LiveCalendar, ...]], ...]
    # Every integrated calendar's cache state (``AvailabilityService.busy_time`` reads the same).
    integrated: tuple[CachedCalendar, ...]


# The owner's calendars that count for booking, each with its connection: integrated ones, and
# those of connections that take bookings (which make the pages online).
OWNER_CALENDAR_COLUMNS = (
    col(Calendar.id),
    col(Calendar.external_id),
    col(Calendar.integrated),
    col(Calendar.status),
    col(Calendar.busy_synced_at),
    col(Calendar.covered_from),
    col(Calendar.covered_until),
    col(Calendar.busy_failed_at),
    col(CalendarConnection.id),
    col(CalendarConnection.provider),
    col(CalendarConnection.account_email),
    col(CalendarConnection.credentials),
    col(CalendarConnection.auth_failures),
    col(CalendarConnection.scheduling_pages),
)
COUNTS_FOR_BOOKING = or_(col(Calendar.integrated).is_(True), col(CalendarConnection.scheduling_pages).is_(True))
_OWNER_CALENDARS = Plain(
    select(*OWNER_CALENDAR_COLUMNS)
    .join(CalendarConnection, col(Calendar.connection_id) == col(CalendarConnection.id))
    .where(col(CalendarConnection.user_id) == bindparam("owner_id"), COUNTS_FOR_BOOKING)
)


async def owner_calendars(rows: Rows, owner_id: uuid.UUID) -> OwnerCalendars:
    """One plain read of the owner's calendars with their connections (no ORM objects loaded):
    the rows are few, but a booking used to read them four times in four shapes."""
    return calendars_from_rows(owner_id, await rows.rows(_OWNER_CALENDARS, {"owner_id": owner_id}))


def calendars_from_rows(owner_id: uuid.UUID, found: Sequence[Sequence[Any]]) -> OwnerCalendars:
    """The owner's calendars from rows of ``OWNER_CALENDAR_COLUMNS`` (a row whose calendar is
    NULL, of an outer join that found none, is skipped)."""
    online = inactive = False
    by_connection: dict[uuid.UUID, tuple[CalendarConnection, list[LiveCalendar]]] = {}
    cached: list[CachedCalendar] = []
    for row in found:
        (calendar_id, external_id, integrated, status, synced, covered_from, covered_until, failed_at) = row[:8]
        (connection_id, provider, account_email, credentials, auth_failures, scheduling_pages) = row[8:]
        if calendar_id is None:
            continue
        online = online or bool(scheduling_pages)
        if not integrated:
            continue
        cached.append(CachedCalendar(status, synced, covered_from, covered_until, failed_at))
        if status != CalendarStatus.ACTIVE:
            inactive = True
            continue
        if credentials is None:
            continue
        if connection_id not in by_connection:
            # Detached and partial: what the access layer reads of a connection to open its adapter.
            connection = CalendarConnection(
                id=connection_id,
                user_id=owner_id,
                provider=CalendarProvider(provider),
                account_email=account_email,
                credentials=credentials,
                auth_failures=auth_failures,
            )
            by_connection[connection_id] = (connection, [])
        by_connection[connection_id][1].append(
            LiveCalendar(calendar_id, external_id, synced, covered_from, covered_until)
        )
    to_ask = tuple((connection, tuple(calendars)) for connection, calendars in by_connection.values())
    return OwnerCalendars(online=online, inactive=inactive, to_ask=to_ask, integrated=tuple(cached))


@dataclass
class FallbackStats:
    """Bookings decided by the cache because a provider failed in passing (for ``/metrics``)."""

    trusted_cache: int = 0  # the cache was fresh and held the time: it decided
    refused_stale: int = 0  # the cache was too old (or did not hold the time): refused


class BusyCheck:
    def __init__(
        self,
        *,
        access: ProviderAccess,
        clock: Clock,
        timeout: float = 4.0,
        fresh: timedelta = timedelta(minutes=15),
    ) -> None:
        self._access = access
        self._db = access.db
        self._clock = clock
        self._timeout = timeout
        self._fresh = fresh
        self.stats = FallbackStats()

    async def verdict(
        self,
        owner_id: uuid.UUID,
        start: datetime,
        end: datetime,
        *,
        moving: Interval | None = None,
        calendars: OwnerCalendars | None = None,
    ) -> Verdict:
        """What the owner's calendars say of [start, end) now; ``moving`` is where a booking being
        moved is now, whose own event does not count as busy. ``calendars``: as the caller read
        them moments ago (None: read them here)."""
        if calendars is None:
            async with self._db.plain() as plain:
                calendars = await owner_calendars(plain, owner_id)
        verdicts = await run_all(
            self._ask(connection, asked, start, end, moving) for connection, asked in calendars.to_ask
        )
        for worst in (Verdict.INACTIVE, Verdict.BUSY, Verdict.UNKNOWN):
            if worst in verdicts:
                return worst
        return Verdict.FREE

    async def _ask(
        self,
        connection: CalendarConnection,
        calendars: tuple[LiveCalendar, ...],
        start: datetime,
        end: datetime,
        moving: Interval | None,
    ) -> Verdict:
        try:
            blocks = await self._busy(connection, calendars, start, end)
        except CalendarGone as exc:  # deleted or unshared: that calendar is inactive from now on
            await self._access.lose_access(connection, exc, external_id=exc.calendar_id)
            return Verdict.INACTIVE
        except ProviderAuthError:  # the access layer already marked the calendars inactive
            return Verdict.INACTIVE
        except TRANSIENT as exc:
            return self._fallback(connection, calendars, start, end, exc)
        except ProviderError as exc:  # refused as asked: nothing to fall back on
            logger.warning("live busy check of connection %s refused: %s; refusing", connection.id, exc)
            return Verdict.UNKNOWN
        busy = subtract([Interval(block.start, block.end) for block in blocks], [moving] if moving else [])
        return Verdict.BUSY if any(block.start < end and start < block.end for block in busy) else Verdict.FREE

    async def _busy(
        self, connection: CalendarConnection, calendars: tuple[LiveCalendar, ...], start: datetime, end: datetime
    ) -> list[Interval]:
        """The calendars' busy time; a login refused once is asked again at once, since the
        answer is needed now (a second refusal means access is lost)."""
        external_ids = [calendar.external_id for calendar in calendars]
        for attempt in (1, 2):
            try:
                # Only the provider's answer is timed: the access layer's own bookkeeping (stored
                # tokens, counted refusals) must never be cut off half-way through a transaction.
                async with self._access.client(connection) as client, asyncio.timeout(self._timeout):
                    blocks = await client.busy_intervals(external_ids, start, end)
                return [Interval(block.start, block.end) for block in blocks]
            except RefusedOnce:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _fallback(
        self,
        connection: CalendarConnection,
        calendars: tuple[LiveCalendar, ...],
        start: datetime,
        end: datetime,
        error: Exception,
    ) -> Verdict:
        """A passing failure: the cache decides if every calendar was fetched recently and holds the time."""
        oldest_allowed = self._clock() - self._fresh
        trusted = all(
            calendar.busy_synced_at is not None
            and calendar.busy_synced_at >= oldest_allowed
            and calendar.covered_from is not None
            and calendar.covered_until is not None
            and calendar.covered_from <= start
            and end <= calendar.covered_until
            for calendar in calendars
        )
        if trusted:
            self.stats.trusted_cache += 1
        else:
            self.stats.refused_stale += 1
        logger.warning(
            "live busy check of connection %s failed (%s); %s",
            connection.id,
            getattr(error, "message", type(error).__name__),
            "the fresh cache decides" if trusted else "refusing: the cache is too old to decide",
        )
        return Verdict.FREE if trusted else Verdict.UNKNOWN
