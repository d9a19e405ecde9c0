"""Calendar sync's rules, one event at a time: what becomes a meeting on a contact, and the reason
the owner reads for what does not (the first rule that applies gives it)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from providers.base import AppMark, CalendarEvent
from scheduling.crm.import_rules import Decision, decide

CONNECTED = datetime(2026, 11, 30, 6, tzinfo=UTC)
START = CONNECTED + timedelta(days=1)
MEETING = CalendarEvent(
    "e1", START, START + timedelta(hours=1), busy=True, title="Pricing call", attendees=("vera@example.com",)
)
CONTACTS = {"vera@example.com", "olli@example.com"}


def decided(event: CalendarEvent, *, sync_on: bool = True, ours: bool = False) -> Decision:
    return decide(event, contacts=CONTACTS, sync_on=sync_on, connected_at=CONNECTED, written_by_us=ours)


def test_a_meeting_the_owner_made_with_contacts_is_imported_with_each_once() -> None:
    # covers: SYNC-2, SYNC-7
    event = replace(MEETING, attendees=("x@example.net", "olli@example.com", "vera@example.com", "olli@example.com"))

    decision = decided(event)

    assert (decision.imported, decision.contacts) == (True, ("olli@example.com", "vera@example.com"))
    assert decision.reason == "imported as a meeting with olli@example.com, vera@example.com"


@pytest.mark.parametrize(
    ("event", "sync_on", "ours", "reason"),
    [
        (MEETING, False, False, "calendar sync is off for this connection"),
        (replace(MEETING, cancelled=True), False, False, "calendar sync is off for this connection"),
        (replace(MEETING, end=CONNECTED), True, False, "it ended before the calendar was connected"),
        (replace(MEETING, cancelled=True, free=True), True, False, "the event is cancelled"),
        (replace(MEETING, declined=True), True, False, "you declined it"),
        (MEETING, True, True, "Kokous wrote it for a booking or a meeting, which is logged already"),
        (
            replace(MEETING, app=AppMark(True, "key")),
            True,
            False,
            "Kokous wrote it for a booking or a meeting, which is logged already",
        ),
        (
            replace(MEETING, app=AppMark(False, "its source is Zoom")),
            True,
            False,
            "made by another app (its source is Zoom)",
        ),
        (
            replace(MEETING, app=AppMark(None, "an app set its transactionId"), all_day=True),
            True,
            False,
            "made by another app (an app set its transactionId)",
        ),
        (replace(MEETING, special="focus time", all_day=True), True, False, "not a meeting (focus time)"),
        (replace(MEETING, all_day=True, free=True), True, False, "an all-day event"),
        (replace(MEETING, free=True), True, False, "it shows you as free"),
        (replace(MEETING, organizer_self=False), True, False, "someone else organizes it"),
        (replace(MEETING, attendees=("x@example.net",)), True, False, "no guest is one of your contacts"),
        (replace(MEETING, attendees=()), True, False, "it has no guests"),
    ],
)
def test_what_is_not_imported_says_why(event: CalendarEvent, sync_on: bool, ours: bool, reason: str) -> None:
    # covers: SYNC-2, SYNC-7
    decision = decided(event, sync_on=sync_on, ours=ours)

    assert (decision.imported, decision.reason) == (False, f"not imported: {reason}")


def test_a_reason_names_a_few_contacts_and_counts_the_rest() -> None:
    # covers: SYNC-7
    many = tuple(f"guest{number}@example.com" for number in range(6))

    decision = decide(
        replace(MEETING, attendees=many), contacts=set(many), sync_on=True, connected_at=CONNECTED, written_by_us=False
    )

    assert decision.contacts == many
    assert (
        decision.reason
        == "imported as a meeting with guest0@example.com, guest1@example.com, guest2@example.com and 3 more"
    )
