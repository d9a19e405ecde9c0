"""Inputs for contacts, meetings and tasks, each with a conversion to the domain value.

On updates a field left out keeps its value; for a task's ``due`` and ``contactId``, null
clears it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import strawberry

from scheduling.crm.values import KEEP, ContactChange, ContactDraft, Keep, MeetingChange, TaskChange, TaskDraft
from schema.scalars import DateTime

T = TypeVar("T")


@strawberry.input(description="Something known about a contact: the key is a lower-case identifier such as `company`.")
class ContactPropertyInput:
    key: str
    value: str


def _pairs(properties: list[ContactPropertyInput] | None) -> Sequence[tuple[str, str]] | None:
    return None if properties is None else [(item.key, item.value) for item in properties]


@strawberry.input
class CreateContactInput:
    email: str
    name: str | None = None
    properties: list[ContactPropertyInput] | None = None

    def to_draft(self) -> ContactDraft:
        return ContactDraft(email=self.email, name=self.name or "", properties=_pairs(self.properties) or ())


@strawberry.input(description="Fields left out keep their values; `properties` replaces them all.")
class UpdateContactInput:
    name: str | None = None
    properties: list[ContactPropertyInput] | None = None

    def to_change(self) -> ContactChange:
        return ContactChange(name=self.name, properties=_pairs(self.properties))


@strawberry.input
class CreateMeetingInput:
    contact_id: strawberry.ID
    title: str
    start: DateTime
    end: DateTime


@strawberry.input(description="Fields left out keep their values; a new start alone keeps the meeting's length.")
class UpdateMeetingInput:
    title: str | None = None
    start: DateTime | None = None
    end: DateTime | None = None

    def to_change(self) -> MeetingChange:
        return MeetingChange(title=self.title, start=self.start, end=self.end)


@strawberry.input
class CreateTaskInput:
    title: str
    due: DateTime | None = None
    done: bool = False
    contact_id: strawberry.ID | None = strawberry.field(default=None, description="One of your contacts.")

    def to_draft(self) -> TaskDraft:
        return TaskDraft(title=self.title, due=self.due, done=self.done)


@strawberry.input(description="Fields left out keep their values; null `due` or `contactId` clears it.")
class UpdateTaskInput:
    title: str | None = None
    due: DateTime | None = strawberry.UNSET
    done: bool | None = None
    contact_id: strawberry.ID | None = strawberry.UNSET

    def to_change(self) -> TaskChange:
        return TaskChange(title=self.title, due=_kept(self.due), done=self.done)

    def contact(self) -> str | Keep | None:
        return _kept(self.contact_id)


def _kept(value: T) -> T | Keep:
    """A field the client left out is kept; one it sent (null too) is the change."""
    return KEEP if value is strawberry.UNSET else value
