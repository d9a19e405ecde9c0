"""Which calendar events calendar sync logs as meetings on the owner's contacts, and why not.

Pure: the facts of one event in, one decision out. The rules follow HubSpot's calendar sync: a
meeting the owner made in the calendar with a known contact as a guest is logged on that
contact; what an app made (Kokous's own events included: their booking or meeting is logged)
is not, nor is what is no meeting with anyone (all-day, free, out-of-office entries), nor what
the owner did not make or no longer attends. Every decision carries a reason the owner reads.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from providers.base import CalendarEvent

SYNC_OFF = "calendar sync is off for this connection"
EVENT_DELETED = "the event was deleted"
OWN_FOLLOWED = "follows its event, moved or renamed in the calendar"


@dataclass(frozen=True)
class Decision:
    """``contacts``: the addresses of the contacts it becomes a meeting with (none: skipped, and
    ``why`` says why)."""

    contacts: tuple[str, ...]
    why: str = ""

    @property
    def imported(self) -> bool:
        return bool(self.contacts)

    @property
    def reason(self) -> str:
        """The line the owner reads."""
        if self.contacts:
            return f"imported as a meeting with {listed(self.contacts)}"
        return f"not imported: {self.why}"


def decide(
    event: CalendarEvent,
    *,
    contacts: Collection[str],
    sync_on: bool,
    connected_at: datetime,
    written_by_us: bool,
) -> Decision:
    """The decision for one event. ``contacts``: which of its attendees are the owner's contacts;
    ``written_by_us``: Kokous wrote it (a booking's event, or a meeting's the owner made on a
    contact), as its own records say."""
    skipped = _skip_reason(event, sync_on=sync_on, connected_at=connected_at, written_by_us=written_by_us)
    if skipped is not None:
        return Decision((), skipped)
    found = tuple(dict.fromkeys(address for address in event.attendees if address in contacts))
    if not found:
        return Decision((), "no guest is one of your contacts" if event.attendees else "it has no guests")
    return Decision(found)


def _skip_reason(event: CalendarEvent, *, sync_on: bool, connected_at: datetime, written_by_us: bool) -> str | None:
    if not sync_on:
        return SYNC_OFF
    if event.end <= connected_at:
        return "it ended before the calendar was connected"
    if event.cancelled:
        return "the event is cancelled"
    if event.declined:
        return "you declined it"
    if written_by_us or (event.app is not None and event.app.ours):
        return "Kokous wrote it for a booking or a meeting, which is logged already"
    if event.app is not None:
        return f"made by another app ({event.app.what})"
    if event.special is not None:
        return f"not a meeting ({event.special})"
    if event.all_day:
        return "an all-day event"
    if event.free:
        return "it shows you as free"
    if not event.organizer_self:
        return "someone else organizes it"
    return None


def listed(addresses: Sequence[str], *, most: int = 3) -> str:
    """A few addresses for a reason line (the column holds 300 characters)."""
    shown = ", ".join(address[:60] for address in addresses[:most])
    return shown if len(addresses) <= most else f"{shown} and {len(addresses) - most} more"
