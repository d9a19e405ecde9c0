"""The owner's contact, meeting and task mutations; each answers a union with typed errors."""

from __future__ import annotations

from typing import Annotated

import strawberry

from db.models import Contact, Task
from resolvers import crm as crm_resolvers
from scheduling.crm.meetings import MeetingResult as MeetingOutcome
from scheduling.crm.tasks import TaskResult as TaskOutcome
from scheduling.crm.values import MeetingView, Removed
from schema.crm_inputs import (
    CreateContactInput,
    CreateMeetingInput,
    CreateTaskInput,
    UpdateContactInput,
    UpdateMeetingInput,
    UpdateTaskInput,
)
from schema.crm_types import ContactType, Ctx, MeetingType, TaskType
from schema.errors import ContactExistsError, InvalidInputError, NotFoundError, error_from_domain
from schema.types import DeletedType, DeleteResult

CreateContactResult = Annotated[
    ContactType | InvalidInputError | ContactExistsError, strawberry.union("CreateContactResult")
]
UpdateContactResult = Annotated[
    ContactType | InvalidInputError | NotFoundError, strawberry.union("UpdateContactResult")
]
MeetingResult = Annotated[MeetingType | InvalidInputError | NotFoundError, strawberry.union("MeetingResult")]
DeleteMeetingResult = Annotated[
    DeletedType | InvalidInputError | NotFoundError, strawberry.union("DeleteMeetingResult")
]
TaskResult = Annotated[TaskType | InvalidInputError | NotFoundError, strawberry.union("TaskResult")]


def _meeting(result: MeetingOutcome) -> MeetingResult:
    return MeetingType.from_view(result) if isinstance(result, MeetingView) else error_from_domain(result)


def _task(result: TaskOutcome) -> TaskResult:
    return TaskType.from_row(result) if isinstance(result, Task) else error_from_domain(result)


@strawberry.type
class CrmMutation:
    @strawberry.mutation(description="Add a contact; an email address you have already is `ContactExists`.")
    async def create_contact(self, info: Ctx, input: CreateContactInput) -> CreateContactResult:
        result = await crm_resolvers.create_contact(info.context, input.to_draft())
        return ContactType.from_row(result) if isinstance(result, Contact) else error_from_domain(result)

    @strawberry.mutation(description="Change a contact's name or properties; bookings never overwrite them.")
    async def update_contact(self, info: Ctx, id: strawberry.ID, input: UpdateContactInput) -> UpdateContactResult:
        result = await crm_resolvers.update_contact(info.context, id, input.to_change())
        return ContactType.from_row(result) if isinstance(result, Contact) else error_from_domain(result)

    @strawberry.mutation(
        description="Make a meeting with a contact. With calendar sync on, it goes into your primary calendar "
        "with the contact invited (your calendar sends the invitation); without, it is only recorded."
    )
    async def create_meeting(self, info: Ctx, input: CreateMeetingInput) -> MeetingResult:
        result = await crm_resolvers.create_meeting(info.context, input.contact_id, input.title, input.start, input.end)
        return _meeting(result)

    @strawberry.mutation(description="Rename or move a meeting you made; its calendar event and invitation follow.")
    async def update_meeting(self, info: Ctx, id: strawberry.ID, input: UpdateMeetingInput) -> MeetingResult:
        return _meeting(await crm_resolvers.update_meeting(info.context, id, input.to_change()))

    @strawberry.mutation(description="Cancel a meeting you made; its calendar event goes and the contact is told.")
    async def delete_meeting(self, info: Ctx, id: strawberry.ID) -> DeleteMeetingResult:
        result = await crm_resolvers.delete_meeting(info.context, id)
        return (
            DeletedType(id=strawberry.ID(str(result.id))) if isinstance(result, Removed) else error_from_domain(result)
        )

    @strawberry.mutation(description="Add a task, perhaps with a due time and a contact.")
    async def create_task(self, info: Ctx, input: CreateTaskInput) -> TaskResult:
        return _task(await crm_resolvers.create_task(info.context, input.to_draft(), input.contact_id))

    @strawberry.mutation(description="Change a task: its title, due time, contact, or whether it is done.")
    async def update_task(self, info: Ctx, id: strawberry.ID, input: UpdateTaskInput) -> TaskResult:
        return _task(await crm_resolvers.update_task(info.context, id, input.to_change(), input.contact()))

    @strawberry.mutation(description="Delete a task.")
    async def delete_task(self, info: Ctx, id: strawberry.ID) -> DeleteResult:
        result = await crm_resolvers.delete_task(info.context, id)
        return (
            DeletedType(id=strawberry.ID(str(result.id))) if isinstance(result, Removed) else error_from_domain(result)
        )
