"""A meeting the owner made on a contact follows its event when the owner changes it in the
calendar: moved there, it moves here; deleted there, it is cancelled here. Our own writes come
back as notifications too and must change nothing.

In the order a new owner acts: connect Google or Microsoft 365 (the OAuth flow against the
double, calendar sync on by default), make a contact and a meeting on it through the API, then
change the event as in Google Calendar or Outlook. The doubles post their change
notifications to the server's real webhooks.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from db.models import Meeting
from tests.api import test_calendar_imports as calendar_imports
from tests.api import test_push as push
from tests.api import test_push_microsoft as push_microsoft
from tests.api.test_connect_microsoft import DEFAULT
from tests.api.test_known_time import ACCOUNT, day
from tests.api.test_push_microsoft import connected as outlook_connected
from tests.doubles.google import GoogleDouble
from tests.doubles.microsoft import MicrosoftDouble
from tests.doubles.server import RecordedRequest
from tests.support.booking_helpers import Owner
from tests.support.clock import MovableClock
from tests.support.connect_helpers import connect_google, connections, owner_allowed_to_connect
from tests.support.crm_documents import UPDATE_MEETING, answer, contact, create_contact, create_meeting
from tests.support.live_server import LiveServer
from tests.support.polling import eventually

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

google, clock, server = push.google, push.clock, push.server
tls, microsoft = push_microsoft.tls, push_microsoft.microsoft
outlook_server = calendar_imports.outlook_server
decisions = calendar_imports.decisions

VERA = "vera@example.com"
FOLLOWED = f"your meeting with {VERA} follows its event, moved or renamed in the calendar"
REMOVED = f"your meeting with {VERA} removed: the event was deleted"


async def meeting_made_here(server: LiveServer, owner: Owner, clock: MovableClock) -> tuple[str, str]:
    """A meeting with Vera made through the API, once its event is written: its id and the event's."""
    made = await create_contact(server, owner.token, VERA, name="Vera")
    meeting = await create_meeting(
        server, owner.token, made["id"], day(1, 10).isoformat(), day(1, 11).isoformat(), title="Pricing call"
    )
    assert meeting["__typename"] == "Meeting", meeting
    row = await eventually(
        lambda: stored(server, meeting["id"]),
        lambda row: row is not None and row.calendar_event_written_at is not None,
        "its event written",
    )
    assert row is not None
    assert row.external_event_id is not None
    clock.advance(60)  # what the owner does next comes after the write
    return meeting["id"], row.external_event_id


async def stored(server: LiveServer, meeting_id: str) -> Meeting | None:
    async with server.services.db.session() as session:
        return await session.get(Meeting, uuid.UUID(meeting_id))


async def own_meetings(server: LiveServer, owner: Owner) -> list[tuple[str, str, str]]:
    found = await contact(server, owner.token, VERA)
    assert found is not None
    return [(m["title"], m["start"], m["end"]) for m in found["meetings"] if m["source"] == "OWNER"]


async def meetings_become(server: LiveServer, owner: Owner, wanted: list[tuple[str, datetime, datetime]]) -> None:
    expected = [(title, start.isoformat(), end.isoformat()) for title, start, end in wanted]
    await eventually(lambda: own_meetings(server, owner), lambda found: found == expected, f"meetings {expected}")


async def noted(server: LiveServer, owner: Owner, event_id: str, reason: str) -> None:
    """The newest calendar sync decision on the event says ``reason``."""

    async def newest() -> tuple[bool, str] | None:
        on_event = [row for row in await decisions(server, owner) if row["externalEventId"] == event_id]
        return (on_event[0]["imported"], on_event[0]["reason"]) if on_event else None

    await eventually(newest, lambda found: found == (False, reason), reason)


def event_writes(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    """Requests that make, change or delete an event (syncs only read)."""
    return [r for r in requests if r.method in ("POST", "PUT", "PATCH", "DELETE") and "/events" in r.path]


async def test_a_meeting_made_here_follows_its_event_moved_or_deleted_in_google(
    server: LiveServer, google: GoogleDouble, clock: MovableClock
) -> None:
    # covers: SYNC-3, SYNC-7
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    meeting_id, event_id = await meeting_made_here(server, owner, clock)
    google.clear_requests()

    google.move_event(ACCOUNT, event_id, day(2, 14), day(2, 15))
    await meetings_become(server, owner, [("Pricing call", day(2, 14), day(2, 15))])
    await noted(server, owner, event_id, FOLLOWED)
    assert event_writes(google.requests) == []  # the calendar has it already: nothing written back

    # Moved here next: the calendar follows, and the notification of our own write moves nothing back.
    moved = await answer(server, UPDATE_MEETING, owner.token, id=meeting_id, input={"start": day(3, 9).isoformat()})
    assert moved["__typename"] == "Meeting", moved
    await eventually(
        lambda: stored(server, meeting_id),
        lambda row: row is not None and row.calendar_event_written_at is not None,
        "written again",
    )
    clock.advance(60)
    (connection,) = await connections(server, owner.token)
    assert await server.services.busy_sync.refresh(uuid.UUID(connection["id"]))
    assert await own_meetings(server, owner) == [("Pricing call", day(3, 9).isoformat(), day(3, 10).isoformat())]

    google.delete_event(ACCOUNT, event_id)
    await meetings_become(server, owner, [])
    await noted(server, owner, event_id, REMOVED)


async def test_a_meeting_made_here_follows_its_event_moved_or_deleted_in_outlook(
    outlook_server: LiveServer, microsoft: MicrosoftDouble, clock: MovableClock
) -> None:
    # covers: SYNC-3, SYNC-7
    server = outlook_server
    owner, _ = await outlook_connected(server, microsoft)
    meeting_id, event_id = await meeting_made_here(server, owner, clock)
    (event,) = microsoft.events_on(DEFAULT)
    assert [guest["emailAddress"]["address"] for guest in event["attendees"]] == [VERA]
    microsoft.clear_requests()

    microsoft.move_event(event_id, day(2, 14), day(2, 15))
    await meetings_become(server, owner, [("Pricing call", day(2, 14), day(2, 15))])
    await noted(server, owner, event_id, FOLLOWED)
    assert event_writes(microsoft.requests) == []

    microsoft.delete_event(event_id)
    await meetings_become(server, owner, [])
    await noted(server, owner, event_id, REMOVED)
    assert await stored(server, meeting_id) is None
