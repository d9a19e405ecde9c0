"""The values the CRM services take and answer with."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from common.values import MeetingSource


class Keep(Enum):
    """A field left out of a change: it keeps its value (None, by contrast, clears it)."""

    KEEP = "KEEP"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class Removed:
    """A meeting or task was deleted; ``id`` names it."""

    id: uuid.UUID


@dataclass(frozen=True)
class ContactDraft:
    email: str
    name: str = ""
    properties: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class ContactChange:
    """None keeps the current value; ``properties`` replaces the whole set."""

    name: str | None = None
    properties: Sequence[tuple[str, str]] | None = None


@dataclass(frozen=True)
class MeetingDraft:
    contact_id: uuid.UUID
    title: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class MeetingChange:
    """None keeps the current value."""

    title: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class TaskDraft:
    title: str
    due: datetime | None = None
    done: bool = False
    contact_id: uuid.UUID | None = None


@dataclass(frozen=True)
class TaskChange:
    """None (or KEEP) keeps the current value; None clears ``due`` and ``contact_id``."""

    title: str | None = None
    due: datetime | Keep | None = KEEP
    done: bool | None = None
    contact_id: uuid.UUID | Keep | None = KEEP


@dataclass(frozen=True)
class MeetingView:
    """A meeting on a contact as the owner sees it: one the owner made, one found in their
    calendar, or a booking (whose id it carries)."""

    id: uuid.UUID
    contact_id: uuid.UUID
    title: str
    start: datetime
    end: datetime
    source: MeetingSource
    calendar_invitation_sent: bool
