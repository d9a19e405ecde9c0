"""Keeps the local busy-time cache current, so slot queries never wait on a provider (rule 7).

A connection's integrated calendars are read for a window that covers every page's horizon:
where the provider can say what changed (``IncrementalSync``), round by round from their events
(``event_sync``: only changes are fetched and applied, and each stored round's events go on to
``on_round``, calendar sync's meetings on contacts); otherwise in one free/busy call whose
answer replaces the cached intervals. The range each calendar holds is stored with it, and the
owner's ``AvailabilityChanged`` is published when answers may differ. A
failed fetch is recorded on the calendars, so answers can say some times may be missing. In the
background each process claims connections whose cache is older than ``interval`` (``FOR UPDATE
SKIP LOCKED`` with a lease, so processes share the work) and refreshes them in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from time import perf_counter
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.values import CalendarStatus
from db.models import BusyInterval, Calendar, CalendarConnection, SchedulingPage
from providers.base import BusyBlock, IncrementalSync, PushWatch
from providers.errors import (
    CalendarGone,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
)
from scheduling.calendars.access import ProviderAccess
from scheduling.calendars.channels import Lifecycle, Notice, PushChannels
from scheduling.calendars.clients import SHARED_QUOTA_PROVIDERS
from scheduling.calendars.event_sync import RoundHook, sync_calendar
from scheduling.calendars.vault import CredentialsUnreadable
from scheduling.clock import Clock
from scheduling.concurrency import run_all
from scheduling.engine.coverage import MARGIN, MAX_AHEAD, PAST
from scheduling.events import AvailabilityChanged, EventBus

logger = logging.getLogger(__name__)

DEFAULT_AHEAD = timedelta(days=60) + MARGIN  # the default horizon
LEASE = timedelta(minutes=2)
# After a failed fetch, a visitor's query does not ask that provider again for this long (the
# background pass keeps trying): one slow or broken provider must not make every query wait.
RETRY_AFTER_FAILURE = timedelta(minutes=1)


class BusySync:
    def __init__(
        self,
        *,
        access: ProviderAccess,
        bus: EventBus,
        clock: Clock,
        channels: PushChannels,
        on_round: RoundHook,
        interval: timedelta = timedelta(minutes=5),
        incremental_interval: timedelta = timedelta(minutes=1),
        pushed_interval: timedelta = timedelta(hours=6),
        concurrency: int = 8,
    ) -> None:
        self._access = access
        self._db = access.db
        self._bus = bus
        self._clock = clock
        self._interval = interval
        # Connections not pushed whose calendars all say what changed cheaply (a sync token
        # each) are asked this often: one small call, not a refetch of the whole range. Not
        # Google and Graph: their quota is shared by every owner here (``interval`` for them).
        self._incremental_interval = incremental_interval
        # Connections whose calendars all push their changes are polled only this often, as a
        # safety net (and to renew channels well before they end).
        self._pushed_interval = pushed_interval
        self.channels = channels
        self._on_round = on_round  # each stored round's events go on to calendar sync (meetings)
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}  # pushed syncs under way
        self._again: set[uuid.UUID] = set()  # connections notified again while their sync ran
        self._filling: dict[uuid.UUID, asyncio.Future[bool]] = {}  # fetches visitors wait on
        self._concurrency = asyncio.Semaphore(concurrency)
        self._stopping = asyncio.Event()
        self.rounds = {"full": 0, "incremental": 0}  # calendar sync rounds, for ``/metrics``
        self._chores: list[Callable[[], Awaitable[object]]] = []  # cheap upkeep run on every pass

    def also_each_pass(self, chore: Callable[[], Awaitable[object]]) -> None:
        """Run ``chore`` on every background pass too (e.g. expiring unconfirmed OAuth grants)."""
        self._chores.append(chore)

    async def refresh(self, connection_id: uuid.UUID, *, visitor_waiting: bool = False) -> bool:
        """Fetch and store the connection's busy time now; False when the provider failed.

        ``visitor_waiting``: someone's slots wait on this answer, so it takes one free/busy call
        even where the events could be synced (that takes Exchange three round trips, and a new
        window lists every event); the event sync (sync token, meetings, push channel) is left
        to the next background pass, which finds the connection due at once.

        A connection with no integrated calendar is still asked for its calendar list, so lost
        access shows up within one interval for every connection (a health probe).
        """
        async with self._db.session() as session:
            connection = await session.get(CalendarConnection, connection_id)
            if connection is None:
                return False
            active = list(
                (
                    await session.exec(
                        select(Calendar).where(
                            Calendar.connection_id == connection_id, col(Calendar.status) == CalendarStatus.ACTIVE
                        )
                    )
                ).all()
            )
            ahead = await self._horizon(session, connection.user_id)
        calendars = [calendar for calendar in active if calendar.integrated]
        if not active:
            return True
        if not calendars:
            return await self._probe(connection)
        now = self._clock()
        start, end = now - PAST, now + ahead
        # Answers change when busy time does, and also when time that was not known (never
        # fetched, beyond the last fetch's horizon, or failing) becomes known.
        newly_known = any(
            calendar.busy_failed_at is not None
            or calendar.covered_until is None
            or calendar.covered_until < end - MARGIN
            for calendar in calendars
        )
        try:
            async with self._concurrency, self._access.client(connection) as client:
                if isinstance(client, IncrementalSync) and not visitor_waiting:  # only what changed since
                    changed, all_synced = await self._sync_events(connection, client, calendars, (start, end), now)
                    if not all_synced:
                        if changed:
                            await self._bus.publish(
                                AvailabilityChanged(owner_id=connection.user_id, reason="busy_time")
                            )
                        return False
                else:
                    blocks = await client.busy_intervals([calendar.external_id for calendar in calendars], start, end)
                    changed = await self._store(
                        connection_id,
                        calendars,
                        blocks,
                        now,
                        (start, end),
                        events_later=isinstance(client, IncrementalSync),
                    )
        except CalendarGone as exc:  # That calendar is no longer shared; the others sync next time
            await self._access.lose_access(connection, exc, external_id=exc.calendar_id)
            return False
        except ProviderError as exc:
            logger.warning("busy time of connection %s not refreshed: %s", connection_id, exc)
            await self._failed(connection, calendars, now)
            return False
        except Exception:  # a bug, or a provider's answer we could not read: never a visitor's error
            logger.exception("busy time of connection %s not refreshed", connection_id)
            await self._failed(connection, calendars, now)
            return False
        if changed or newly_known:
            await self._bus.publish(AvailabilityChanged(owner_id=connection.user_id, reason="busy_time"))
        return True

    async def _sync_events(
        self,
        connection: CalendarConnection,
        client: IncrementalSync,
        calendars: list[Calendar],
        window: tuple[datetime, datetime],
        now: datetime,
    ) -> tuple[bool, bool]:
        """A round for each calendar; one calendar's failure leaves the others' rounds standing.
        Whether busy time changed, and whether every calendar was synced.

        Lost access and rate limits concern the whole account and end the round; anything else
        (one calendar gone, or failing) is noted on that calendar alone.
        """
        changed, synced, failed = False, [], False
        for calendar in calendars:
            try:
                done = await sync_calendar(
                    self._db, client, calendar, start=window[0], end=window[1], now=now, on_round=self._on_round
                )
                changed |= done.changed
                self.rounds["full" if done.full else "incremental"] += 1
            except (ProviderAuthError, ProviderRateLimited):
                raise
            except CalendarGone as exc:  # no longer shared: that calendar turns inactive
                await self._access.lose_access(connection, exc, external_id=exc.calendar_id)
                failed = True
            except ProviderError as exc:
                logger.warning("busy time of calendar %s not refreshed: %s", calendar.id, exc)
                await self._failed(connection, [calendar], now)
                failed = True
            else:
                synced.append(calendar)
        if synced:
            async with self._db.transaction() as session:
                await _mark_checked(session, connection.id, now)
            if isinstance(client, PushWatch):
                await self.channels.keep_open(client, synced, connection.provider)
        return changed, not failed

    async def _failed(self, connection: CalendarConnection, calendars: list[Calendar], now: datetime) -> None:
        """Note the failure on the calendars; answers say times may be missing until a fetch works."""
        ids = [calendar.id for calendar in calendars]
        async with self._db.transaction() as session:
            await session.exec(update(Calendar).where(col(Calendar.id).in_(ids)).values(busy_failed_at=now))
        if any(calendar.busy_failed_at is None for calendar in calendars):
            await self._bus.publish(AvailabilityChanged(owner_id=connection.user_id, reason="busy_time"))

    async def _probe(self, connection: CalendarConnection) -> bool:
        try:
            async with self._concurrency, self._access.client(connection) as client:
                await client.list_calendars()
        except ProviderError as exc:
            logger.warning("health probe of connection %s failed: %s", connection.id, exc)
            return False
        async with self._db.transaction() as session:
            await _mark_checked(session, connection.id, self._clock())
        return True

    async def fill_uncovered(self, owner_id: uuid.UUID, until: datetime) -> None:
        """Fetch, in parallel, every integrated calendar of the owner whose busy time is not held
        until ``until`` (never fetched, or a page's horizon grew beyond the last fetch).

        Time whose busy time is unknown is never offered; this is the one moment a visitor waits
        on providers (bar B3: about as long as the slowest of them). A provider that failed a
        moment ago is not asked again here (the background pass retries it), and its calendar's
        unknown time stays unoffered, which the answer says (``complete``).
        """
        retry_from = self._clock() - RETRY_AFTER_FAILURE
        async with self._db.session() as session:
            connection_ids = (
                await session.exec(
                    select(col(Calendar.connection_id))
                    .join(CalendarConnection, col(Calendar.connection_id) == col(CalendarConnection.id))
                    .where(
                        col(CalendarConnection.user_id) == owner_id,
                        col(CalendarConnection.credentials).is_not(None),
                        col(Calendar.integrated).is_(True),
                        col(Calendar.status) == CalendarStatus.ACTIVE,
                        or_(col(Calendar.covered_until).is_(None), col(Calendar.covered_until) < until),
                        or_(col(Calendar.busy_failed_at).is_(None), col(Calendar.busy_failed_at) < retry_from),
                    )
                    .distinct()
                )
            ).all()
        if connection_ids:
            await run_all(self._fill(connection_id) for connection_id in connection_ids)

    async def _fill(self, connection_id: uuid.UUID) -> None:
        """One fetch per connection for every visitor waiting on it in this process: a popular
        page whose horizon just grew asks the provider once, not once per visitor."""
        filling = self._filling.get(connection_id)
        if filling is None:
            filling = self._filling[connection_id] = asyncio.ensure_future(
                self.refresh(connection_id, visitor_waiting=True)
            )
            filling.add_done_callback(lambda _: self._filling.pop(connection_id, None))
        await asyncio.shield(filling)  # a visitor leaving does not cut the others' fetch short

    async def _horizon(self, session: AsyncSession, owner_id: uuid.UUID) -> timedelta:
        """How far ahead the owner's pages let visitors book (the cache must cover all of it)."""
        row = (
            await session.exec(
                select(func.max(SchedulingPage.booking_horizon_days), func.max(SchedulingPage.fixed_range_end)).where(
                    SchedulingPage.owner_id == owner_id
                )
            )
        ).first()
        ahead = DEFAULT_AHEAD
        if row is not None:
            days, last_day = row
            if days is not None:
                ahead = max(ahead, timedelta(days=int(days)) + MARGIN)
            if isinstance(last_day, date):
                until = datetime.combine(last_day, time(), tzinfo=UTC) + MARGIN - self._clock()
                ahead = max(ahead, until)
        return min(ahead, MAX_AHEAD)

    async def _store(
        self,
        connection_id: uuid.UUID,
        calendars: list[Calendar],
        blocks: list[BusyBlock],
        now: datetime,
        covered: tuple[datetime, datetime],
        *,
        events_later: bool = False,
    ) -> bool:
        """Replace the calendars' cached intervals (from a free/busy answer) and the range they
        cover; True when they changed.

        ``events_later``: the calendars' events are synced otherwise (the free/busy answer was
        for a waiting visitor). Those intervals name no event, so the next round must list every
        event again (sync token cleared), and the connection is due for it at once."""
        by_external_id = {calendar.external_id: calendar.id for calendar in calendars}
        calendar_ids = list(by_external_id.values())
        fetched = {
            (by_external_id[block.calendar_id], block.start.astimezone(UTC), block.end.astimezone(UTC))
            for block in blocks
            if block.calendar_id in by_external_id and block.start < block.end
        }
        async with self._db.transaction() as session:
            rows = (
                await session.exec(
                    select(col(BusyInterval.calendar_id), col(BusyInterval.start_at), col(BusyInterval.end_at)).where(
                        col(BusyInterval.calendar_id).in_(calendar_ids)
                    )
                )
            ).all()
            changed = {(row[0], row[1], row[2]) for row in rows} != fetched
            if changed:
                await session.exec(delete(BusyInterval).where(col(BusyInterval.calendar_id).in_(calendar_ids)))
                session.add_all(
                    BusyInterval(calendar_id=calendar_id, start_at=start, end_at=end, updated_at=now)
                    for calendar_id, start, end in fetched
                )
            values: dict[str, object] = {
                "busy_synced_at": now,
                "covered_from": covered[0],
                "covered_until": covered[1],
                "busy_failed_at": None,
            }
            if events_later:
                values["sync_token"] = None
            await session.exec(update(Calendar).where(col(Calendar.id).in_(calendar_ids)).values(**values))
            await _mark_checked(session, connection_id, None if events_later else now)
        return changed

    async def run(self) -> None:
        """Until ``stop``: refresh stale connections, then wait a little."""
        while not self._stopping.is_set():
            try:
                await self.channels.count_active()
                claimed = await self.claim_due()
                await run_all(self.refresh(connection_id) for connection_id in claimed)
            except Exception:
                logger.exception("busy-time sync: a pass failed; trying again")
            for chore in self._chores:
                try:
                    await chore()
                except Exception:
                    logger.exception("busy-time sync: %r failed; trying again next pass", chore)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.pass_pause.total_seconds())

    @property
    def pass_pause(self) -> timedelta:
        """The wait between background passes: short enough that a connection due is asked soon
        after (a quarter of the shortest interval), never longer than 30 s."""
        return min(self._interval / 5, self._incremental_interval / 4, timedelta(seconds=30))

    def stop(self) -> None:
        """Finish the pass under way (its transactions complete), then leave ``run``."""
        self._stopping.set()

    async def finish_pushed(self) -> None:
        """Let syncs started by notifications, and fetches visitors started, finish (the server is stopping)."""
        await asyncio.gather(*self._running.values(), *self._filling.values(), return_exceptions=True)

    async def notified(
        self,
        channel_id: str,
        token: str | None,
        resource_id: str | None,
        *,
        changed: bool,
        heartbeat: timedelta | None = None,
    ) -> Notice:
        """A Google or Exchange notification: checked, then (if something changed) one incremental
        sync of the connection."""
        notice, connection_id = await self.channels.check(
            channel_id, token, resource_id, changed=changed, heartbeat=heartbeat
        )
        if notice is Notice.SYNCED and connection_id is not None:
            self._sync_soon(connection_id)
        return notice

    async def notified_subscription(
        self, subscription_id: str, client_state: str | None, lifecycle: Lifecycle | None
    ) -> Notice:
        """A Graph notification: a change (one incremental sync), or news of the subscription.

        Renewal and replacement happen in that sync: a subscription that needs reauthorizing is
        marked as ending now (the sync renews it), a removed one is forgotten (the sync opens a
        new one). Missed notifications need nothing more: the delta round reads every change
        since the last one, notified or not.
        """
        notice, channel, connection_id = await self.channels.check_subscription(subscription_id, client_state)
        if notice is not Notice.SYNCED or channel is None or connection_id is None:
            return notice
        if lifecycle is Lifecycle.REAUTHORIZATION_REQUIRED:
            await self.channels.due_now(channel.id)
        elif lifecycle is Lifecycle.SUBSCRIPTION_REMOVED:
            await self.channels.forget(channel.id)
        self._sync_soon(connection_id)
        return notice

    def _sync_soon(self, connection_id: uuid.UUID) -> None:
        """One sync at a time per connection: notifications that arrive while it runs ask for one
        more after it, so a burst costs two rounds, not one each."""
        if connection_id in self._running:
            self._again.add(connection_id)
        else:
            self._running[connection_id] = asyncio.create_task(
                self._sync_until_quiet(connection_id, perf_counter()), name=f"push-sync-{connection_id}"
            )

    async def _sync_until_quiet(self, connection_id: uuid.UUID, received: float) -> None:
        stats = self.channels.stats
        try:
            while True:
                self._again.discard(connection_id)
                try:
                    await self.refresh(connection_id)
                except Exception:
                    logger.exception("push-triggered sync of connection %s failed", connection_id)
                stats.syncs += 1
                stats.sync_seconds.append(perf_counter() - received)
                del stats.sync_seconds[:-1000]
                if connection_id not in self._again:
                    return
                received = perf_counter()
        finally:
            self._running.pop(connection_id, None)

    async def stop_channels(self, connection: CalendarConnection, calendar_ids: list[uuid.UUID]) -> None:
        """Best effort: close the push channels of calendars that no longer count.

        The account may be on its way out (disconnected, its access revoked): a failure here
        is only logged and never changes a calendar's status.
        """
        if not calendar_ids or connection.credentials is None or not await self.channels.any_for(calendar_ids):
            return
        client = None
        try:
            client = self._access.clients.client(connection.provider, self._access.vault.open(connection.credentials))
            if isinstance(client, PushWatch):
                await self.channels.stop_all(client, calendar_ids)
        except (ProviderError, CredentialsUnreadable, ValueError) as exc:
            logger.info("push channels of connection %s not stopped: %s", connection.id, exc)
        finally:
            if client is not None:
                await client.aclose()

    @property
    def access(self) -> ProviderAccess:
        """The provider access this sync works through."""
        return self._access

    @property
    def pushed_syncs_running(self) -> int:
        """Syncs started by notifications that have not ended yet."""
        return len(self._running)

    async def claim_due(self) -> list[uuid.UUID]:
        """Connections due for a background sync, leased to this process: those not synced for
        ``interval`` (``pushed_interval`` when all their calendars push their changes)."""
        now = self._clock()
        checked_at = col(CalendarConnection.checked_at)
        pushed = PushChannels.pushed(CalendarConnection.id, now)
        due = or_(
            checked_at.is_(None),
            and_(pushed, checked_at < now - self._pushed_interval),
            and_(
                ~pushed,
                or_(
                    checked_at < now - self._interval,
                    and_(
                        col(CalendarConnection.provider).not_in(SHARED_QUOTA_PROVIDERS),
                        _incremental(CalendarConnection.id),
                        checked_at < now - self._incremental_interval,
                    ),
                ),
            ),
        )
        async with self._db.transaction(write=True) as session:
            with_active_calendars = (
                select(col(Calendar.connection_id)).where(col(Calendar.status) == CalendarStatus.ACTIVE).distinct()
            )
            connections = (
                await session.exec(
                    select(CalendarConnection)
                    .where(
                        col(CalendarConnection.id).in_(with_active_calendars),
                        col(CalendarConnection.credentials).is_not(None),
                        due,
                        or_(
                            col(CalendarConnection.sync_lease_until).is_(None),
                            col(CalendarConnection.sync_lease_until) < now,
                        ),
                    )
                    .limit(50)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for connection in connections:
                connection.sync_lease_until = now + LEASE
                session.add(connection)
            return [connection.id for connection in connections]


def _incremental(connection_id: Any) -> ColumnElement[bool]:
    """SQL: the connection's integrated active calendars (it has some) all hold a sync token."""
    integrated = (
        col(Calendar.connection_id) == connection_id,
        col(Calendar.integrated).is_(True),
        col(Calendar.status) == CalendarStatus.ACTIVE,
    )
    return and_(
        select(Calendar.id).where(*integrated).exists(),
        ~select(Calendar.id).where(*integrated, col(Calendar.sync_token).is_(None)).exists(),
    )


async def _mark_checked(session: AsyncSession, connection_id: uuid.UUID, now: datetime | None) -> None:
    """The provider answered for this connection: the health probe is satisfied until ``now + interval``
    (None: due again at once), and the round's lease ends (the next one is due by ``checked_at`` alone)."""
    await session.exec(
        update(CalendarConnection)
        .where(col(CalendarConnection.id) == connection_id)
        .values(checked_at=now, sync_lease_until=None)
    )
