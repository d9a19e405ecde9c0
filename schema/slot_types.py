"""Slots as visitors see them: instants shown in the visitor's zone."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

import strawberry

from common.values import PageStatus
from scheduling.live.feeds import SlotSnapshot
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
    as_of: DateTime = strawberry.field(description="The oldest fetch of the calendars' busy time behind the list.")
    complete: bool = strawberry.field(
        description="False when some calendar's busy time for this window is not known (not fetched yet, or "
        "its provider could not be reached): times not known are left out, so some times may be missing."
    )
    status: PageStatus = strawberry.field(description="The page's state when the list was made.")

    @classmethod
    def from_domain(cls, snapshot: SlotSnapshot, timezone: str) -> SlotList:
        """Times are shown in the visitor's zone; the instants are the same in every zone."""
        return cls(
            slots=slots_in_zone(snapshot.slots, timezone),
            as_of=DateTime(snapshot.as_of),
            complete=snapshot.complete,
            status=snapshot.status,
        )
