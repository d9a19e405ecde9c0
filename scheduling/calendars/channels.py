"""Push channels: the provider tells us when a calendar changes, and we sync it at once.

After each successful sync of a connection whose provider can push (``PushWatch``: Google watch
channels, Graph subscriptions), every integrated calendar gets a live channel. Before it ends it
is renewed in place where the provider allows (Graph), else replaced by a new one (new id; the
old one is stopped), so notifications never lapse. A calendar the provider refuses to watch is
not asked again for a day (its connection is polled meanwhile). A notification carries no data:
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

from sqlalchemy import ColumnElement, and_, case, delete, exists, func, update
from sqlmodel import col, select

from common.values import CalendarProvider, CalendarStatus
from db.engine import Database
from db.models import Calendar, CalendarConnection, PushChannel
from providers.base import HeartbeatWatch, PushWatch, RenewableWatch
from providers.errors import ProviderError, ProviderRefused
from scheduling.clock import Clock

logger = logging.getLogger(__name__)

CHANNEL_TTL = timedelta(days=7)  # Google's longest
RENEW_BEFORE = timedelta(days=1)  # a channel closer than this to its end is renewed or replaced
REFUSED_FOR = timedelta(days=1)  # a calendar the provider refused to watch is not asked again before


class Lifecycle(Enum):
    """What Graph says about a subscription itself, besides changes of its calendar."""

    REAUTHORIZATION_REQUIRED = "reauthorizationRequired"  # renew it, or it stops
    SUBSCRIPTION_REMOVED = "subscriptionRemoved"  # gone: open a new one, then sync
    MISSED = "missed"  # some notifications were lost: sync


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
    active: dict[str, int] = field(default_factory=dict)  # live channels by provider, as last counted
    opened: int = 0
    refused: int = 0  # calendars the provider would not watch
    renewed: int = 0
    stopped: int = 0
    syncs: int = 0
    # Seconds from a notification to the end of the sync it started (the slots are published then).
    sync_seconds: list[float] = field(default_factory=list)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class PushChannels:
    def __init__(self, *, db: Database, clock: Clock, address: str | None) -> None:
        """``address``: where providers post, ``{address}/{provider}`` (None: no channels, the
        background pass polls)."""
        self._db = db
        self._clock = clock
        self._address = address
        self.stats = PushStats()

    @property
    def enabled(self) -> bool:
        return self._address is not None

    async def keep_open(self, client: PushWatch, calendars: list[Calendar], provider: CalendarProvider) -> None:
        """Give each calendar a channel that lives for at least ``RENEW_BEFORE``; stop replaced ones."""
        if self._address is None:
            return
        now = self._clock()
        ids = [calendar.id for calendar in calendars]
        async with self._db.session() as session:
            channels = (await session.exec(select(PushChannel).where(col(PushChannel.calendar_id).in_(ids)))).all()
        # A channel kept alive by the provider's own pings is replaced only once it went quiet.
        renew_before = timedelta(0) if isinstance(client, HeartbeatWatch) else RENEW_BEFORE
        for calendar in calendars:
            own = [channel for channel in channels if channel.calendar_id == calendar.id]
            if any(channel.expires_at > now + renew_before for channel in own):
                continue
            if calendar.push_refused_until is not None and calendar.push_refused_until > now:
                continue
            live = [channel for channel in own if channel.expires_at > now]
            if live and isinstance(client, RenewableWatch) and await self._renewed(client, live[-1]):
                continue
            try:
                await self._open(client, calendar, now, f"{self._address}/{CalendarProvider(provider).value.lower()}")
            except ProviderRefused as exc:
                logger.info("calendar %s cannot be watched: %s; polling it", calendar.id, exc)
                await self._refused(calendar.id, now)
                continue
            except ProviderError as exc:
                logger.warning("no push channel for calendar %s: %s", calendar.id, exc)
                continue
            if own:
                self.stats.renewed += 1
            for old in own:
                await self._stop(client, old)

    async def _renewed(self, client: RenewableWatch, channel: PushChannel) -> bool:
        """Extend the channel in place; False when the provider no longer has it (open a new one)."""
        try:
            expires_at = await client.renew_watch(channel.resource_id, CHANNEL_TTL)
        except ProviderError as exc:
            logger.info("channel %s not renewed: %s; opening a new one", channel.id, exc)
            return False
        async with self._db.transaction() as session:
            await session.exec(
                update(PushChannel).where(col(PushChannel.id) == channel.id).values(expires_at=expires_at)
            )
        self.stats.renewed += 1
        return True

    async def _refused(self, calendar_id: uuid.UUID, now: datetime) -> None:
        self.stats.refused += 1
        async with self._db.transaction() as session:
            await session.exec(
                update(Calendar).where(col(Calendar.id) == calendar_id).values(push_refused_until=now + REFUSED_FOR)
            )

    async def _open(self, client: PushWatch, calendar: Calendar, now: datetime, address: str) -> None:
        channel_id, token = uuid.uuid4(), secrets.token_urlsafe(32)
        opened = await client.watch(
            calendar.external_id, channel_id=str(channel_id), address=address, token=token, ttl=CHANNEL_TTL
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

    async def _stop(self, client: PushWatch, channel: PushChannel) -> None:
        with contextlib.suppress(ProviderError):
            await client.stop_watch(str(channel.id), channel.resource_id)
        await self.forget(channel.id)
        self.stats.stopped += 1

    async def forget(self, channel_id: uuid.UUID) -> None:
        """Drop a channel the provider no longer has (removed on its side)."""
        async with self._db.transaction() as session:
            await session.exec(delete(PushChannel).where(col(PushChannel.id) == channel_id))

    async def due_now(self, channel_id: uuid.UUID) -> None:
        """Make a channel due for renewal, so the next sync renews it (it stays live meanwhile)."""
        due = self._clock() + RENEW_BEFORE
        expires_at = col(PushChannel.expires_at)
        async with self._db.transaction() as session:
            await session.exec(
                update(PushChannel)
                .where(col(PushChannel.id) == channel_id)
                .values(expires_at=case((expires_at > due, due), else_=expires_at))
            )

    async def count_active(self) -> None:
        """Count live channels by provider for ``/metrics`` (the background pass calls this)."""
        async with self._db.session() as session:
            rows = (
                await session.exec(
                    select(col(CalendarConnection.provider), func.count())
                    .select_from(PushChannel)
                    .join(Calendar, col(Calendar.id) == col(PushChannel.calendar_id))
                    .join(CalendarConnection, col(CalendarConnection.id) == col(Calendar.connection_id))
                    .where(col(PushChannel.expires_at) > self._clock())
                    .group_by(col(CalendarConnection.provider))
                )
            ).all()
        self.stats.active = {str(provider).lower(): int(count) for provider, count in rows}

    async def any_for(self, calendar_ids: list[uuid.UUID]) -> bool:
        async with self._db.session() as session:
            found = await session.exec(
                select(PushChannel.id).where(col(PushChannel.calendar_id).in_(calendar_ids)).limit(1)
            )
            return found.first() is not None

    async def stop_all(self, client: PushWatch, calendar_ids: list[uuid.UUID]) -> None:
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
        self,
        channel_id: str,
        token: str | None,
        resource_id: str | None,
        *,
        changed: bool,
        heartbeat: timedelta | None = None,
    ) -> tuple[Notice, uuid.UUID | None]:
        """Whether a notification naming our channel id (Google, Exchange) is ours and genuine,
        and the connection to sync if it says something changed (not a first or status message).
        ``heartbeat``: the channel lives while it posts; a genuine message keeps it alive that long."""
        try:
            parsed = uuid.UUID(channel_id)
        except ValueError:
            return self._counted(Notice.UNKNOWN, channel_id), None
        found = await self._channel(col(PushChannel.id) == parsed)
        notice = self._genuine(found, token, resource_id)
        if notice is Notice.SYNCED and not changed:
            notice = Notice.IGNORED
        if found is not None and heartbeat is not None and notice is not Notice.FORGED:
            await self._heard(found[0], heartbeat)
        return self._counted(notice, channel_id), found[1] if found and notice is Notice.SYNCED else None

    async def _heard(self, channel: PushChannel, heartbeat: timedelta) -> None:
        """A channel that lives while it posts (``HeartbeatWatch``) was heard from: alive for longer."""
        async with self._db.transaction() as session:
            await session.exec(
                update(PushChannel)
                .where(col(PushChannel.id) == channel.id)
                .values(expires_at=self._clock() + heartbeat)
            )

    async def check_subscription(
        self, subscription_id: str, client_state: str | None
    ) -> tuple[Notice, PushChannel | None, uuid.UUID | None]:
        """Whether a Graph notification is ours and genuine: its subscription, and the connection."""
        found = await self._channel(
            col(PushChannel.resource_id) == subscription_id,
            col(CalendarConnection.provider) == CalendarProvider.MICROSOFT,
        )
        notice = self._genuine(found, client_state, None)
        if found is None or notice is not Notice.SYNCED:
            return self._counted(notice, subscription_id), None, None
        return self._counted(notice, subscription_id), found[0], found[1]

    def _counted(self, notice: Notice, channel: str) -> Notice:
        self.stats.notifications[notice.value] += 1
        if notice is Notice.FORGED:
            logger.warning("a notification for channel %s had the wrong token", channel[:100])
        return notice

    async def _channel(self, *where: ColumnElement[bool]) -> tuple[PushChannel, uuid.UUID] | None:
        """The channel and its connection, while the connection still holds credentials."""
        async with self._db.session() as session:
            found = (
                await session.exec(
                    select(PushChannel, col(Calendar.connection_id))
                    .join(Calendar, col(Calendar.id) == col(PushChannel.calendar_id))
                    .join(CalendarConnection, col(CalendarConnection.id) == col(Calendar.connection_id))
                    .where(*where, col(CalendarConnection.credentials).is_not(None))
                )
            ).first()
        return None if found is None else (found[0], found[1])

    @staticmethod
    def _genuine(found: tuple[PushChannel, uuid.UUID] | None, token: str | None, resource_id: str | None) -> Notice:
        if found is None:
            return Notice.UNKNOWN
        channel = found[0]
        genuine = hmac.compare_digest(channel.token_digest.encode(), digest(token or "").encode()) and (
            resource_id is None or hmac.compare_digest(channel.resource_id.encode(), resource_id.encode())
        )
        return Notice.SYNCED if genuine else Notice.FORGED
