"""Task sync's rules, shared by the parts that change them: who gets a tasks calendar, where it
is, and queuing its work with the change that calls for it.

With a paid seat and calendar sync on for a Google or Microsoft 365 connection, the owner's open
tasks with a due time are events in a calendar Kokous makes in that account ("Kokous tasks").
The work is done by the outbox (``task_sync.py``), so every change here only adds rows in its
own transaction; an owner without a paid seat or calendar sync gets no rows and no provider is
asked anything. Exchange and CalDAV connections take no part. The seat and the connections'
settings live outside this part: they reach ``queue_owner`` through the hook they are given.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.values import CalendarProvider, Seat
from db.models import CalendarConnection, OutboxMessage, Task, User
from scheduling import outbox

TASKS_CALENDAR_NAME = "Kokous tasks"
PAID_SEATS = (Seat.SALES_PAID, Seat.SERVICE_PAID)
TASK_SYNC_PROVIDERS = (CalendarProvider.GOOGLE, CalendarProvider.MICROSOFT)


async def sync_connection(session: AsyncSession, owner_id: uuid.UUID) -> CalendarConnection | None:
    """The connection the owner's tasks go to now: None without a paid seat or a connected Google
    or Microsoft 365 account with calendar sync on."""
    owner = await session.get(User, owner_id)
    if owner is None or owner.seat not in PAID_SEATS:
        return None
    return await _first_connection(
        session,
        owner_id,
        col(CalendarConnection.calendar_sync).is_(True),
        col(CalendarConnection.credentials).is_not(None),
    )


async def holding_connection(session: AsyncSession, owner_id: uuid.UUID) -> CalendarConnection | None:
    """The connection whose tasks calendar holds the owner's task events, when one was made."""
    return await _first_connection(session, owner_id, col(CalendarConnection.tasks_calendar_id).is_not(None))


async def _first_connection(session: AsyncSession, owner_id: uuid.UUID, *conditions: Any) -> CalendarConnection | None:
    """The owner's first Google or Microsoft 365 connection meeting ``conditions`` (the meetings
    account of a legacy pair first)."""
    statement = (
        select(CalendarConnection)
        .where(
            col(CalendarConnection.user_id) == owner_id,
            col(CalendarConnection.provider).in_(TASK_SYNC_PROVIDERS),
            *conditions,
        )
        .order_by(col(CalendarConnection.purpose) != "MEETINGS", col(CalendarConnection.created_at))
        .limit(1)
    )
    return (await session.exec(statement)).first()


async def queue_task(session: AsyncSession, task: Task, now: datetime, *, deleted: bool = False) -> bool:
    """Queue the task's event to follow a change (made, changed, removed); False when nothing
    is to be done (no event and none wanted)."""
    payload: dict[str, str] = {"tasks_of": task.owner_id.hex, "task_id": task.id.hex}
    if deleted:
        holder = await holding_connection(session, task.owner_id) if task.calendar_event_id else None
        if holder is None or task.calendar_event_id is None or holder.tasks_calendar_id is None:
            return False
        payload |= {"connection_id": holder.id.hex, "event_id": task.calendar_event_id}
    elif task.calendar_event_id is None and (
        task.due_at is None or task.done or await sync_connection(session, task.owner_id) is None
    ):
        return False
    session.add(OutboxMessage(kind=outbox.TASK_SYNC_EVENT, payload=payload, available_at=now))
    return True


async def queue_owner(session: AsyncSession, owner_id: uuid.UUID, now: datetime) -> bool:
    """After the owner's seat or a connection's calendar sync changed: every task's event made or
    removed as the rules now say. False when nothing is to be done."""
    if await sync_connection(session, owner_id) is None:
        with_events = select(Task.id).where(Task.owner_id == owner_id, col(Task.calendar_event_id).is_not(None))
        if (await session.exec(with_events.limit(1))).first() is None:
            return False
    session.add(OutboxMessage(kind=outbox.TASKS_SYNC, payload={"tasks_of": owner_id.hex}, available_at=now))
    return True
