"""Meetings an owner makes on a contact, against the Google double over real HTTP.

With calendar sync on, the meeting's event goes to the primary calendar with the contact invited
(Google mails the invitation), and moving or cancelling it follows there. With calendar sync
off, the meeting is only recorded and Google hears nothing of it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import col, select

from common.values import MeetingSource
from db.models import Meeting, OutboxMessage
from tests.doubles.google import GoogleDouble
from tests.doubles.server import RecordedRequest
from tests.support.booking_helpers import NOW, Owner
from tests.support.connect_helpers import (
    GOOGLE_ACCOUNT,
    GOOGLE_FIXTURES,
    connect_google,
    connections,
    owner_allowed_to_connect,
    set_calendar_sync,
)
from tests.support.crm_documents import (
    DELETE_MEETING,
    UPDATE_MEETING,
    answer,
    contact,
    create_contact,
    create_meeting,
)
from tests.support.live_server import LiveServer
from tests.support.polling import eventually

START, END = "2026-12-03T10:00:00+02:00", "2026-12-03T11:00:00+02:00"


google, clock, server = GOOGLE_FIXTURES


async def connected_owner(server: LiveServer, google: GoogleDouble) -> tuple[Owner, str]:
    """A new owner as they would start: allowed to connect, Google connected; and a contact."""
    owner = await owner_allowed_to_connect(server, with_page=False)
    await connect_google(server, google, owner, GOOGLE_ACCOUNT)
    made = await create_contact(server, owner.token, "ada@example.com", name="Ada Lovelace")
    return owner, str(made["id"])


def event_writes(google: GoogleDouble) -> list[RecordedRequest]:
    """Requests that make, change or delete an event (the busy-time sync only reads)."""
    return [
        request
        for request in google.requests_to("/events")
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and not request.path.endswith("/watch")
    ]


async def written_events(google: GoogleDouble, count: int) -> list[dict[str, Any]]:
    return await eventually(lambda: google.events_on(GOOGLE_ACCOUNT), lambda events: len(events) == count, "events")


async def stored(server: LiveServer, meeting_id: str) -> Meeting | None:
    async with server.services.db.session() as session:
        return await session.get(Meeting, uuid.UUID(meeting_id))


async def test_with_calendar_sync_the_meeting_is_in_the_calendar_with_the_contact_invited(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-3
    owner, contact_id = await connected_owner(server, google)

    meeting = await create_meeting(server, owner.token, contact_id, START, END)
    assert meeting["__typename"] == "Meeting", meeting
    assert (meeting["title"], meeting["start"], meeting["end"]) == (
        "Quarterly review",
        "2026-12-03T08:00:00+00:00",
        "2026-12-03T09:00:00+00:00",
    )
    assert (meeting["source"], meeting["calendarInvitationSent"], meeting["contact"]["id"]) == (
        "OWNER",
        True,
        contact_id,
    )

    (event,) = await written_events(google, 1)
    assert event["summary"] == "Quarterly review"
    assert event["start"]["dateTime"] == "2026-12-03T10:00:00+02:00"
    assert [(guest["email"], guest["displayName"]) for guest in event["attendees"]] == [
        ("ada@example.com", "Ada Lovelace")
    ]
    (insert,) = event_writes(google)
    assert "sendUpdates=all" in insert.query  # Google mails the invitation from the owner's account
    row = await eventually(
        lambda: stored(server, meeting["id"]),
        lambda row: row is not None and row.external_event_id is not None,
        "recorded",
    )
    assert row is not None
    assert row.external_event_id == event["id"]
    (primary,) = [c for c in (await connections(server, owner.token))[0]["calendars"] if c["isPrimary"]]
    assert str(row.calendar_id) == primary["id"]

    found = await contact(server, owner.token, "ada@example.com")
    assert found is not None
    assert [(m["id"], m["source"], m["calendarInvitationSent"]) for m in found["meetings"]] == [
        (meeting["id"], "OWNER", True)
    ]


async def test_moving_and_cancelling_follow_in_the_calendar(server: LiveServer, google: GoogleDouble) -> None:
    # covers: SYNC-3
    owner, contact_id = await connected_owner(server, google)
    meeting = await create_meeting(server, owner.token, contact_id, START, END)
    (event,) = await written_events(google, 1)

    moved = await answer(
        server,
        UPDATE_MEETING,
        owner.token,
        id=meeting["id"],
        input={"start": "2026-12-04T14:00:00+02:00", "title": "Review"},
    )
    assert (moved["start"], moved["end"], moved["title"]) == (
        "2026-12-04T12:00:00+00:00",
        "2026-12-04T13:00:00+00:00",
        "Review",
    )
    (event,) = await eventually(
        lambda: google.events_on(GOOGLE_ACCOUNT),
        lambda events: len(events) == 1 and events[0]["start"]["dateTime"] == "2026-12-04T14:00:00+02:00",
        "the event moved",
    )
    assert event["summary"] == "Review"
    assert event["end"]["dateTime"] == "2026-12-04T15:00:00+02:00"

    cancelled = await answer(server, DELETE_MEETING, owner.token, id=meeting["id"])
    assert cancelled == {"__typename": "Deleted", "id": meeting["id"]}
    await written_events(google, 0)
    assert [request.method for request in event_writes(google)] == ["POST", "PATCH", "DELETE"]
    assert await stored(server, meeting["id"]) is None
    found = await contact(server, owner.token, "ada@example.com")
    assert found is not None
    assert found["meetings"] == []


async def test_without_calendar_sync_the_meeting_is_only_recorded(server: LiveServer, google: GoogleDouble) -> None:
    # covers: SYNC-3
    owner, contact_id = await connected_owner(server, google)
    await set_calendar_sync(server, owner, False)

    recorded = await create_meeting(server, owner.token, contact_id, START, END)
    assert (recorded["__typename"], recorded["calendarInvitationSent"]) == ("Meeting", False)
    moved = await answer(
        server, UPDATE_MEETING, owner.token, id=recorded["id"], input={"end": "2026-12-03T12:00:00+02:00"}
    )
    assert moved["end"] == "2026-12-03T10:00:00+00:00"
    async with server.services.db.session() as session:
        queued = (await session.exec(select(OutboxMessage).where(col(OutboxMessage.kind).startswith("meeting.")))).all()
    assert queued == []

    # The same owner with calendar sync on again: only that meeting reaches Google (so the
    # outbox was working all along, and the recorded one was never sent).
    await set_calendar_sync(server, owner, True)
    synced = await create_meeting(
        server, owner.token, contact_id, "2026-12-05T10:00:00+02:00", "2026-12-05T10:30:00+02:00"
    )
    assert synced["calendarInvitationSent"] is True
    (event,) = await written_events(google, 1)
    assert event["start"]["dateTime"] == "2026-12-05T10:00:00+02:00"
    assert len(event_writes(google)) == 1

    # Cancelling the recorded one asks the calendar nothing either.
    assert (await answer(server, DELETE_MEETING, owner.token, id=recorded["id"]))["__typename"] == "Deleted"
    found = await contact(server, owner.token, "ada@example.com")
    assert found is not None
    assert [(m["id"], m["calendarInvitationSent"]) for m in found["meetings"]] == [(synced["id"], True)]
    assert len(event_writes(google)) == 1


async def test_a_refused_event_leaves_the_meeting_recorded_without_an_invitation(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-3
    owner, contact_id = await connected_owner(server, google)
    refusal = {"error": {"code": 400, "message": "Bad Request", "errors": [{"reason": "invalid"}]}}
    google.fail("Quarterly review", status=400, body=refusal)  # the event's body names its title

    meeting = await create_meeting(server, owner.token, contact_id, START, END)
    assert meeting["calendarInvitationSent"] is True  # on its way

    async def sent() -> bool:
        found = await contact(server, owner.token, "ada@example.com")
        assert found is not None
        return bool(found["meetings"][0]["calendarInvitationSent"])

    assert await eventually(sent, lambda value: value is False, "the refusal recorded") is False
    assert google.events_on(GOOGLE_ACCOUNT) == []


BAD_MEETINGS = [
    (START, START, "Review", "end"),
    (END, START, "Review", "end"),
    (START, "2026-12-18T11:00:00+02:00", "Review", "end"),  # longer than two weeks
    (START, END, " ", "title"),
    (START, END, "x" * 301, "title"),
    (START, END, "<script>", "title"),
]


async def test_bad_meetings_are_refused_and_nothing_is_written(server: LiveServer, google: GoogleDouble) -> None:
    # covers: SYNC-3
    owner, contact_id = await connected_owner(server, google)
    for start, end, title, field in BAD_MEETINGS:
        refused = await create_meeting(server, owner.token, contact_id, start, end, title=title)
        assert (refused["__typename"], refused["field"]) == ("InvalidInput", field), (start, end, title)
    naive = await server.graphql(
        "mutation($input: CreateMeetingInput!) { createMeeting(input: $input) { __typename } }",
        {"input": {"contactId": contact_id, "title": "x", "start": "2026-12-03T10:00:00", "end": END}},
        token=owner.token,
    )
    assert "no UTC offset" in naive["errors"][0]["message"]
    meeting = await create_meeting(server, owner.token, contact_id, START, END)
    moved = await answer(server, UPDATE_MEETING, owner.token, id=meeting["id"], input={"end": START})
    assert (moved["__typename"], moved["field"]) == ("InvalidInput", "end")
    found = await contact(server, owner.token, "ada@example.com")
    assert found is not None
    assert [(m["start"], m["end"]) for m in found["meetings"]] == [(meeting["start"], meeting["end"])]
    await written_events(google, 1)
    assert [request.method for request in event_writes(google)] == ["POST"]


async def test_meetings_are_changed_only_by_their_owner_and_only_the_ones_they_made(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-3
    owner, contact_id = await connected_owner(server, google)
    meeting = await create_meeting(server, owner.token, contact_id, START, END)
    await written_events(google, 1)
    other = await owner_allowed_to_connect(server, with_page=False)
    for meeting_id in (meeting["id"], "not-an-id", str(uuid.uuid4())):
        moved = await answer(server, UPDATE_MEETING, other.token, id=meeting_id, input={"title": "Mine now"})
        assert moved["__typename"] == "NotFound", moved
        gone = await answer(server, DELETE_MEETING, other.token, id=meeting_id)
        assert gone["__typename"] == "NotFound", gone

    # A meeting found in the calendar changes there, not here.
    async with server.services.db.transaction() as session:
        imported = Meeting(
            owner_id=owner.user.id,
            contact_id=uuid.UUID(contact_id),
            title="From the calendar",
            start_at=NOW,
            end_at=NOW.replace(hour=7),
            source=MeetingSource.CALENDAR_SYNC,
        )
        session.add(imported)
    refused = await answer(server, DELETE_MEETING, owner.token, id=str(imported.id))
    assert (refused["__typename"], refused["field"]) == ("InvalidInput", "id")
    found = await contact(server, owner.token, "ada@example.com")
    assert found is not None
    assert [(m["title"], m["source"]) for m in found["meetings"]] == [
        ("From the calendar", "CALENDAR_SYNC"),
        ("Quarterly review", "OWNER"),
    ]
    assert [request.method for request in event_writes(google)] == ["POST"]
