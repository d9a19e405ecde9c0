"""Task sync's calendar work, done by the outbox worker: the tasks calendar and its events.

Each open task with a due time is a 30-minute event at its due time in the "Kokous tasks"
calendar of the owner's task-sync connection (``task_calendar.py`` says which): the task's title
as its title, the contact it is about in its description. A done task's event is removed, as is
a task's whose due time is cleared, and every event when the seat or calendar sync goes; the
calendar itself stays, empty. Each run compares the task with what the calendar should hold, so
rows that run late, twice or side by side in two processes do no harm: the key stored on the
task is the event's idempotency key, so the provider keeps one event whoever makes it, and an
earlier calendar of that name is taken up again rather than a second made.

The mirror goes one way: an event the owner deletes or changes by hand is put back as the task
says at the task's next change, or when the seat or calendar sync changes.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import delete, or_, update
from sqlmodel import col, select

from db.models import Calendar, CalendarConnection, Contact, Task, User
from providers.base import CalendarClient, EventDraft, SubCalendars
from providers.errors import ProviderNotFound, ProviderRefused
from scheduling import outbox
from scheduling.calendars.access import ProviderAccess
from scheduling.calendars.writes import call_for_outbox, write_new_event
from scheduling.crm.task_calendar import TASKS_CALENDAR_NAME, holding_connection, sync_connection
from scheduling.outbox import Handler

logger = logging.getLogger(__name__)

T = TypeVar("T")

TASK_EVENT_LENGTH = timedelta(minutes=30)


def task_event(task: Task, contact: Contact | None, owner: User, key: str) -> EventDraft:
    """The task's event; ``key`` is the one stored on the task for it."""
    assert task.due_at is not None
    about = f"About {contact.name} ({contact.email})." if contact and contact.name else ""
    if contact and not contact.name:
        about = f"About {contact.email}."
    return EventDraft(
        idempotency_key=f"{task.id.hex}.{key}",
        summary=task.title,
        start=task.due_at,
        end=task.due_at + TASK_EVENT_LENGTH,
        timezone=owner.timezone,
        description=f"A task in Kokous. {about}".strip(),
    )


