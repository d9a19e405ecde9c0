"""Task sync's calendar work, done by the outbox worker: the tasks calendar and its events.

Each open task with a due time is a 30-minute event at its due time in the "Kokous tasks"
calendar of the owner's task-sync connection (``scheduling/task_calendar.py`` says which): the
task's title as its title, the contact it is about in its description. A done task's event is
removed, as is a task's whose due time is cleared, and every event when the seat or calendar
sync goes; the calendar itself stays, empty. Each run compares the task with what the calendar
should hold, so rows that run late or twice do no harm; the task's id (with its row's key) is
the event's idempotency key, and an earlier calendar of that name is taken up again rather than
a second made.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import delete, or_
from sqlmodel import col, select

from db.models import Calendar, CalendarConnection, Contact, Task, User
from providers.base import CalendarClient, EventDraft, SubCalendars
from providers.errors import ProviderRefused
from scheduling import outbox
from scheduling.calendars.access import ProviderAccess
from scheduling.calendars.writes import call_for_outbox, write_new_event
from scheduling.outbox import Handler
from scheduling.task_calendar import TASKS_CALENDAR_NAME, holding_connection, sync_connection

logger = logging.getLogger(__name__)

T = TypeVar("T")

TASK_EVENT_LENGTH = timedelta(minutes=30)


def task_event(task: Task, contact: Contact | None, owner: User, key: str) -> EventDraft:
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
            await self._follow(uuid.UUID(payload["task_id"]), payload["key"])

    async def _owner(self, payload: dict[str, Any]) -> None:
        """Every task whose event is there or may be wanted, one after another."""
        statement = select(Task.id).where(
            Task.owner_id == uuid.UUID(payload["tasks_of"]),
            or_(col(Task.calendar_event_id).is_not(None), col(Task.due_at).is_not(None)),
        )
        async with self._db.session() as session:
            task_ids = list((await session.exec(statement.order_by(col(Task.created_at)))).all())
        for task_id in task_ids:
            await self._follow(task_id, payload["key"])

    async def _follow(self, task_id: uuid.UUID, key: str) -> None:
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
                draft = task_event(task, contact, owner, key)
                await self._call(holder, partial(_update, holder.tasks_calendar_id, event_id, draft))
                return
            else:
                done = await self._call(holder, partial(_delete, holder.tasks_calendar_id, event_id))
                if done is None:
                    return
                await self._recorded(task_id, None, was=event_id)
        if not wanted or target is None or owner is None:
            return
        calendar_id = await self._calendar_of(target)
        if calendar_id is not None:
            draft = task_event(task, contact, owner, key)
            await write_new_event(partial(self._call, target), calendar_id, draft, partial(self._recorded, task_id))

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
            made = await self._call(row, _tasks_calendar)
            if made is None:
                return None
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
                return row.tasks_calendar_id

    async def _call(
        self, connection: CalendarConnection, operation: Callable[[CalendarClient], Awaitable[T]]
    ) -> T | None:
        return await call_for_outbox(self._access, connection, operation, partial(_failed, connection.id))

    async def _recorded(self, task_id: uuid.UUID, event_id: str | None, *, was: str | None = None) -> bool:
        """Record the task's event (None: it has none); False when the task is gone (or its
        event was changed meanwhile)."""
        async with self._db.transaction() as session:
            task = await session.get(Task, task_id, with_for_update=True)
            if task is None or (was is not None and task.calendar_event_id != was):
                return False
            task.calendar_event_id = event_id
            session.add(task)
            return True


async def _tasks_calendar(client: CalendarClient) -> str:
    """A calendar of that name the app made earlier (a lost answer, a reconnect), else a new one."""
    if not isinstance(client, SubCalendars):
        raise ProviderRefused("this calendar provider takes no tasks calendar", code="no_sub_calendars")
    for calendar in await client.list_calendars():
        if calendar.name == TASKS_CALENDAR_NAME and calendar.access.may_write and not calendar.primary:
            return calendar.external_id
    return await client.create_calendar(TASKS_CALENDAR_NAME)


async def _update(calendar_id: str, event_id: str, draft: EventDraft, client: CalendarClient) -> bool:
    await client.update_event(calendar_id, event_id, draft)
    return True


async def _delete(calendar_id: str, event_id: str, client: CalendarClient) -> bool:
    await client.delete_event(calendar_id, event_id)
    return True


async def _failed(connection_id: uuid.UUID, reason: str) -> None:
    logger.warning("task sync for calendar connection %s failed for good: %s", connection_id, reason)
