"""CalDAV busy time kept round by round, end to end: Radicale, the server's real adapter, GraphQL.

The owner connects alice's Radicale account through the API (the form) and gets the intro page;
the server's real CalDAV adapter talks to a real Radicale through a ``DoubleServer`` that records
every request. The owner's changes are made in Radicale directly, as a calendar app would, and a
sync round is run as the background pass runs it (``busy_sync.refresh``). The invitee's emails
reach a real SMTP sink.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
import pytest

from server.settings import Settings
from tests.api.test_connect_forms import ALICE, ALICE_PASSWORD, _dav, add_radicale_event, connect_caldav
from tests.doubles.radicale import ForwardingApp, RadicaleServer
from tests.doubles.server import DoubleServer
from tests.support.booking_helpers import NOW, book, slots
from tests.support.connect_helpers import booking_row, owner_allowed_to_connect
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually
from tests.support.smtp_sink import SmtpSink

TUESDAY, WEDNESDAY = "2026-12-01T00:00:00+02:00", "2026-12-02T00:00:00+02:00"
HALF_HOUR = timedelta(minutes=30)


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with RadicaleServer(tmp_path_factory.mktemp("radicale-e2e"), {ALICE: ALICE_PASSWORD}) as server:
        yield server


@pytest.fixture
def work(radicale: RadicaleServer) -> str:
    """alice's only calendar, made afresh for each test (Radicale outlives a test): its URL."""
    with _dav(radicale) as client:
        principal = client.principal()
        for calendar in principal.calendars():
            calendar.delete()
        return str(principal.make_calendar(name="Work", cal_id="work").url)


@pytest.fixture
def caldav(radicale: RadicaleServer, work: str) -> Iterator[DoubleServer]:
    """Radicale behind a double that records what the server asks of it."""
    with DoubleServer(ForwardingApp(radicale.url)) as double:
        yield double


@pytest.fixture
async def server(settings: Settings, sink: SmtpSink) -> AsyncIterator[LiveServer]:
    async with start_live_server(settings.model_copy(update={"smtp_url": sink.url}), clock=lambda: NOW) as live:
        yield live


async def connected(server: LiveServer, caldav: DoubleServer) -> str:
    """An owner with the intro page and alice's CalDAV account connected: the connection's id."""
    owner = await owner_allowed_to_connect(server)
    connection = await connect_caldav(server, owner, caldav.url + "/")
    assert connection["__typename"] == "CalendarConnection", connection
    assert [calendar["integrated"] for calendar in connection["calendars"]] == [True]
    return str(connection["id"])


async def sync_round(server: LiveServer, connection_id: str) -> None:
    """One round as the background pass runs it, then the outbox (a booking following its event)."""
    assert await server.services.busy_sync.refresh(uuid.UUID(connection_id))
    await server.services.outbox.run_once()


def reports(caldav: DoubleServer) -> list[str]:
    """The kinds of REPORT the server sent with credentials."""
    names = ("sync-collection", "calendar-multiget", "calendar-query")
    return [
        next((name for name in names if name.encode() in request.body), "other")
        for request in caldav.requests_to("REPORT")
        if "authorization" in request.headers
    ]


def mail_to(sink: SmtpSink, address: str, subject_start: str) -> list[Any]:
    return [
        mail
        for mail in sink.messages
        if mail.rcpt_tos == [address] and str(mail.message["Subject"]).startswith(subject_start)
    ]


def move_in_radicale(radicale: RadicaleServer, event_url: str, start: datetime, end: datetime) -> None:
    """The owner drags the event in a calendar app: same resource and UID, new DTSTART and DTEND."""
    with _dav(radicale) as client:
        stored = client.request(event_url, "GET")
        assert stored.status == 200, stored.status
        calendar = icalendar.Calendar.from_ical(stored.raw)
        (event,) = calendar.walk("VEVENT")
        for name, value in (("DTSTART", start), ("DTEND", end)):
            del event[name]
            event.add(name, value)
        event["SEQUENCE"] = int(event.get("SEQUENCE", 0)) + 1
        answer = client.put(event_url, calendar.to_ical().decode(), {"Content-Type": "text/calendar; charset=utf-8"})
        assert answer.status == 204, answer.status