class TaskEvents:
    def __init__(self, *, access: ProviderAccess) -> None:
        self._access = access
        self._db = access.db
        self._making_calendar = asyncio.Lock()

    def handlers(self) -> dict[str, Handler]:
        return {outbox.TASK_SYNC_EVENT: self._task, outbox.TASKS_SYNC: self._owner}

    async def _task(self, payload: dict[str, Any]) -> None:
        if "event_id" in payload:
            await self._remove_of_deleted(payload)
        else:
            await self._follow(uuid.UUID(payload["task_id"]))

    async def _owner(self, payload: dict[str, Any]) -> None:
        """Every task whose event is there or may be wanted, one after another."""
        statement = select(Task.id).where(
            Task.owner_id == uuid.UUID(payload["tasks_of"]),
            or_(col(Task.calendar_event_id).is_not(None), col(Task.due_at).is_not(None)),
        )
        async with self._db.session() as session:
            task_ids = list((await session.exec(statement.order_by(col(Task.created_at)))).all())
        for task_id in task_ids:
            await self._follow(task_id)

    async def _follow(self, task_id: uuid.UUID) -> None:
        """Make the calendar hold what the task and the rules say now."""
        async with self._db.session() as session:
            task = await session.get(Task, task_id)
            if task is None:
                return  # deleted: its own row removes the event
            owner = await session.get(User, task.owner_id)
            contact = await session.get(Contact, task.contact_id) if task.contact_id else None
            target = await sync_connection(session, task.owner_id)
            holder = await holding_connection(session, task.owner_id)
        wanted = owner is not None and target is not None and task.due_at is not None and not task.done
        event_id = task.calendar_event_id
        if event_id is not None:
            if holder is None or holder.tasks_calendar_id is None:
                await self._recorded(task_id, None, was=event_id)  # the account went, and its events
            elif wanted and target is not None and holder.id == target.id and owner is not None:
                key = task.calendar_event_key or await self._event_key(task_id)
                update = partial(_update, holder.tasks_calendar_id, event_id, task_event(task, contact, owner, key))
                if await self._call(holder, update) is not False:
                    return  # updated (or failed for good, and logged)
                # Deleted in the calendar by hand: made again, as a new event.
                if not await self._recorded(task_id, None, was=event_id):
                    return
            else:
                done = await self._call(holder, partial(_delete, holder.tasks_calendar_id, event_id))
                if done is None:
                    return
                await self._recorded(task_id, None, was=event_id)
        if not wanted or target is None or owner is None:
            return
        for _ in range(2):  # once more in a new tasks calendar, when the owner deleted the old one
            calendar_id = await self._calendar_of(target)
            if calendar_id is None:
                return
            draft = task_event(task, contact, owner, await self._event_key(task_id))
            try:
                await write_new_event(
                    partial(self._call_in, calendar_id, target), calendar_id, draft, partial(self._recorded, task_id)
                )
                return
            except _TasksCalendarGone:
                await self._forget_calendar(target.id, calendar_id)

    async def _event_key(self, task_id: uuid.UUID) -> str:
        """The idempotency key of the task's event: the stored one, else a new one stored now, so
        every process making the event asks the provider for the same one."""
        async with self._db.transaction() as session:
            task = await session.get(Task, task_id, with_for_update=True)
            if task is None:
                return secrets.token_hex(8)  # deleted meanwhile: the event is removed when recorded
            if task.calendar_event_key is None:
                task.calendar_event_key = secrets.token_hex(8)
                session.add(task)
            return task.calendar_event_key

    async def _remove_of_deleted(self, payload: dict[str, Any]) -> None:
        async with self._db.session() as session:
            connection = await session.get(CalendarConnection, uuid.UUID(payload["connection_id"]))
        if connection is None or connection.tasks_calendar_id is None:
            return  # disconnected since: the event went with the account's access
        await self._call(connection, partial(_delete, connection.tasks_calendar_id, payload["event_id"]))

    async def _calendar_of(self, connection: CalendarConnection) -> str | None:
        """The connection's tasks calendar, made (or found again) the first time."""
        async with self._making_calendar:
            async with self._db.session() as session:
                row = await session.get(CalendarConnection, connection.id)
            if row is None:
                return None
            if row.tasks_calendar_id is not None:
                return row.tasks_calendar_id
            found = await self._call(row, _tasks_calendar)
            if found is None:
                return None
            made, new = found
            async with self._db.transaction() as session:
                row = await session.get(CalendarConnection, connection.id, with_for_update=True)
                if row is None:
                    return None
                if row.tasks_calendar_id is None:
                    row.tasks_calendar_id = made
                    session.add(row)
                    # One found again may have been listed as the owner's before: no longer.
                    await session.exec(
                        delete(Calendar).where(col(Calendar.connection_id) == row.id, col(Calendar.external_id) == made)
                    )
                kept = row.tasks_calendar_id
            if new and kept != made:  # another process made one at the same moment: theirs is kept
                await self._call(row, partial(_delete_calendar, made))
            return kept

    async def _call(
        self, connection: CalendarConnection, operation: Callable[[CalendarClient], Awaitable[T]]
    ) -> T | None:
        return await call_for_outbox(self._access, connection, operation, partial(_failed, connection.id))

    async def _call_in(
        self,
        calendar_id: str,
        connection: CalendarConnection,
        operation: Callable[[CalendarClient], Awaitable[T]],
    ) -> T | None:
        """``_call`` for writes into the tasks calendar: its being gone is ``_TasksCalendarGone``."""

        async def in_calendar(client: CalendarClient) -> T:
            try:
                return await operation(client)
            except ProviderNotFound as exc:
                raise _TasksCalendarGone(calendar_id) from exc

        return await self._call(connection, in_calendar)

    async def _forget_calendar(self, connection_id: uuid.UUID, calendar_id: str) -> None:
        """The owner deleted the tasks calendar: its events went with it, and a new one is made."""
        async with self._db.transaction() as session:
            row = await session.get(CalendarConnection, connection_id, with_for_update=True)
            if row is None or row.tasks_calendar_id != calendar_id:
                return
            row.tasks_calendar_id = None
            session.add(row)
            await session.exec(
                update(Task)
                .where(col(Task.owner_id) == row.user_id, col(Task.calendar_event_id).is_not(None))
                .values(calendar_event_id=None, calendar_event_key=None)
            )
        logger.info("the tasks calendar of calendar connection %s was deleted: making a new one", connection_id)

    async def _recorded(self, task_id: uuid.UUID, event_id: str | None, *, was: str | None = None) -> bool:
        """Record the task's event (None: it has none, and the next one gets a new key); False
        when the task is gone (or its event was changed meanwhile)."""
        async with self._db.transaction() as session:
            task = await session.get(Task, task_id, with_for_update=True)
            if task is None or (was is not None and task.calendar_event_id != was):
                return False
            task.calendar_event_id = event_id
            if event_id is None:
                task.calendar_event_key = None
            session.add(task)
            return True


class _TasksCalendarGone(Exception):
    """The tasks calendar is no longer in the account (the owner deleted it)."""


async def _tasks_calendar(client: CalendarClient) -> tuple[str, bool]:
    """A calendar of that name the app made earlier (a lost answer, a reconnect), else a new one;
    and whether it is new."""
    for calendar in await client.list_calendars():
        if calendar.name == TASKS_CALENDAR_NAME and calendar.access.may_write and not calendar.primary:
            return calendar.external_id, False
    return await _sub_calendars(client).create_calendar(TASKS_CALENDAR_NAME), True


async def _delete_calendar(calendar_id: str, client: CalendarClient) -> None:
    await _sub_calendars(client).delete_calendar(calendar_id)


def _sub_calendars(client: CalendarClient) -> SubCalendars:
    if not isinstance(client, SubCalendars):
        raise ProviderRefused("this calendar provider takes no tasks calendar", code="no_sub_calendars")
    return client


async def _update(calendar_id: str, event_id: str, draft: EventDraft, client: CalendarClient) -> bool:
    """True when updated; False when the event is no longer there (deleted by hand)."""
    try:
        await client.update_event(calendar_id, event_id, draft)
    except ProviderNotFound:
        return False
    return True


async def _delete(calendar_id: str, event_id: str, client: CalendarClient) -> bool:
    await client.delete_event(calendar_id, event_id)
    return True


async def _failed(connection_id: uuid.UUID, reason: str) -> None:
    logger.warning("task sync for calendar connection %s failed for good: %s", connection_id, reason)
