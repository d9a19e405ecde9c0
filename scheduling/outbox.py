"""Work that follows a commit (emails, calendar writes), done and retried by a worker.

Rows are written in the same transaction as the booking, so a crash loses nothing. A worker
claims due rows by pushing their ``available_at`` forward by a lease (on PostgreSQL with
``FOR UPDATE SKIP LOCKED``, so several processes share the work), runs the handler for the
row's kind and marks it done, or schedules a retry with exponential backoff. Kinds without a
handler in this process are left for a process that has one.

The lease is short and renewed while the worker holds the rows: a live worker keeps them for
as long as a provider takes to answer, and the rows of a worker that died (``kill -9``, a lost
machine) are free for the next worker within ``LEASE`` rather than after a long fixed wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlmodel import col, select

from db.columns import new_id, utc_now
from db.engine import Database
from db.models import OutboxMessage
from db.plain import Plain, Rows
from scheduling.clock import Clock
from scheduling.concurrency import run_all

logger = logging.getLogger(__name__)

CALENDAR_CREATE_EVENT = "calendar.create_event"
CALENDAR_UPDATE_EVENT = "calendar.update_event"
CALENDAR_DELETE_EVENT = "calendar.delete_event"
EMAIL_BOOKING_CONFIRMED = "email.booking_confirmed"
EMAIL_BOOKING_CANCELLED = "email.booking_cancelled"
EMAIL_BOOKING_RESCHEDULED = "email.booking_rescheduled"
EMAIL_REQUEST_RECEIVED = "email.request_received"
EMAIL_REQUEST_DECLINED = "email.request_declined"
EMAIL_REQUEST_MOVED = "email.request_moved"
EMAIL_OWNER_NEW_BOOKING = "email.owner_new_booking"
EMAIL_OWNER_NEW_REQUEST = "email.owner_new_request"
EMAIL_OWNER_CALENDAR_INACTIVE = "email.owner_calendar_inactive"
EMAIL_OWNER_MOVED_OUTSIDE_RULES = "email.owner_moved_outside_rules"
EMAIL_OWNER_MOVE_NOT_FOLLOWED = "email.owner_move_not_followed"
# The owner deleted or moved a booking's event in their calendar: the booking follows.
BOOKING_FOLLOW_CALENDAR = "booking.follow_calendar"
# A meeting the owner made on a contact, with calendar sync on: its event and the invitation.
MEETING_CREATE_EVENT = "meeting.create_event"
MEETING_UPDATE_EVENT = "meeting.update_event"
MEETING_DELETE_EVENT = "meeting.delete_event"
# Task sync: one task's event follows it; every task's event follows a change of seat or sync.
TASK_SYNC_EVENT = "task.sync_event"
TASKS_SYNC = "tasks.sync"
# What one row is about: rows about the same booking, meeting or owner's tasks run in the order
# they were made.
SUBJECT_KEYS = ("booking_id", "meeting_id", "tasks_of")

LEASE = timedelta(seconds=10)
RENEW_EVERY = LEASE / 3  # leaves two renewals' slack for a slow database write
MAX_BACKOFF = timedelta(hours=1)
WAKE_SETTLE = 0.1  # seconds

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class RetryLater(Exception):
    """A handler's work could not be done now; try again, not before ``after`` when given."""

    def __init__(self, reason: str, *, after: timedelta | None = None) -> None:
        super().__init__(reason)
        self.after = after


def kinds_for_new_booking(*, confirmed: bool) -> tuple[str, ...]:
    if confirmed:
        return (CALENDAR_CREATE_EVENT, EMAIL_BOOKING_CONFIRMED, EMAIL_OWNER_NEW_BOOKING)
    return (EMAIL_REQUEST_RECEIVED, EMAIL_OWNER_NEW_REQUEST)


async def add_rows(rows: Rows, kinds: Sequence[str], payload: dict[str, Any], *, available_at: datetime) -> None:
    """Rows of several kinds about one subject, in the caller's transaction, as one multi-row
    INSERT: a booking's calendar write and emails cost one statement, not one each."""
    if not kinds:
        return
    created_at = utc_now()
    values: dict[str, Any] = {}
    for index, kind in enumerate(kinds):
        row = {"id": new_id(), "kind": kind, "payload": payload, "attempts": 0}
        row |= {"available_at": available_at, "created_at": created_at}
        values |= {f"{name}_{index}": value for name, value in row.items()}
    await rows.run(_insert_rows(len(kinds)), values)


@functools.cache
def _insert_rows(count: int) -> Plain:
    """The INSERT of ``count`` rows, each value bound as ``<column>_<row>``."""
    columns = ("id", "kind", "payload", "attempts", "available_at", "created_at")
    rows = [
        {name: bindparam(f"{name}_{index}", type_=_OUTBOX.c[name].type) for name in columns} for index in range(count)
    ]
    return Plain(insert(_OUTBOX).values(rows))


_OUTBOX = OutboxMessage.metadata.tables["outbox"]