async def test_an_event_the_owner_adds_in_radicale_takes_the_slot_after_one_round(
    server: LiveServer, radicale: RadicaleServer, work: str, caldav: DoubleServer
) -> None:
    # covers: SYNC-5, CAL-6
    connection_id = await connected(server, caldav)
    assert "2026-12-01T11:00:00+02:00" in await slots(server, TUESDAY, WEDNESDAY)
    caldav.clear_requests()
    await sync_round(server, connection_id)
    assert reports(caldav) == ["sync-collection"]  # nothing changed: one cheap REPORT

    add_radicale_event(radicale, work, "20261201T090000Z", "20261201T100000Z")  # 11:00-12:00 in Helsinki
    caldav.clear_requests()
    await sync_round(server, connection_id)

    free = await slots(server, TUESDAY, WEDNESDAY)
    assert "2026-12-01T11:00:00+02:00" not in free
    assert "2026-12-01T10:00:00+02:00" in free
    assert reports(caldav) == ["sync-collection", "calendar-multiget"]  # the change alone, no listing


async def test_a_booking_moved_by_the_owner_in_radicale_moves_with_its_event(
    server: LiveServer, radicale: RadicaleServer, sink: SmtpSink, caldav: DoubleServer
) -> None:
    # covers: SYNC-6, SYNC-5, BOOK-5
    connection_id = await connected(server, caldav)
    booked = await book(server, "2026-12-01T10:00:00+02:00", email="vera@example.com")
    assert booked["__typename"] == "Booking", booked
    row = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "written")
    assert row.calendar_event_id is not None
    await sync_round(server, connection_id)  # our own event comes back where the booking is: nothing to follow
    assert (await booking_row(server, booked["id"])).start_at == datetime(2026, 12, 1, 8, tzinfo=UTC)

    event_url = row.calendar_event_id.replace(caldav.url, radicale.url.rstrip("/"))
    moved_to = datetime(2026, 12, 1, 11, tzinfo=UTC)  # 13:00 in Helsinki
    move_in_radicale(radicale, event_url, moved_to, moved_to + HALF_HOUR)
    caldav.clear_requests()
    await sync_round(server, connection_id)

    moved = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.start_at == moved_to, "moved")
    assert (moved.status, moved.calendar_write, moved.end_at) == ("CONFIRMED", "DONE", moved_to + HALF_HOUR)
    await eventually(lambda: mail_to(sink, "vera@example.com", "Rescheduled:"), bool, "the invitee's email")
    assert not mail_to(sink, "vera@example.com", "Cancelled:")
    assert not caldav.requests_to("PUT")  # the calendar already has it: nothing written back
    free = await slots(server, TUESDAY, WEDNESDAY)
    assert "2026-12-01T10:00:00+02:00" in free
    assert "2026-12-01T13:00:00+02:00" not in free


async def test_a_booking_whose_event_the_owner_deletes_in_radicale_is_cancelled(
    server: LiveServer, radicale: RadicaleServer, sink: SmtpSink, caldav: DoubleServer
) -> None:
    # covers: SYNC-6, SYNC-5
    connection_id = await connected(server, caldav)
    booked = await book(server, "2026-12-01T10:00:00+02:00", email="vera@example.com")
    row = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "written")
    assert row.calendar_event_id is not None
    await sync_round(server, connection_id)
    with _dav(radicale) as client:
        assert client.delete(row.calendar_event_id.replace(caldav.url, radicale.url.rstrip("/"))).status in (200, 204)
    caldav.clear_requests()

    await sync_round(server, connection_id)  # a deletion: the window is read again (a full round)

    assert "calendar-query" in reports(caldav)
    cancelled = await eventually(
        lambda: booking_row(server, booked["id"]), lambda b: b.status == "CANCELLED", "cancelled"
    )
    assert cancelled.calendar_write == "NONE"
    await eventually(lambda: mail_to(sink, "vera@example.com", "Cancelled:"), bool, "the invitee's email")
    assert not caldav.requests_to("DELETE")  # the event is already gone: nothing to delete
