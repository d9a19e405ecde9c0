"""Microsoft 365 end to end over HTTP: consent, callback, calendars, busy time, the booking's event.

The server's real Microsoft adapter (msal and Graph over HTTPS) talks to the Microsoft double,
trusting its per-session CA through the ``ca_bundle`` setting; the test plays the owner's
browser between the two. The server's clock can be moved, so outbox retries are due without
waiting for their backoff.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlmodel import select

from db.models import ConnectionAttempt, OutboxMessage
from scheduling import outbox
from server.settings import Settings
from tests.doubles.microsoft import MicrosoftDouble
from tests.doubles.server import TLSFiles, make_tls_files
from tests.support.booking_helpers import NOW, Owner, book, slots
from tests.support.clock import MovableClock
from tests.support.connect_helpers import (
    START,
    booking_row,
    confirm_code,
    confirm_connection,
    confirmed,
    connections,
    owner_allowed_to_connect,
    with_microsoft,
)
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually

# msal warns on every auth-code flow that is not form_post; the callback is a GET, as clients rely on.
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

ACCOUNT = "owner.ms@contoso.test"
BOSS = "boss@contoso.test"
# Graph ids are base64-ish; the "=" checks that they survive the adapter's URL quoting.
DEFAULT = "AAMkAGI2TG93bmVyLWRlZmF1bHQAAA="
TEAM = "AAMkAGI2VGVhbS1jYWxlbmRhcgAAA="
SHARED = "AAMkAGI2Qm9zcy1zaGFyZWQAAAA="
EVENT_POST = f"POST /v1.0/me/calendars/{DEFAULT}/events"
CALLBACK = "http://127.0.0.1:8000/oauth/microsoft/callback"  # settings.public_url + the callback path
DASHBOARD = "http://127.0.0.1:8000/dashboard"
TUESDAY, WEDNESDAY = "2026-12-01T00:00:00+02:00", "2026-12-02T00:00:00+02:00"
ELEVEN = "2026-12-01T11:00:00+02:00"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("microsoft-e2e-tls"))


@pytest.fixture
def microsoft(tls: TLSFiles) -> Iterator[MicrosoftDouble]:
    with MicrosoftDouble(tls) as double:
        double.add_account(ACCOUNT)
        double.add_calendar(ACCOUNT, DEFAULT, "Calendar", is_default=True)
        double.add_calendar(ACCOUNT, TEAM, "Team", can_edit=False)
        double.add_calendar(ACCOUNT, SHARED, "Boss", owner_email=BOSS)
        yield double


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
async def server(
    settings: Settings, microsoft: MicrosoftDouble, tls: TLSFiles, clock: MovableClock
) -> AsyncIterator[LiveServer]:
    async with start_live_server(with_microsoft(settings, microsoft, tls), clock=clock) as live:
        yield live


async def consented(server: LiveServer, microsoft: MicrosoftDouble, owner: Owner) -> str:
    """Start, consent as the owner's browser and follow the redirect to our callback: where the
    callback sent the browser (the grant is pending until the owner confirms)."""
    started = await server.graphql(START, {"provider": "MICROSOFT"}, token=owner.token)
    result = started["data"]["startCalendarConnection"]
    assert result["__typename"] == "AuthorizationUrl", result
    redirect = urlsplit(microsoft.consent(result["url"], ACCOUNT))
    assert f"{redirect.scheme}://{redirect.netloc}{redirect.path}" == CALLBACK
    response = await server.http.get(f"{redirect.path}?{redirect.query}")
    assert response.status_code == 302, response.text
    return str(response.headers["location"])


async def connect(server: LiveServer, microsoft: MicrosoftDouble, owner: Owner) -> str:
    """Consent, then confirm with the owner's token (SEC-3): where the callback sent the browser."""
    return await confirmed(server, await consented(server, microsoft, owner), owner.token)


