"""Task sync against the Google and Microsoft 365 doubles over real HTTP: with a paid seat and
calendar sync on, the owner's open tasks with a due time are events in a "Kokous tasks" calendar
Kokous makes in the account; they follow the tasks (and come back when deleted there by hand),
and go when the seat or calendar sync does. Without a paid seat Google hears nothing of tasks,
and the tasks calendar never takes time from the slots.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import col, select

from common.values import Seat
from db.models import CalendarConnection, OutboxMessage, Task, User
from scheduling import outbox
from scheduling.crm.task_sync import TaskEvents
from server.settings import Settings
from tests.api import test_push_microsoft as push_microsoft
from tests.api.test_connect_microsoft import ACCOUNT as OUTLOOK_ACCOUNT
from tests.api.test_connect_microsoft import DEFAULT
from tests.api.test_push_microsoft import connected as outlook_connected
from tests.doubles.google import GoogleDouble
from tests.doubles.microsoft import MicrosoftDouble
from tests.doubles.server import RecordedRequest, TLSFiles
from tests.support.booking_helpers import NOW, Owner, slots
from tests.support.connect_helpers import (
    GOOGLE_ACCOUNT,
    GOOGLE_FIXTURES,
    connect_google,
    connections,
    owner_allowed_to_connect,
    set_calendar_sync,
    with_microsoft,
)
from tests.support.crm_documents import CREATE_TASK, DELETE_TASK, TASKS, UPDATE_TASK, answer, create_contact
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

TASKS_CALENDAR = "Kokous tasks"
DAY = ("2026-12-01T00:00:00+02:00", "2026-12-02T00:00:00+02:00")  # a Tuesday, 09:00-17:00 bookable


google, clock, server = GOOGLE_FIXTURES


async def google_owner(server: LiveServer, google: GoogleDouble, seat: Seat) -> Owner:
    """An owner with the intro page and Google connected (calendar sync on, as by default)."""
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, GOOGLE_ACCOUNT)
    await set_seat(server, owner, seat)
    return owner


async def set_seat(server: LiveServer, owner: Owner, seat: Seat) -> None:
    changed = await server.services.users.set_seat(owner.user.id, seat)
    assert isinstance(changed, User), changed
    assert changed.seat == seat


async def create_task(server: LiveServer, owner: Owner, **fields: Any) -> dict[str, Any]:
    made = await answer(server, CREATE_TASK, owner.token, input=fields)
    assert made["__typename"] == "Task", made
    return made


async def two_tasks_in_calendar(
    server: LiveServer, google: GoogleDouble, seat: Seat
) -> tuple[Owner, tuple[dict[str, Any], dict[str, Any]], str]:
    """An owner with this seat and two tasks due, once both are events: the tasks, and the id of
    the tasks calendar."""
    owner = await google_owner(server, google, seat)
    first = await create_task(server, owner, title="Call Ada", due="2026-12-01T10:00:00+02:00")
    second = await create_task(server, owner, title="Send the deck", due="2026-12-02T15:00:00+02:00")
    calendar_id = await tasks_calendar_id(server, owner)
    await events_in(google, calendar_id, 2)
    return owner, (first, second), calendar_id


def calendar_inserts(google: GoogleDouble) -> list[RecordedRequest]:
    return [r for r in google.requests if r.method == "POST" and r.path == "/calendar/v3/calendars"]


def calendar_writes(google: GoogleDouble) -> list[RecordedRequest]:
    """Requests that make a calendar or make, change or delete an event (syncs only read)."""
    return calendar_inserts(google) + [
        r
        for r in google.requests_to("/events")
        if r.method in ("POST", "PUT", "PATCH", "DELETE") and not r.path.endswith("/watch")
    ]


async def stored_connection(server: LiveServer, owner: Owner) -> CalendarConnection:
    async with server.services.db.session() as session:
        statement = select(CalendarConnection).where(CalendarConnection.user_id == owner.user.id)
        return (await session.exec(statement)).one()


async def tasks_calendar_id(server: LiveServer, owner: Owner) -> str:
    connection = await eventually(
        lambda: stored_connection(server, owner), lambda row: row.tasks_calendar_id is not None, "tasks calendar"
    )
    assert connection.tasks_calendar_id is not None
    return connection.tasks_calendar_id


async def task_rows_queued(server: LiveServer) -> list[OutboxMessage]:
    async with server.services.db.session() as session:
        statement = select(OutboxMessage).where(col(OutboxMessage.kind).in_(["task.sync_event", "tasks.sync"]))
        return list((await session.exec(statement)).all())


async def events_in(google: GoogleDouble, calendar_id: str, count: int) -> list[dict[str, Any]]:
    return await eventually(lambda: google.events_on(calendar_id), lambda events: len(events) == count, "events")


async def stored_task(server: LiveServer, task_id: str) -> Task | None:
    async with server.services.db.session() as session:
        return await session.get(Task, uuid.UUID(task_id))


async def in_calendar(server: LiveServer, owner: Owner) -> dict[str, bool]:
    result = await server.graphql(TASKS, token=owner.token)
    assert "errors" not in result, result
    return {task["title"]: task["inCalendar"] for task in result["data"]["me"]["tasks"]}


async def test_a_paid_seat_with_calendar_sync_puts_tasks_with_a_due_time_in_a_tasks_calendar(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-4
    owner = await google_owner(server, google, Seat.SALES_PAID)
    contact = await create_contact(server, owner.token, "ada@example.com", name="Ada Lovelace")
    await create_task(server, owner, title="Call Ada", due="2026-12-01T10:00:00+02:00", contactId=contact["id"])
    await create_task(server, owner, title="Send the deck", due="2026-12-02T15:00:00+02:00")
    await create_task(server, owner, title="Someday")  # no due time: no event

    calendar_id = await tasks_calendar_id(server, owner)
    events = sorted(await events_in(google, calendar_id, 2), key=lambda event: event["summary"])
    assert [(e["summary"], e["start"]["dateTime"], e["end"]["dateTime"]) for e in events] == [
        ("Call Ada", "2026-12-01T10:00:00+02:00", "2026-12-01T10:30:00+02:00"),
        ("Send the deck", "2026-12-02T15:00:00+02:00", "2026-12-02T15:30:00+02:00"),
    ]
    assert "About Ada Lovelace (ada@example.com)." in events[0]["description"]
    assert not events[0].get("attendees")
    assert len(calendar_inserts(google)) == 1
    assert google.calendars_named(GOOGLE_ACCOUNT, TASKS_CALENDAR) == [calendar_id]
    assert google.events_on(GOOGLE_ACCOUNT) == []  # nothing in the primary calendar
    await eventually(
        lambda: in_calendar(server, owner),
        lambda found: found == {"Call Ada": True, "Send the deck": True, "Someday": False},
        "inCalendar",
    )
    (connection,) = await connections(server, owner.token)
    assert TASKS_CALENDAR not in [calendar["name"] for calendar in connection["calendars"]]


async def test_updating_and_deleting_a_task_follow_in_the_tasks_calendar(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-4
    owner, (task, other), calendar_id = await two_tasks_in_calendar(server, google, Seat.SERVICE_PAID)

    changed = await answer(
        server, UPDATE_TASK, owner.token, id=task["id"], input={"title": "Call Ada back", "due": "2026-12-01T12:00:00Z"}
    )
    assert changed["__typename"] == "Task", changed
    await eventually(
        lambda: google.events_on(calendar_id),
        lambda events: (
            sorted((e["summary"], e["start"]["dateTime"]) for e in events)
            == [("Call Ada back", "2026-12-01T14:00:00+02:00"), ("Send the deck", "2026-12-02T15:00:00+02:00")]
        ),
        "updated",
    )

    done = await answer(server, UPDATE_TASK, owner.token, id=task["id"], input={"done": True})
    assert done["__typename"] == "Task", done
    (left,) = await events_in(google, calendar_id, 1)  # a done task leaves the calendar
    assert left["summary"] == "Send the deck"

    deleted = await answer(server, DELETE_TASK, owner.token, id=other["id"])
    assert deleted["__typename"] == "Deleted", deleted
    await events_in(google, calendar_id, 0)
    assert len(calendar_inserts(google)) == 1


@pytest.mark.parametrize("how", ["seat revoked", "calendar sync off"])
async def test_losing_the_seat_or_calendar_sync_empties_the_tasks_calendar(
    server: LiveServer, google: GoogleDouble, how: str
) -> None:
    # covers: SYNC-4
    owner, (task, _), calendar_id = await two_tasks_in_calendar(server, google, Seat.SALES_PAID)

    if how == "seat revoked":
        await set_seat(server, owner, Seat.FREE)
    else:
        await set_calendar_sync(server, owner, False)

    await events_in(google, calendar_id, 0)
    row = await eventually(
        lambda: stored_task(server, task["id"]),
        lambda row: row is not None and row.calendar_event_id is None,
        "cleared",
    )
    assert row is not None
    assert await in_calendar(server, owner) == {"Call Ada": False, "Send the deck": False}
    assert google.calendars_named(GOOGLE_ACCOUNT, TASKS_CALENDAR) == [calendar_id]  # kept, empty
    assert len(calendar_inserts(google)) == 1
    # Tasks made now stay out of the calendar: nothing is even queued for them.
    queued = len(await task_rows_queued(server))
    await create_task(server, owner, title="Later", due="2026-12-03T10:00:00+02:00")
    assert len(await task_rows_queued(server)) == queued


async def test_a_free_seat_asks_google_nothing_about_tasks(server: LiveServer, google: GoogleDouble) -> None:
    # covers: SYNC-4
    owner = await google_owner(server, google, Seat.FREE)
    task = await create_task(server, owner, title="Call Ada", due="2026-12-01T10:00:00+02:00")
    changed = await answer(server, UPDATE_TASK, owner.token, id=task["id"], input={"title": "Call Ada back"})
    assert changed["__typename"] == "Task", changed
    deleted = await answer(server, DELETE_TASK, owner.token, id=task["id"])
    assert deleted["__typename"] == "Deleted", deleted
    await set_seat(server, owner, Seat.FREE)
    await set_calendar_sync(server, owner, False)
    await set_calendar_sync(server, owner, True)

    assert await task_rows_queued(server) == []  # so no provider call, now or later
    assert calendar_writes(google) == []
    assert google.calendars_named(GOOGLE_ACCOUNT, TASKS_CALENDAR) == []
    assert (await stored_connection(server, owner)).tasks_calendar_id is None


async def test_a_task_at_a_slots_time_leaves_the_slot_free(server: LiveServer, google: GoogleDouble) -> None:
    # covers: SYNC-4
    owner = await google_owner(server, google, Seat.SALES_PAID)
    before = await slots(server, *DAY)
    assert "2026-12-01T10:00:00+02:00" in before, before

    task = await create_task(server, owner, title="Call Ada", due="2026-12-01T10:00:00+02:00")
    calendar_id = await tasks_calendar_id(server, owner)
    await events_in(google, calendar_id, 1)
    await eventually(
        lambda: stored_task(server, task["id"]),
        lambda row: row is not None and row.calendar_event_id is not None,
        "kept",
    )
    # Connecting again lists the account's calendars anew, the tasks calendar among them.
    await connect_google(server, google, owner, GOOGLE_ACCOUNT)
    (connection,) = await connections(server, owner.token)
    assert TASKS_CALENDAR not in [calendar["name"] for calendar in connection["calendars"]]

    assert await slots(server, *DAY) == before
    assert not [r for r in google.requests_to("/freeBusy") if calendar_id in r.text]


async def test_a_tasks_calendar_made_earlier_is_taken_up_again_and_leaves_the_owners_calendars(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-4
    google.add_calendar(
        GOOGLE_ACCOUNT, "old-tasks@group.calendar.google.com", summary=TASKS_CALENDAR, access_role="owner"
    )
    owner = await google_owner(server, google, Seat.FREE)
    (connection,) = await connections(server, owner.token)
    assert TASKS_CALENDAR in [calendar["name"] for calendar in connection["calendars"]]  # listed as any other

    await create_task(server, owner, title="Call Ada", due="2026-12-01T10:00:00+02:00")
    await set_seat(server, owner, Seat.SALES_PAID)

    assert await tasks_calendar_id(server, owner) == "old-tasks@group.calendar.google.com"
    (event,) = await events_in(google, "old-tasks@group.calendar.google.com", 1)
    assert event["summary"] == "Call Ada"
    assert calendar_inserts(google) == []
    (connection,) = await connections(server, owner.token)
    assert TASKS_CALENDAR not in [calendar["name"] for calendar in connection["calendars"]]


async def test_a_task_event_deleted_by_hand_is_made_again_at_the_tasks_next_change(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-4
    owner = await google_owner(server, google, Seat.SALES_PAID)
    task = await create_task(server, owner, title="Call Ada", due="2026-12-01T10:00:00+02:00")
    calendar_id = await tasks_calendar_id(server, owner)
    (first,) = await events_in(google, calendar_id, 1)
    await eventually(
        lambda: stored_task(server, task["id"]), lambda row: row is not None and bool(row.calendar_event_id), "kept"
    )

    google.delete_event(calendar_id, first["id"])  # the owner deletes it in Google Calendar
    changed = await answer(server, UPDATE_TASK, owner.token, id=task["id"], input={"title": "Call Ada back"})
    assert changed["__typename"] == "Task", changed

    (again,) = await eventually(
        lambda: google.events_on(calendar_id),
        lambda events: [event["summary"] for event in events] == ["Call Ada back"],
        "made again, as the task is now",
    )
    assert again["id"] != first["id"]
    assert again["start"]["dateTime"] == "2026-12-01T10:00:00+02:00"
    row = await eventually(
        lambda: stored_task(server, task["id"]),
        lambda row: row is not None and row.calendar_event_id == again["id"],
        "the new event kept",
    )
    assert row is not None
    assert len(calendar_inserts(google)) == 1


async def test_a_tasks_calendar_deleted_by_hand_is_made_anew_with_the_tasks_events(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-4
    owner, (task, _), old_calendar = await two_tasks_in_calendar(server, google, Seat.SALES_PAID)
    await eventually(
        lambda: stored_task(server, task["id"]), lambda row: row is not None and bool(row.calendar_event_id), "kept"
    )

    google.unshare(GOOGLE_ACCOUNT, old_calendar)  # the owner deletes the calendar: it leaves the account
    await set_seat(server, owner, Seat.SERVICE_PAID)  # any change of seat sets every task's event right

    connection = await eventually(
        lambda: stored_connection(server, owner),
        lambda row: row.tasks_calendar_id not in (None, old_calendar),
        "a new tasks calendar",
    )
    assert connection.tasks_calendar_id is not None
    events = await events_in(google, connection.tasks_calendar_id, 2)
    assert sorted(event["summary"] for event in events) == ["Call Ada", "Send the deck"]
    assert google.calendars_named(GOOGLE_ACCOUNT, TASKS_CALENDAR) == [connection.tasks_calendar_id]
    assert len(calendar_inserts(google)) == 2


async def test_two_processes_following_one_task_at_once_make_one_event(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-4
    owner = await google_owner(server, google, Seat.SALES_PAID)
    await create_task(server, owner, title="Call Ada", due="2026-12-01T10:00:00+02:00")
    calendar_id = await tasks_calendar_id(server, owner)
    await events_in(google, calendar_id, 1)
    # A task no worker has seen yet, then two processes' workers running its row and the
    # owner's row side by side.
    async with server.services.db.transaction() as session:
        due = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
        task = Task(owner_id=owner.user.id, title="Send the deck", due_at=due, created_at=NOW, updated_at=NOW)
        session.add(task)
    first, second = (TaskEvents(access=server.services.busy_sync.access).handlers() for _ in range(2))
    await asyncio.gather(
        first[outbox.TASK_SYNC_EVENT]({"tasks_of": owner.user.id.hex, "task_id": task.id.hex}),
        second[outbox.TASKS_SYNC]({"tasks_of": owner.user.id.hex}),
    )

    events = google.events_on(calendar_id)
    assert sorted(event["summary"] for event in events) == ["Call Ada", "Send the deck"]
    row = await stored_task(server, task.id.hex)
    assert row is not None
    assert row.calendar_event_id == next(event["id"] for event in events if event["summary"] == "Send the deck")


# -- Microsoft 365 ------------------------------------------------------------------------------

tls, microsoft = push_microsoft.tls, push_microsoft.microsoft


@pytest.fixture
async def outlook_server(settings: Settings, microsoft: MicrosoftDouble, tls: TLSFiles) -> AsyncIterator[LiveServer]:
    async with start_live_server(with_microsoft(settings, microsoft, tls), clock=lambda: NOW) as live:
        yield live


async def test_outlook_tasks_go_to_a_tasks_calendar_made_in_the_mailbox_and_leave_with_the_seat(
    outlook_server: LiveServer, microsoft: MicrosoftDouble
) -> None:
    # covers: SYNC-4
    server = outlook_server
    owner, _ = await outlook_connected(server, microsoft)
    await set_seat(server, owner, Seat.SALES_PAID)
    contact = await create_contact(server, owner.token, "ada@example.com", name="Ada Lovelace")
    await create_task(server, owner, title="Call Ada", due="2026-12-01T10:00:00+02:00", contactId=contact["id"])
    await create_task(server, owner, title="Someday")

    calendar_id = await tasks_calendar_id(server, owner)
    assert microsoft.calendars_named(OUTLOOK_ACCOUNT, TASKS_CALENDAR) == [calendar_id]
    (event,) = await eventually(lambda: microsoft.events_on(calendar_id), lambda events: len(events) == 1, "event")
    assert event["subject"] == "Call Ada"
    assert event["start"]["dateTime"].startswith("2026-12-01T08:00:00")  # 10:00 in Helsinki, as UTC
    assert event["end"]["dateTime"].startswith("2026-12-01T08:30:00")
    assert not event.get("attendees")
    assert microsoft.events_on(DEFAULT) == []  # nothing in the owner's own calendar
    (connection,) = await connections(server, owner.token)
    assert TASKS_CALENDAR not in [calendar["name"] for calendar in connection["calendars"]]

    await set_seat(server, owner, Seat.FREE)
    await eventually(lambda: microsoft.events_on(calendar_id), lambda events: events == [], "emptied")
    assert microsoft.calendars_named(OUTLOOK_ACCOUNT, TASKS_CALENDAR) == [calendar_id]  # kept, empty
    assert await in_calendar(server, owner) == {"Call Ada": False, "Someday": False}
