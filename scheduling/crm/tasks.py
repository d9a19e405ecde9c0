"""The owner's tasks: a title, an optional due time and contact, done or not.

Task sync (tasks mirrored as events into a sub-calendar, for paid seats with calendar sync on)
hooks in at ``_calendar_follows``: it is called in every change's own transaction and queues
the task's outbox row with the change (``task_calendar.py``; the work is in
``task_sync.py``). ``Task.calendar_event_id`` says whether a task has its event now.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import cast

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from db.engine import Database
from db.models import Contact, Task
from scheduling.clock import Clock
from scheduling.crm import rules
from scheduling.crm.task_calendar import queue_task
from scheduling.crm.values import KEEP, Removed, TaskChange, TaskDraft
from scheduling.errors import InvalidInput, NotFound, Refused

TaskResult = Task | InvalidInput | NotFound
_NO_TASK = NotFound(message="task not found")
_NO_CONTACT = NotFound(message="contact not found")


class TaskService:
    def __init__(self, *, db: Database, clock: Clock, wake_outbox: Callable[[], None]) -> None:
        self._db = db
        self._clock = clock
        self._wake_outbox = wake_outbox

    async def list_tasks(self, owner_id: uuid.UUID) -> list[Task]:
        """Open tasks first, then by due time (tasks without one last), then oldest first."""
        async with self._db.session() as session:
            return list((await session.exec(_ordered(select(Task).where(Task.owner_id == owner_id)))).all())

    async def of_contacts(self, owner_id: uuid.UUID, contact_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Task]]:
        """Each contact's tasks, in one query."""
        found: dict[uuid.UUID, list[Task]] = {contact_id: [] for contact_id in contact_ids}
        statement = select(Task).where(Task.owner_id == owner_id, col(Task.contact_id).in_(list(contact_ids)))
        async with self._db.session() as session:
            for task in (await session.exec(_ordered(statement))).all():
                if task.contact_id is not None:
                    found[task.contact_id].append(task)
        return found

    async def create(self, owner_id: uuid.UUID, draft: TaskDraft) -> TaskResult:
        now = self._clock()
        try:
            async with self._db.transaction() as session:
                task = Task(
                    owner_id=owner_id,
                    title=rules.title(draft.title),
                    due_at=rules.moment("due", draft.due) if draft.due is not None else None,
                    done=draft.done,
                    contact_id=await _own_contact(session, owner_id, draft.contact_id),
                    created_at=now,
                    updated_at=now,
                )
                session.add(task)
                await session.flush()
                queued = await self._calendar_follows(session, task)
        except Refused as refused:
            return cast(InvalidInput | NotFound, refused.result)
        self._woken(queued)
        return task

    async def update(self, owner_id: uuid.UUID, task_id: uuid.UUID, change: TaskChange) -> TaskResult:
        try:
            async with self._db.transaction() as session:
                task = await _own_task(session, owner_id, task_id)
                if change.title is not None:
                    task.title = rules.title(change.title)
                if change.due is not KEEP:
                    task.due_at = rules.moment("due", change.due) if change.due is not None else None
                if change.done is not None:
                    task.done = change.done
                if change.contact_id is not KEEP:
                    task.contact_id = await _own_contact(session, owner_id, change.contact_id)
                task.updated_at = self._clock()
                session.add(task)
                queued = await self._calendar_follows(session, task)
        except Refused as refused:
            return cast(InvalidInput | NotFound, refused.result)
        self._woken(queued)
        return task

    async def delete(self, owner_id: uuid.UUID, task_id: uuid.UUID) -> Removed | NotFound:
        try:
            async with self._db.transaction() as session:
                task = await _own_task(session, owner_id, task_id)
                queued = await self._calendar_follows(session, task, deleted=True)
                await session.delete(task)
        except Refused:
            return _NO_TASK
        self._woken(queued)
        return Removed(id=task_id)

    async def _calendar_follows(self, session: AsyncSession, task: Task, *, deleted: bool = False) -> bool:
        """Task sync queues the task's event (made, changed or, when ``deleted``, removed) in the
        change's transaction; True when it queued work."""
        return await queue_task(session, task, self._clock(), deleted=deleted)

    def _woken(self, queued: bool) -> None:
        """After commit: the outbox does at once what was queued."""
        if queued:
            self._wake_outbox()


def _ordered(statement: SelectOfScalar[Task]) -> SelectOfScalar[Task]:
    return statement.order_by(
        col(Task.done), col(Task.due_at).is_(None), col(Task.due_at), col(Task.created_at), col(Task.id)
    )


async def _own_task(session: AsyncSession, owner_id: uuid.UUID, task_id: uuid.UUID) -> Task:
    task = await session.get(Task, task_id)
    if task is None or task.owner_id != owner_id:
        raise Refused(_NO_TASK)
    return task


async def _own_contact(session: AsyncSession, owner_id: uuid.UUID, contact_id: uuid.UUID | None) -> uuid.UUID | None:
    """The contact a task is about: one of the owner's (another owner's is not found)."""
    if contact_id is None:
        return None
    contact = await session.get(Contact, contact_id)
    if contact is None or contact.owner_id != owner_id:
        raise Refused(_NO_CONTACT)
    return contact.id