def subject_of(message: OutboxMessage) -> object:
    """The booking or meeting a row is about (its own id when it names neither)."""
    return next((message.payload[key] for key in SUBJECT_KEYS if key in message.payload), message.id)


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s … capped at an hour."""
    return min(timedelta(seconds=5 * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


class OutboxWorker:
    def __init__(
        self,
        *,
        db: Database,
        handlers: Mapping[str, Handler],
        clock: Clock,
        poll_interval: float = 2.0,
        batch_size: int = 20,
    ) -> None:
        self._db = db
        self._handlers = dict(handlers)
        self._clock = clock
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        """Called after a commit that added rows, so they go out at once rather than at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        """Until ``stop``: work through due rows, then wait for a wake-up or the poll interval."""
        while not self._stopping.is_set():
            try:
                while await self.run_once() and not self._stopping.is_set():
                    pass
            except Exception:
                logger.exception("outbox: a pass failed; trying again")
            self._wakeup.clear()
            if self._stopping.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)
                # Woken by a commit: its live updates go out first (rendering emails is CPU work
                # that would hold up a fan-out to many subscribers), the rows a moment later.
                await asyncio.sleep(WAKE_SETTLE)

    def stop(self) -> None:
        """Finish the pass under way (its transactions complete), then leave ``run``."""
        self._stopping.set()
        self._wakeup.set()

    async def run_once(self) -> int:
        """Claim and process one batch; returns how many rows it processed."""
        claimed = await self._claim()
        if not claimed:
            return 0
        # Rows of one booking (or meeting) in order (create before cancel); different ones side by
        # side, so a slow calendar provider does not hold back everyone's emails.
        by_subject: dict[object, list[OutboxMessage]] = {}
        for message in claimed:
            by_subject.setdefault(subject_of(message), []).append(message)
        finished = asyncio.Event()
        keeper = asyncio.create_task(self._keep_leased(claimed, finished))
        try:
            await run_all(self._process_in_order(messages) for messages in by_subject.values())
        finally:
            finished.set()  # not cancel(): a renewal under way completes its transaction first
            await asyncio.wait([keeper])
        return len(claimed)

    async def _keep_leased(self, claimed: list[OutboxMessage], finished: asyncio.Event) -> None:
        """Renew the lease of the pass's unfinished rows until the pass is ``finished``.

        Only rows still carrying this pass's lease are renewed: a row finished meanwhile (done, or
        given its retry time) keeps what ``_finish`` wrote.
        """
        ids = [message.id for message in claimed]
        lease = claimed[0].available_at
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), RENEW_EVERY.total_seconds())
            if finished.is_set():
                return
            renewed = self._clock() + LEASE
            try:
                async with self._db.transaction(write=True) as session:
                    await session.exec(
                        update(OutboxMessage)
                        .where(
                            col(OutboxMessage.id).in_(ids),
                            col(OutboxMessage.done_at).is_(None),
                            col(OutboxMessage.available_at) == lease,
                        )
                        .values(available_at=renewed)
                    )
            except Exception:
                logger.warning("outbox: renewing the lease of %d rows failed; trying again", len(ids), exc_info=True)
                continue
            lease = renewed

    async def _process_in_order(self, messages: list[OutboxMessage]) -> None:
        for message in messages:
            await self._process(message)

    async def _claim(self) -> list[OutboxMessage]:
        if not self._handlers:
            return []
        now = self._clock()
        async with self._db.transaction(write=True) as session:
            statement = (
                select(OutboxMessage)
                .where(
                    col(OutboxMessage.done_at).is_(None),
                    col(OutboxMessage.available_at) <= now,
                    col(OutboxMessage.kind).in_(list(self._handlers)),
                )
                .order_by(col(OutboxMessage.available_at))
                .limit(self._batch_size)
                .with_for_update(skip_locked=True)
            )
            messages = list((await session.exec(statement)).all())
            for message in messages:
                message.available_at = now + LEASE
                message.attempts += 1
                session.add(message)
        return messages

    async def _process(self, message: OutboxMessage) -> None:
        try:
            await self._handlers[message.kind](message.payload)
        except Exception as exc:
            delay = backoff(message.attempts)
            if isinstance(exc, RetryLater) and exc.after is not None:
                delay = max(delay, exc.after)
            logger.warning(
                "outbox: %s failed (attempt %d), retrying in %s: %s", message.kind, message.attempts, delay, exc
            )
            await self._finish(message, error=f"{type(exc).__name__}: {exc}"[:2000], retry_at=self._clock() + delay)
            return
        await self._finish(message, error=None, retry_at=None)

    async def _finish(self, message: OutboxMessage, *, error: str | None, retry_at: datetime | None) -> None:
        async with self._db.transaction(write=True) as session:
            row = await session.get(OutboxMessage, message.id)
            if row is None:
                return
            if retry_at is None:
                row.done_at = self._clock()
                row.last_error = None
            else:
                row.available_at = retry_at
                row.last_error = error
            session.add(row)
