"""Slots as visitors see them: instants shown in the visitor's zone."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

import strawberry

from scheduling.live import SlotSnapshot
from scheduling.values import PageStatus
from schema import enums as _enums  # noqa: F401  (registers the enums)
from schema.scalars import DateTime


@strawberry.type
class Slot:
    start: DateTime
    end: DateTime


def slots_in_zone(pairs: Iterable[tuple[datetime, datetime]], timezone: str) -> list[Slot]:
    zone = ZoneInfo(timezone)
    return [Slot(start=DateTime(start.astimezone(zone)), end=DateTime(end.astimezone(zone))) for start, end in pairs]


@strawberry.type
class SlotList:
    slots: list[Slot]
    as_of: DateTime
    status: PageStatus = strawberry.field(description="The page's state when the list was made.")

    @classmethod
    def from_domain(cls, snapshot: SlotSnapshot, timezone: str) -> SlotList:
        """Times are shown in the visitor's zone; the instants are the same in every zone."""
        return cls(
            slots=slots_in_zone(snapshot.slots, timezone),
            as_of=DateTime(snapshot.as_of),
            status=snapshot.status,
        )