async def connected(server: LiveServer, microsoft: MicrosoftDouble) -> Owner:
    owner = await owner_allowed_to_connect(server)
    assert (await connect(server, microsoft, owner)).startswith(f"{DASHBOARD}?connected=microsoft&confirm=")
    return owner


async def test_an_unconfirmed_microsoft_grant_expires_and_its_tokens_are_erased(
    server: LiveServer, microsoft: MicrosoftDouble, clock: MovableClock
) -> None:
    # covers: SEC-3
    # Microsoft has no revocation of one app's grant: erasing the tokens is what ends it.
    owner = await owner_allowed_to_connect(server, with_page=False)
    code = confirm_code(await consented(server, microsoft, owner))
    assert code
    assert len(await attempt_rows(server)) == 1  # the grant waits, sealed

    clock.advance(10 * 60)
    assert await server.services.connections.expire_pending() == 1
    assert await attempt_rows(server) == []
    calls = len(microsoft.requests)
    assert (await confirm_connection(server, code, owner.token))["__typename"] == "NotFound"
    assert await connections(server, owner.token) == []
    assert len(microsoft.requests) == calls  # nothing was asked of Microsoft with the dropped grant


async def attempt_rows(server: LiveServer) -> list[ConnectionAttempt]:
    async with server.services.db.session() as session:
        return list((await session.exec(select(ConnectionAttempt))).all())


async def create_event_row(server: LiveServer, booking_id: str) -> OutboxMessage:
    async with server.services.db.session() as session:
        rows = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.kind == outbox.CALENDAR_CREATE_EVENT))
        ).all()
    (row,) = [row for row in rows if row.payload.get("booking_id") == uuid.UUID(booking_id).hex]
    return row


def written(microsoft: MicrosoftDouble, calendar_id: str) -> list[dict[str, Any]]:
    """Events Kokous made on the calendar (the busy events a test added have no transactionId)."""
    return [event for event in microsoft.events_on(calendar_id) if event["transactionId"]]


async def test_connect_list_calendars_drop_busy_slots_and_write_the_booking(
    server: LiveServer, microsoft: MicrosoftDouble
) -> None:
    # covers: CAL-2, CAL-6, BOOK-1, BOOK-2, OPS-3
    microsoft.honours_timezone_preference = False  # Graph answers in each event's own (Windows) zone
    microsoft.add_busy(DEFAULT, datetime(2026, 12, 1, 10), datetime(2026, 12, 1, 11), time_zone="FLE Standard Time")
    microsoft.add_busy(
        DEFAULT, datetime(2026, 12, 1, 13, tzinfo=UTC), datetime(2026, 12, 1, 14, tzinfo=UTC), show_as="free"
    )
    microsoft.add_busy(TEAM, datetime(2026, 12, 1, 12, tzinfo=UTC), datetime(2026, 12, 1, 13, tzinfo=UTC))
    owner = await connected(server, microsoft)

    (connection,) = await connections(server, owner.token)
    assert (connection["provider"], connection["accountEmail"]) == ("MICROSOFT", ACCOUNT)
    listed = {calendar["name"]: calendar for calendar in connection["calendars"]}
    assert {name: (c["isPrimary"], c["integrated"], c["accessRole"]) for name, c in listed.items()} == {
        "Calendar": (True, True, "owner"),
        "Team": (False, False, "reader"),
        "Boss": (False, False, "writer"),  # shared with edit rights: the mailbox is not its owner
    }

    free = await slots(server, TUESDAY, WEDNESDAY)
    assert "2026-12-01T09:30:00+02:00" in free
    assert "2026-12-01T10:00:00+02:00" not in free  # 10:00-11:00 FLE Standard Time is Helsinki time
    assert "2026-12-01T10:30:00+02:00" not in free
    assert "2026-12-01T15:00:00+02:00" in free  # shown as free
    assert "2026-12-01T14:00:00+02:00" in free  # the Team calendar is not integrated

    booked = await book(server, ELEVEN)
    assert (booked["__typename"], booked["status"], booked["calendarWrite"]) == ("Booking", "CONFIRMED", "PENDING")
    row = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "done")
    (event,) = written(microsoft, DEFAULT)  # made with a transactionId
    assert [attendee["emailAddress"]["address"] for attendee in event["attendees"]] == ["visitor@example.com"]
    assert event["start"]["dateTime"].startswith("2026-12-01T09:00:00")  # UTC
    assert written(microsoft, TEAM) == []  # CAL-6: bookings go to the default calendar only
    assert written(microsoft, SHARED) == []
    assert row.calendar_event_id == event["id"]
    assert len(microsoft.requests_to("POST /v1.0/me/calendars/")) == 1


