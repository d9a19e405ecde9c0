"""Contacts, the meetings on them, tasks and calendar sync's decisions, as the owner sees them.

Times are in UTC. A list's contacts, meetings and tasks read their fields in batches
(``resolvers/crm_loaders.py``), so a long list costs a few queries, not a few per item.
"""

from __future__ import annotations

import uuid

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from common.values import MeetingSource
from db.models import CalendarImport as CalendarImportRow
from db.models import Contact as ContactRow
from db.models import Task as TaskRow
from resolvers import crm_loaders
from resolvers.context import RequestContext
from scheduling.crm.values import MeetingView
from schema import enums as _enums  # noqa: F401  (registers the enums)
from schema.scalars import DateTime

Ctx = Info[RequestContext, None]


@strawberry.type(name="ContactProperty", description="Something known about a contact, by key.")
class ContactPropertyType:
    key: str
    value: str


@strawberry.type(
    name="Contact",
    description="Someone you meet: everyone who books or asks for a meeting becomes one, and you add others. "
    "One per email address, whatever its case. What you record stays: a later booking only fills in a "
    "missing name and properties not yet known.",
)
class ContactType:
    id: strawberry.ID
    email: str
    name: str | None
    properties: list[ContactPropertyType]
    _row: strawberry.Private[ContactRow]

    @classmethod
    def from_row(cls, row: ContactRow) -> ContactType:
        return cls(
            id=strawberry.ID(str(row.id)),
            email=row.email,
            name=row.name or None,
            properties=[ContactPropertyType(key=key, value=str(value)) for key, value in row.properties.items()],
            _row=row,
        )

    @strawberry.field(
        description="Your meetings with this contact, earliest first: bookings on your pages (confirmed ones), "
        "meetings you made here, and meetings found in your calendar."
    )
    async def meetings(self, info: Ctx) -> list[MeetingType]:
        return [MeetingType.from_view(view) for view in await crm_loaders.meetings_of(info.context, self._row.id)]

    @strawberry.field(description="Your tasks about this contact.")
    async def tasks(self, info: Ctx) -> list[TaskType]:
        return [TaskType.from_row(row) for row in await crm_loaders.tasks_of(info.context, self._row.id)]


async def _contact(info: Ctx, contact_id: uuid.UUID) -> ContactType | None:
    row = await crm_loaders.contact(info.context, contact_id)
    return None if row is None else ContactType.from_row(row)


@strawberry.type(
    name="Meeting",
    description="A meeting with a contact. A booking's meeting has the booking's id and changes through the "
    "booking mutations; one found in your calendar changes in the calendar.",
)
class MeetingType:
    id: strawberry.ID
    title: str
    start: DateTime
    end: DateTime
    source: MeetingSource
    calendar_invitation_sent: bool = strawberry.field(
        description="Whether the contact was invited: true for bookings (Kokous emails the invitation), for "
        "meetings you made with calendar sync on (your calendar sends it) and for meetings found in your "
        "calendar (the contact is a guest of its event); false when only recorded, or when your calendar "
        "refused the event."
    )
    _view: strawberry.Private[MeetingView]

    @classmethod
    def from_view(cls, view: MeetingView) -> MeetingType:
        return cls(
            id=strawberry.ID(str(view.id)),
            title=view.title,
            start=DateTime(view.start),
            end=DateTime(view.end),
            source=view.source,
            calendar_invitation_sent=view.calendar_invitation_sent,
            _view=view,
        )

    @strawberry.field
    async def contact(self, info: Ctx) -> ContactType:
        found = await _contact(info, self._view.contact_id)
        if found is None:  # deleted since the meeting was read
            raise GraphQLError("contact not found", extensions={"code": "NOT_FOUND"})
        return found


@strawberry.type(name="Task", description="Something to do, perhaps by a due time, perhaps about a contact.")
class TaskType:
    id: strawberry.ID
    title: str
    due: DateTime | None
    done: bool
    in_calendar: bool = strawberry.field(description="Whether the task is in your tasks calendar now.")
    _row: strawberry.Private[TaskRow]

    @classmethod
    def from_row(cls, row: TaskRow) -> TaskType:
        return cls(
            id=strawberry.ID(str(row.id)),
            title=row.title,
            due=None if row.due_at is None else DateTime(row.due_at),
            done=row.done,
            in_calendar=row.calendar_event_id is not None,
            _row=row,
        )

    @strawberry.field
    async def contact(self, info: Ctx) -> ContactType | None:
        return None if self._row.contact_id is None else await _contact(info, self._row.contact_id)


@strawberry.type(
    name="CalendarImport",
    description="What calendar sync decided about one event in your calendar: imported as a meeting, or "
    "skipped, and why.",
)
class CalendarImportType:
    external_event_id: str
    title: str
    start: DateTime
    imported: bool
    reason: str
    at: DateTime

    @classmethod
    def from_row(cls, row: CalendarImportRow) -> CalendarImportType:
        return cls(
            external_event_id=row.external_event_id,
            title=row.title,
            start=DateTime(row.start_at),
            imported=row.imported,
            reason=row.reason,
            at=DateTime(row.at),
        )
