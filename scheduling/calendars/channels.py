"""Push channels: the provider tells us when a calendar changes, and we sync it at once.

After each successful sync of a connection whose provider can push (``IncrementalSync``), every
integrated calendar gets a live channel: a new one is opened before the old one expires (with a
new id; the old one is stopped), so notifications never lapse. A notification carries no data:
it is checked here (the channel is ours, its token matches in constant time) and the busy-time
sync then runs one incremental sync of the connection. While every calendar of a connection has
a live channel, the background pass polls it only as a safety net.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists
from sqlmodel import col, select

from common.values import CalendarStatus
from db.engine import Database
from db.models import Calendar, CalendarConnection, PushChannel
from providers.base import IncrementalSync
from providers.errors import ProviderError
from scheduling.clock import Clock

logger = logging.getLogger(__name__)

CHANNEL_TTL = timedelta(days=7)  # Google's longest
RENEW_BEFORE = timedelta(days=1)  # a channel closer than this to its end is replaced


class Notice(Enum):
    """What became of a notification."""

    SYNCED = "synced"  # ours and genuine: a sync of the calendar's connection is under way
    IGNORED = "ignored"  # ours, but says nothing changed (the first message of a channel)
    UNKNOWN = "unknown"  # no such channel (stopped, expired, or never ours)
    FORGED = "forged"  # the token does not match: counted and dropped

    @property
    def http_status(self) -> int:
        """What the provider is answered: it retries only on 5xx, so a refusal is final."""
        return {"unknown": 404, "forged": 403}.get(self.value, 200)


@dataclass
class PushStats:
    """Counters for ``/metrics``."""

    notifications: dict[str, int] = field(default_factory=lambda: {notice.value: 0 for notice in Notice})
    opened: int = 0
    renewed: int = 0
    stopped: int = 0
    syncs: int = 0
    # Seconds from a notification to the end of the sync it started (the slots are published then).
    sync_seconds: list[float] = field(default_factory=list)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class PushChannels:
    def __init__(self, *, db: Database, clock: Clock, address: str | None) -> None:
        """``address``: where providers post (None: no channels, the background pass polls)."""
        self._db = db
        self._clock = clock
        self._address = address
        self.stats = PushStats()

    @property
    def enabled(self) -> bool:
        return self._address is not None

    async def keep_open(self, client: IncrementalSync, calendars: list[Calendar]) -> None:
        """Give each calendar a channel that lives for at least ``RENEW_BEFORE``; stop replaced ones."""
        if self._address is None:
            return
        now = self._clock()
        ids = [calendar.id for calendar in calendars]
        async with self._db.session() as session:
            channels = (await session.exec(select(PushChannel).where(col(PushChannel.calendar_id).in_(ids)))).all()
        for calendar in calendars:
            own = [channel for channel in channels if channel.calendar_id == calendar.id]
            if any(channel.expires_at > now + RENEW_BEFORE for channel in own):
                continue
            try:
                await self._open(client, calendar, now)
            except ProviderError as exc:
                logger.warning("no push channel for calendar %s: %s", calendar.id, exc.message)
                continue
            if own:
                self.stats.renewed += 1
            for old in own:
                await self._stop(client, old)

    async def _open(self, client: IncrementalSync, calendar: Calendar, now: datetime) -> None:
        assert self._address is not None
        channel_id, token = uuid.uuid4(), secrets.token_urlsafe(32)
        opened = await client.watch(
            calendar.external_id, channel_id=str(channel_id), address=self._address, token=token, ttl=CHANNEL_TTL
        )
        async with self._db.transaction() as session:
            current = await session.get(Calendar, calendar.id)
            # Not removed, turned off or inactive while the provider opened the channel.
            kept = current is not None and current.integrated and current.status == CalendarStatus.ACTIVE
            if kept:
                session.add(
                    PushChannel(
                        id=channel_id,
                        calendar_id=calendar.id,
                        resource_id=opened.resource_id,
                        token_digest=digest(token),
                        expires_at=opened.expires_at,
                        created_at=now,
                    )
                )
        if not kept:
            await client.stop_watch(opened.channel_id, opened.resource_id)
            return
        self.stats.opened += 1

    async def _stop(self, client: IncrementalSync, channel: PushChannel) -> None:
        with contextlib.suppress(ProviderError):
            await client.stop_watch(str(channel.id), channel.resource_id)
        async with self._db.transaction() as session:
            await session.exec(delete(PushChannel).where(col(PushChannel.id) == channel.id))
        self.stats.stopped += 1

    async def any_for(self, calendar_ids: list[uuid.UUID]) -> bool:
        async with self._db.session() as session:
            found = await session.exec(
                select(PushChannel.id).where(col(PushChannel.calendar_id).in_(calendar_ids)).limit(1)
            )
            return found.first() is not None

    async def stop_all(self, client: IncrementalSync, calendar_ids: list[uuid.UUID]) -> None:
        """Close the channels of calendars that no longer count (removed, or their account leaving)."""
        async with self._db.session() as session:
            channels = (
                await session.exec(select(PushChannel).where(col(PushChannel.calendar_id).in_(calendar_ids)))
            ).all()
        for channel in channels:
            await self._stop(client, channel)

    @staticmethod
    def pushed(connection_id: Any, now: datetime) -> ColumnElement[bool]:
        """SQL: every integrated active calendar of the connection has a live channel (and it has one)."""
        unpushed = (
            select(Calendar.id)
            .where(
                col(Calendar.connection_id) == connection_id,
                col(Calendar.integrated).is_(True),
                col(Calendar.status) == CalendarStatus.ACTIVE,
                ~exists().where(col(PushChannel.calendar_id) == col(Calendar.id), col(PushChannel.expires_at) > now),
            )
            .exists()
        )
        integrated = (
            select(Calendar.id)
            .where(
                col(Calendar.connection_id) == connection_id,
                col(Calendar.integrated).is_(True),
                col(Calendar.status) == CalendarStatus.ACTIVE,
            )
            .exists()
        )
        return and_(integrated, ~unpushed)

    async def check(
        self, channel_id: str, token: str | None, resource_id: str | None, state: str
    ) -> tuple[Notice, uuid.UUID | None]:
        """Whether a notification is ours and genuine, and the connection to sync if it is."""
        notice, connection_id = await self._check(channel_id, token, resource_id, state)
        self.stats.notifications[notice.value] += 1
        if notice is Notice.FORGED:
            logger.warning("a notification for channel %s had the wrong token", channel_id)
        return notice, connection_id

    async def _check(
        self, channel_id: str, token: str | None, resource_id: str | None, state: str
    ) -> tuple[Notice, uuid.UUID | None]:
        try:
            parsed = uuid.UUID(channel_id)
        except ValueError:
            return Notice.UNKNOWN, None
        async with self._db.session() as session:
            found = (
                await session.exec(
                    select(PushChannel, col(Calendar.connection_id))
                    .join(Calendar, col(Calendar.id) == col(PushChannel.calendar_id))
                    .join(CalendarConnection, col(CalendarConnection.id) == col(Calendar.connection_id))
                    .where(PushChannel.id == parsed, col(CalendarConnection.credentials).is_not(None))
                )
            ).first()
        if found is None:
            return Notice.UNKNOWN, None
        channel, connection_id = found
        genuine = hmac.compare_digest(channel.token_digest.encode(), digest(token or "").encode()) and (
            resource_id is None or hmac.compare_digest(channel.resource_id.encode(), resource_id.encode())
        )
        if not genuine:
            return Notice.FORGED, None
        if state == "sync":  # the channel's first message: nothing changed yet
            return Notice.IGNORED, None
        return Notice.SYNCED, connection_id