async def test_a_failed_event_write_is_retried_into_exactly_one_event(
    server: LiveServer, microsoft: MicrosoftDouble, clock: MovableClock
) -> None:
    # covers: BOOK-2, BOOK-7
    await connected(server, microsoft)
    microsoft.fail(EVENT_POST, status=500, body={"error": {"code": "generalException", "message": "boom"}})

    booked = await book(server, ELEVEN)
    assert (booked["__typename"], booked["calendarWrite"]) == ("Booking", "PENDING")
    failed = await eventually(
        lambda: create_event_row(server, booked["id"]), lambda row: row.last_error is not None, "first attempt failed"
    )
    assert failed.done_at is None
    assert failed.available_at == NOW + timedelta(seconds=5)
    assert (await booking_row(server, booked["id"])).calendar_write == "PENDING"
    assert microsoft.events_on(DEFAULT) == []

    clock.advance(10)  # past the 5 s backoff
    await server.services.outbox.run_once()
    row = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "done")
    (event,) = microsoft.events_on(DEFAULT)
    assert row.calendar_event_id == event["id"]
    attempts = microsoft.requests_to(EVENT_POST)
    assert len(attempts) == 2
    assert attempts[0].json()["transactionId"] == attempts[1].json()["transactionId"] == event["transactionId"]


async def test_graph_throttling_waits_for_retry_after_and_visitors_never_see_it(
    server: LiveServer, microsoft: MicrosoftDouble
) -> None:
    # covers: BOOK-2, BOOK-7
    await connected(server, microsoft)
    throttled = {"error": {"code": "TooManyRequests", "message": "Please retry again later."}}
    microsoft.fail(EVENT_POST, status=429, body=throttled, headers={"Retry-After": "120"})

    booked = await book(server, ELEVEN)
    assert (booked["__typename"], booked["calendarWrite"]) == ("Booking", "PENDING")
    row = await eventually(
        lambda: create_event_row(server, booked["id"]), lambda row: row.last_error is not None, "throttled attempt"
    )
    assert row.done_at is None
    assert row.available_at >= NOW + timedelta(seconds=120)  # the attempt ran at NOW (the clock did not move)
    assert (await booking_row(server, booked["id"])).calendar_write == "PENDING"
    assert len(microsoft.requests_to(EVENT_POST)) == 1
    assert microsoft.events_on(DEFAULT) == []


async def test_a_revoked_grant_turns_the_calendars_inactive(server: LiveServer, microsoft: MicrosoftDouble) -> None:
    # covers: INACT-1, BOOK-7
    owner = await connected(server, microsoft)
    microsoft.revoke(ACCOUNT)
    microsoft.expire_access_tokens()
    connection_id = uuid.UUID((await connections(server, owner.token))[0]["id"])

    assert not await server.services.busy_sync.refresh(connection_id)
    (connection,) = await connections(server, owner.token)
    statuses = {(calendar["status"], calendar["inactiveReason"]) for calendar in connection["calendars"]}
    assert statuses == {("INACTIVE", "AADSTS50173")}  # the grant was revoked
    assert (await book(server, ELEVEN))["__typename"] == "CalendarInactive"
