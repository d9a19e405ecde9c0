"""The signed-in owner's contacts, the meetings on them, tasks, and calendar sync's decisions.

Every id names only the caller's own objects: another owner's id is simply not found. Each
mutation is one unit of database work with its outbox rows, so one whose connection was lost
before its commit runs once more (``retry.py``).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from graphql import GraphQLError

from db.models import CalendarImport, Contact, Task, User
from resolvers.auth import require_user
from resolvers.context import RequestContext
from resolvers.ids import parse_id
from resolvers.retry import retried_if_lost
from scheduling.crm.meetings import MeetingResult
from scheduling.crm.tasks import TaskResult
from scheduling.crm.values import (
    KEEP,
    ContactChange,
    ContactDraft,
    Keep,
    MeetingChange,
    MeetingDraft,
    Removed,
    TaskChange,
    TaskDraft,
)
from scheduling.errors import ContactExists, InvalidInput, NotFound

_NO_CONTACT = NotFound(message="contact not found")
_NO_MEETING = NotFound(message="meeting not found")
_NO_TASK = NotFound(message="task not found")


def _invalid(result: InvalidInput) -> GraphQLError:
    """A list field answers a list by contract, so bad input is a typed GraphQL error."""
    return GraphQLError(result.message, extensions={"code": "INVALID_INPUT", "field": result.field})


async def contacts(context: RequestContext, owner: User, search: str | None) -> list[Contact]:
    found = await context.services.contacts.search(owner.id, search)
    if isinstance(found, InvalidInput):
        raise _invalid(found)
    return found


async def contact_by_email(context: RequestContext, owner: User, email: str) -> Contact | None:
    return await context.services.contacts.by_email(owner.id, email)


async def tasks(context: RequestContext, owner: User) -> list[Task]:
    return await context.services.tasks.list_tasks(owner.id)


async def calendar_imports(context: RequestContext, owner: User, last: int | None) -> list[CalendarImport]:
    found = await context.services.calendar_imports.recent(owner.id, last)
    if isinstance(found, InvalidInput):
        raise _invalid(found)
    return found


@retried_if_lost
async def create_contact(context: RequestContext, draft: ContactDraft) -> Contact | InvalidInput | ContactExists:
    user = require_user(context)
    return await context.services.contacts.create(user.id, draft)


@retried_if_lost
async def update_contact(
    context: RequestContext, contact_id: str, change: ContactChange
) -> Contact | InvalidInput | NotFound:
    user = require_user(context)
    parsed = parse_id(contact_id)
    if parsed is None:
        return _NO_CONTACT
    return await context.services.contacts.update(user.id, parsed, change)


@retried_if_lost
async def create_meeting(
    context: RequestContext, contact_id: str, title: str, start: datetime, end: datetime
) -> MeetingResult:
    user = require_user(context)
    parsed = parse_id(contact_id)
    if parsed is None:
        return _NO_CONTACT
    draft = MeetingDraft(contact_id=parsed, title=title, start=start, end=end)
    return await context.services.meetings.create(user.id, draft)


@retried_if_lost
async def update_meeting(context: RequestContext, meeting_id: str, change: MeetingChange) -> MeetingResult:
    user = require_user(context)
    parsed = parse_id(meeting_id)
    if parsed is None:
        return _NO_MEETING
    return await context.services.meetings.update(user.id, parsed, change)


@retried_if_lost
async def delete_meeting(context: RequestContext, meeting_id: str) -> Removed | InvalidInput | NotFound:
    user = require_user(context)
    parsed = parse_id(meeting_id)
    if parsed is None:
        return _NO_MEETING
    return await context.services.meetings.delete(user.id, parsed)


@retried_if_lost
async def create_task(context: RequestContext, draft: TaskDraft, contact_id: str | None) -> TaskResult:
    """``contact_id``: the contact the task is about, if any (``draft`` names none yet)."""
    user = require_user(context)
    contact = _contact_ref(contact_id)
    if isinstance(contact, NotFound):
        return contact
    return await context.services.tasks.create(user.id, replace(draft, contact_id=contact))


@retried_if_lost
async def update_task(
    context: RequestContext, task_id: str, change: TaskChange, contact_id: str | Keep | None
) -> TaskResult:
    """``contact_id``: the task's new contact, None for none, KEEP to keep it."""
    user = require_user(context)
    parsed = parse_id(task_id)
    contact = KEEP if contact_id is KEEP else _contact_ref(contact_id)
    if parsed is None:
        return _NO_TASK
    if isinstance(contact, NotFound):
        return contact
    return await context.services.tasks.update(user.id, parsed, replace(change, contact_id=contact))


def _contact_ref(contact_id: str | None) -> uuid.UUID | NotFound | None:
    """A contact named by id (an id that is no id names nothing), or None for no contact."""
    if contact_id is None:
        return None
    return parse_id(contact_id) or _NO_CONTACT


@retried_if_lost
async def delete_task(context: RequestContext, task_id: str) -> Removed | NotFound:
    user = require_user(context)
    parsed = parse_id(task_id)
    if parsed is None:
        return _NO_TASK
    return await context.services.tasks.delete(user.id, parsed)
