"""Exchange and CalDAV connected with a form, end to end over HTTP: the rules, the calendars, the bookings.

The server's real Exchange adapter talks EWS to the Exchange double over HTTPS (the double's
certificate comes from a session CA the server trusts through the ``ca_bundle`` setting); its
real CalDAV adapter talks to a real Radicale. The test plays the owner filling in the forms and
the visitor booking, then checks what the provider holds and what the database keeps.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import icalendar
import pytest
from caldav.collection import Calendar as DavCalendar
from caldav.davclient import DAVClient
from sqlmodel import col, select

from common.values import CalendarStatus
from db.models import BusyInterval, Calendar, CalendarConnection, User
from providers.exchange import ExchangeCredentials
from scheduling.calendars.vault import CredentialVault
from server.settings import Environment, Settings
from tests.api.test_connect_microsoft import create_event_row
from tests.doubles.exchange import CalendarItem, ExchangeDouble
from tests.doubles.radicale import ForwardingApp, RadicaleServer
from tests.doubles.server import DoubleServer, TLSFiles, make_tls_files
from tests.support.booking_helpers import NOW, Owner, book, slots
from tests.support.clock import MovableClock
from tests.support.connect_helpers import (
    CONNECT_CALDAV,
    CONNECT_EXCHANGE,
    DISCONNECT,
    booking_row,
    connections,
    owner_allowed_to_connect,
)
from tests.support.live_server import LiveServer, start_live_server
from tests.support.owners import make_owner
from tests.support.polling import eventually

MAILBOX, SECOND, THIRD = "owner@exchange.example.com", "second@exchange.example.com", "third@exchange.example.com"
PASSWORD = "correct horse"
ALICE, ALICE_PASSWORD = "alice", "alice-secret"
VISITOR = "visitor@example.com"
TUESDAY, WEDNESDAY = "2026-12-01T00:00:00+02:00", "2026-12-02T00:00:00+02:00"
STATUS = 'query { schedulingPage(slug: "intro") { status } }'


# -- providers and the server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def exchange(tls: TLSFiles) -> Iterator[ExchangeDouble]:
    """An Exchange 2016 server over HTTPS with three mailboxes of the owner's."""
    with ExchangeDouble(version="EXCHANGE_2016", tls=tls) as double:
        for email in (MAILBOX, SECOND, THIRD):
            double.add_mailbox(email, PASSWORD)
        yield double


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with RadicaleServer(tmp_path_factory.mktemp("radicale"), {ALICE: ALICE_PASSWORD}) as server:
        yield server


@pytest.fixture
def alice_calendars(radicale: RadicaleServer) -> dict[str, str]:
    """alice's calendars made afresh for each test (Radicale outlives a test): their URLs by name."""
    with _dav(radicale) as client:
        principal = client.principal()
        for calendar in principal.calendars():
            calendar.delete()
        work = principal.make_calendar(name="Work", cal_id="a-work")
        home = principal.make_calendar(name="Home", cal_id="b-home")
    return {"Work": str(work.url), "Home": str(home.url)}


@pytest.fixture
def configured(settings: Settings, tls: TLSFiles) -> Settings:
    return settings.model_copy(update={"ca_bundle": tls.ca_path})


@pytest.fixture
async def server(configured: Settings) -> AsyncIterator[LiveServer]:
    async with start_live_server(configured, clock=lambda: NOW) as live:
        yield live


# -- helpers --------------------------------------------------------------------------------------


def exchange_form(double: ExchangeDouble, email: str = MAILBOX, **fields: Any) -> dict[str, Any]:
    """The Exchange form with the EWS URL filled in and no version: the server's is detected."""
    return {"email": email, "password": PASSWORD, "ewsUrl": double.ews_url, **fields}


async def connect_exchange(server: LiveServer, owner: Owner, form: dict[str, Any]) -> dict[str, Any]:
    result = await server.graphql(CONNECT_EXCHANGE, {"input": form}, token=owner.token)
    assert "errors" not in result, result
    return dict(result["data"]["connectExchangeCalendar"])


async def connect_caldav(server: LiveServer, owner: Owner, url: str, password: str = ALICE_PASSWORD) -> dict[str, Any]:
    form = {"url": url, "username": ALICE, "password": password}
    result = await server.graphql(CONNECT_CALDAV, {"input": form}, token=owner.token)
    assert "errors" not in result, result
    return dict(result["data"]["connectCalDAVCalendar"])


async def connection_rows(server: LiveServer, owner: Owner) -> list[CalendarConnection]:
    async with server.services.db.session() as session:
        rows = await session.exec(select(CalendarConnection).where(CalendarConnection.user_id == owner.user.id))
        return list(rows.all())


async def busy_rows(server: LiveServer, calendar_ids: list[uuid.UUID]) -> list[BusyInterval]:
    async with server.services.db.session() as session:
        rows = await session.exec(select(BusyInterval).where(col(BusyInterval.calendar_id).in_(calendar_ids)))
        return list(rows.all())


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def failure(result: dict[str, Any]) -> tuple[str, str | None]:
    return result["__typename"], result.get("reason") or result.get("field") or result.get("setting")


def _dav(radicale: RadicaleServer) -> DAVClient:
    """A caldav client of alice's for setting Radicale up and looking into it."""
    return DAVClient(radicale.url, username=ALICE, password=ALICE_PASSWORD, enable_rfc6764=False)


def add_radicale_event(radicale: RadicaleServer, calendar_url: str, start: str, end: str) -> None:
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uuid.uuid4()}\r\nDTSTAMP:20261101T000000Z\r\nSUMMARY:Busy\r\nDTSTART:{start}\r\nDTEND:{end}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    with _dav(radicale) as client:
        DavCalendar(client=client, url=calendar_url).add_event(ics)


def radicale_events(radicale: RadicaleServer, calendar_url: str) -> list[icalendar.Event]:
    """Every VEVENT Radicale holds in the calendar, read with the caldav client."""
    with _dav(radicale) as client:
        resources = DavCalendar(client=client, url=calendar_url).get_events()
        return [
            event
            for resource in resources
            for event in icalendar.Calendar.from_ical(resource.data).walk("VEVENT")
            if isinstance(event, icalendar.Event)
        ]


# -- Exchange -------------------------------------------------------------------------------------


async def test_exchange_connects_with_a_detected_version_and_takes_a_booking(
    server: LiveServer, exchange: ExchangeDouble, configured: Settings
) -> None:
    # covers: CAL-3, CAL-6, BOOK-1, BOOK-2
    owner = await owner_allowed_to_connect(server)
    busy_id = exchange.add_busy(MAILBOX, datetime(2026, 12, 1, 8, tzinfo=UTC), datetime(2026, 12, 1, 9, tzinfo=UTC))
    team = exchange.add_calendar(MAILBOX, "Team")
    exchange.add_busy(
        MAILBOX, datetime(2026, 12, 1, 12, tzinfo=UTC), datetime(2026, 12, 1, 13, tzinfo=UTC), calendar_id=team
    )
    assert exchange.ews_url.startswith("https://")  # trusted through the ca_bundle setting

    connection = await connect_exchange(server, owner, exchange_form(exchange))

    assert connection["__typename"] == "CalendarConnection", connection
    assert (connection["provider"], connection["accountEmail"]) == ("EXCHANGE", MAILBOX)
    assert (connection["calendarSync"], connection["schedulingPages"]) == (False, True)  # CAL-7 defaults
    listed = {calendar["name"]: calendar for calendar in connection["calendars"]}
    assert set(listed) == {"Calendar", "Team"}
    assert (listed["Calendar"]["isPrimary"], listed["Calendar"]["integrated"]) == (True, True)
    assert (listed["Team"]["isPrimary"], listed["Team"]["integrated"]) == (False, False)
    (row,) = await connection_rows(server, owner)
    assert row.credentials is not None
    stored = ExchangeCredentials.from_json(CredentialVault(configured.encryption_keys()).open(row.credentials))
    assert (stored.version, stored.ews_url) == ("EXCHANGE_2016", exchange.ews_url)  # detected from the server

    free = await slots(server, TUESDAY, WEDNESDAY)
    assert "2026-12-01T10:00:00+02:00" not in free  # busy on the primary calendar
    assert "2026-12-01T10:30:00+02:00" not in free
    assert "2026-12-01T14:00:00+02:00" in free  # the Team calendar is not integrated

    booked = await book(server, "2026-12-01T11:00:00+02:00")
    assert booked["__typename"] == "Booking", booked

    async def written() -> list[CalendarItem]:
        return [item for item in exchange.items_on(MAILBOX) if item.item_id != busy_id]

    (item,) = await eventually(written, lambda items: len(items) == 1, "one item on the primary calendar")
    assert item.attendees == [VISITOR]
    assert (item.start, item.end) == (datetime(2026, 12, 1, 9, tzinfo=UTC), datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    assert item.invitations == "SendToAllAndSaveCopy"
    assert len(exchange.items_on(MAILBOX, team)) == 1  # bookings go to the primary calendar only (CAL-6)
    done = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "done")
    assert done.calendar_event_id == item.item_id
    assert [i.item_id for i in await written()] == [item.item_id]  # written once


async def test_exchange_failures_are_typed_and_change_nothing(server: LiveServer, exchange: ExchangeDouble) -> None:
    # covers: CAL-3
    owner = await owner_allowed_to_connect(server)

    exchange.set_version("EXCHANGE_2010_SP1")
    old = await connect_exchange(server, owner, exchange_form(exchange))
    assert failure(old) == ("CalendarConnectionFailed", "VERSION_UNSUPPORTED")
    assert "Exchange 2010 SP1" in old["message"]
    assert "Exchange 2010 SP2 or newer" in old["message"]
    exchange.set_version("EXCHANGE_2016")

    wrong = await connect_exchange(server, owner, exchange_form(exchange, password="wrong horse"))
    assert failure(wrong) == ("CalendarConnectionFailed", "AUTHENTICATION_FAILED")
    assert "app password" in wrong["message"]

    nowhere = f"https://127.0.0.1:{closed_port()}/EWS/Exchange.asmx"
    unreachable = await connect_exchange(server, owner, exchange_form(exchange, ewsUrl=nowhere))
    assert failure(unreachable) == ("CalendarConnectionFailed", "UNREACHABLE")

    exchange.clear_requests()
    bad_email = await connect_exchange(server, owner, exchange_form(exchange, email="not an address"))
    assert failure(bad_email) == ("InvalidInput", "email")
    no_password = await connect_exchange(server, owner, exchange_form(exchange, password=""))
    assert failure(no_password) == ("InvalidInput", "password")
    too_old = await connect_exchange(server, owner, exchange_form(exchange, version="EXCHANGE_2007"))
    assert failure(too_old) == ("CalendarConnectionFailed", "VERSION_UNSUPPORTED")  # refused before any request
    assert "Exchange 2010 SP2 or newer" in too_old["message"]
    assert exchange.requests == []

    assert await connection_rows(server, owner) == []
    assert (await server.graphql(STATUS))["data"]["schedulingPage"]["status"] == "OFFLINE"


async def test_what_the_server_answered_reaches_the_logs_not_the_owner(
    server: LiveServer, exchange: ExchangeDouble, caplog: pytest.LogCaptureFixture
) -> None:
    # covers: CAL-3, SEC-1
    # An owner-supplied address may lead anywhere: whatever the far side writes in its error is
    # for the operator's logs only (it used to be quoted to the owner, up to 300 characters).
    owner = await owner_allowed_to_connect(server)
    inside = "intranet-admin says: db password hunter2. " + "x" * 2_000
    caplog.set_level("INFO", logger="scheduling.calendars.connect")
    for code in ("ErrorAccessDenied", "ErrorNonExistentMailbox", "ErrorInternalServerError", "ErrorSomethingNew"):
        exchange.fail("GetFolder", status=200, body=ews_error("GetFolder", code, inside), times=5)
        result = await connect_exchange(server, owner, exchange_form(exchange))
        exchange.clear_faults()
        assert result["__typename"] == "CalendarConnectionFailed", code
        assert "intranet-admin" not in result["message"]
        assert "hunter2" not in result["message"]
        assert len(result["message"]) < 200
    logged = [record.getMessage() for record in caplog.records if "intranet-admin" in record.getMessage()]
    assert len(logged) == 4  # the operator can still see what happened, cut short
    assert all(len(line) < 500 for line in logged)
    assert await connection_rows(server, owner) == []


def ews_error(operation: str, code: str, text: str) -> str:
    """The SOAP answer an EWS server gives when ``operation`` fails with ``code`` and ``text``."""
    messages = "http://schemas.microsoft.com/exchange/services/2006/messages"
    types = "http://schemas.microsoft.com/exchange/services/2006/types"
    return (
        '<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<s:Header><h:ServerVersionInfo xmlns:h="{types}" MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" '
        'MinorBuildNumber="6" Version="V2017_07_11"/></s:Header>'
        f'<s:Body><m:{operation}Response xmlns:m="{messages}" xmlns:t="{types}"><m:ResponseMessages>'
        f'<m:{operation}ResponseMessage ResponseClass="Error"><m:MessageText>{text}</m:MessageText>'
        f"<m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>"
        f"</m:{operation}ResponseMessage></m:ResponseMessages></m:{operation}Response></s:Body></s:Envelope>"
    )


@pytest.mark.parametrize("allow", [(), (ipaddress.ip_network("127.0.0.0/8"),)])
async def test_production_connects_to_inside_addresses_only_when_the_operator_allows(
    configured: Settings,
    exchange: ExchangeDouble,
    radicale: RadicaleServer,
    alice_calendars: dict[str, str],
    allow: tuple[ipaddress.IPv4Network, ...],
) -> None:
    # covers: SEC-1, CAL-3
    production = configured.model_copy(
        update={"env": Environment.PRODUCTION, "secret_keys": (secrets.token_urlsafe(32),), "outbound_allow": allow}
    )
    async with start_live_server(production, clock=lambda: NOW) as server:
        owner = await owner_allowed_to_connect(server)
        other = await owner_allowed_to_connect(server, with_page=False)
        ews = await connect_exchange(server, owner, exchange_form(exchange))
        dav = await connect_caldav(server, other, radicale.url)
        if not allow:  # the loopback is inside: refused as a typed error naming the field, before any request
            assert failure(ews) == ("InvalidInput", "ewsUrl")
            assert failure(dav) == ("InvalidInput", "url")
            for refused in (ews, dav):
                assert "private address" in refused["message"]
                assert "127.0.0.1" not in refused["message"]
            assert exchange.requests == []
            assert await connection_rows(server, owner) == await connection_rows(server, other) == []
        else:
            assert ews["__typename"] == "CalendarConnection", ews
            assert dav["__typename"] == "CalendarConnection", dav
            assert len(await connection_rows(server, owner)) == len(await connection_rows(server, other)) == 1


# -- CalDAV ---------------------------------------------------------------------------------------


async def test_caldav_connects_to_radicale_and_takes_a_booking(
    server: LiveServer, radicale: RadicaleServer, alice_calendars: dict[str, str]
) -> None:
    # covers: CAL-6, BOOK-1, BOOK-2
    owner = await owner_allowed_to_connect(server)
    busy_at = {"Work": "2026-12-01T10:00:00+02:00", "Home": "2026-12-01T14:00:00+02:00"}
    add_radicale_event(radicale, alice_calendars["Work"], "20261201T080000Z", "20261201T090000Z")
    add_radicale_event(radicale, alice_calendars["Home"], "20261201T120000Z", "20261201T130000Z")

    connection = await connect_caldav(server, owner, radicale.url)

    assert connection["__typename"] == "CalendarConnection", connection
    assert (connection["provider"], connection["accountEmail"]) == ("CALDAV", "alice@127.0.0.1")
    listed = {calendar["name"]: calendar for calendar in connection["calendars"]}
    assert set(listed) == {"Work", "Home"}
    # Radicale names no default calendar: the first writable one it lists is the primary.
    (primary,) = [name for name, calendar in listed.items() if calendar["isPrimary"]]
    (other,) = set(listed) - {primary}
    assert (listed[primary]["integrated"], listed[other]["integrated"]) == (True, False)

    free = await slots(server, TUESDAY, WEDNESDAY)
    assert busy_at[primary] not in free  # the event in Radicale's primary calendar
    assert busy_at[other] in free  # the other calendar is not integrated

    booked = await book(server, "2026-12-01T11:00:00+02:00")
    assert booked["__typename"] == "Booking", booked
    target = alice_calendars[primary]

    async def written() -> list[icalendar.Event]:
        return [event for event in radicale_events(radicale, target) if str(event["UID"]).endswith("@kokous")]

    (event,) = await eventually(written, lambda events: len(events) == 1, "one event in the primary calendar")
    assert [str(attendee) for attendee in event.attendees] == [f"mailto:{VISITOR}"]
    assert event.start == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert len(radicale_events(radicale, alice_calendars[other])) == 1  # only its own event (CAL-6)
    done = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "done")
    assert done.calendar_event_id == f"{target}{event['UID']}.ics"
    assert len(await written()) == 1


async def test_caldav_wrong_password_changes_nothing(server: LiveServer, radicale: RadicaleServer) -> None:
    # covers: CAL-6 (CalDAV connection refused)
    owner = await owner_allowed_to_connect(server)

    refused = await connect_caldav(server, owner, radicale.url, password="wrong")

    assert failure(refused) == ("CalendarConnectionFailed", "AUTHENTICATION_FAILED")
    assert "app-specific password" in refused["message"]
    assert await connection_rows(server, owner) == []


# -- the rules ------------------------------------------------------------------------------------


async def test_without_personal_email_access_no_provider_is_contacted(
    server: LiveServer, exchange: ExchangeDouble, radicale: RadicaleServer
) -> None:
    # covers: CAL-4
    user, token = await make_owner(server.services, "owner-no-access@example.com")
    owner = Owner(user=user, token=token, page_id="")

    with DoubleServer(ForwardingApp(radicale.url)) as caldav:
        refused = [
            await connect_exchange(server, owner, exchange_form(exchange)),
            await connect_caldav(server, owner, caldav.url + "/"),
        ]
        assert caldav.requests == []

    for result in refused:
        assert failure(result) == ("PermissionRequired", "personalEmailAccess")
    assert exchange.requests == []
    assert await connection_rows(server, owner) == []


async def test_an_owner_created_today_holds_one_connection(
    server: LiveServer, exchange: ExchangeDouble, radicale: RadicaleServer
) -> None:
    # covers: CAL-5
    owner = await owner_allowed_to_connect(server)
    assert (await connect_exchange(server, owner, exchange_form(exchange)))["__typename"] == "CalendarConnection"

    another = await connect_exchange(server, owner, exchange_form(exchange, SECOND))
    assert another["__typename"] == "ConnectionLimitReached", another
    assert "1 calendar connection" in another["message"]
    with DoubleServer(ForwardingApp(radicale.url)) as caldav:
        other_provider = await connect_caldav(server, owner, caldav.url + "/")
        assert caldav.requests == []  # refused before the server is asked
    assert other_provider["__typename"] == "ConnectionLimitReached", other_provider
    assert [row.account_email for row in await connection_rows(server, owner)] == [MAILBOX]


async def test_an_owner_from_before_the_cutover_holds_two_until_removing_one(
    server: LiveServer, exchange: ExchangeDouble
) -> None:
    # covers: CAL-5, INACT-3
    owner = await owner_allowed_to_connect(server)
    async with server.services.db.transaction() as session:
        user = await session.get(User, owner.user.id)
        assert user is not None
        user.created_at = datetime(2022, 6, 1, tzinfo=UTC)
        session.add(user)

    first = await connect_exchange(server, owner, exchange_form(exchange))
    second = await connect_exchange(server, owner, exchange_form(exchange, SECOND))
    assert (first["__typename"], second["__typename"]) == ("CalendarConnection", "CalendarConnection")
    third = await connect_exchange(server, owner, exchange_form(exchange, THIRD))
    assert third["__typename"] == "ConnectionLimitReached", third
    assert "2 calendar connections" in third["message"]

    removed = await server.graphql(DISCONNECT, {"id": second["id"]}, token=owner.token)
    assert removed["data"]["disconnectCalendarConnection"]["connectionId"] == second["id"]
    again = await connect_exchange(server, owner, exchange_form(exchange, SECOND))
    assert again["__typename"] == "ConnectionLimitReached", again  # one from then on
    assert "1 calendar connection" in again["message"]

    async with server.services.db.transaction() as session:
        calendars = (await session.exec(select(Calendar).where(Calendar.connection_id == uuid.UUID(first["id"])))).all()
        for calendar in calendars:
            calendar.status = CalendarStatus.INACTIVE
            calendar.inactive_reason = "UnauthorizedError"
            calendar.inactive_since = NOW
            session.add(calendar)
    reconnected = await connect_exchange(server, owner, exchange_form(exchange))  # the same account: allowed
    assert (reconnected["__typename"], reconnected["id"]) == ("CalendarConnection", first["id"])
    assert {(c["status"], c["inactiveReason"]) for c in reconnected["calendars"]} == {("ACTIVE", None)}
    assert [row.account_email for row in await connection_rows(server, owner)] == [MAILBOX]


# -- removing -------------------------------------------------------------------------------------


async def test_removing_deletes_the_connection_its_credentials_and_busy_time(
    server: LiveServer, exchange: ExchangeDouble
) -> None:
    # covers: CAL-8, PAGE-4
    owner = await owner_allowed_to_connect(server)
    exchange.add_busy(MAILBOX, datetime(2026, 12, 1, 8, tzinfo=UTC), datetime(2026, 12, 1, 9, tzinfo=UTC))
    connection = await connect_exchange(server, owner, exchange_form(exchange))
    calendar_ids = [uuid.UUID(calendar["id"]) for calendar in connection["calendars"]]
    assert len(await busy_rows(server, calendar_ids)) == 1
    assert (await server.graphql(STATUS))["data"]["schedulingPage"]["status"] == "ONLINE"

    removed = await server.graphql(DISCONNECT, {"id": connection["id"]}, token=owner.token)

    assert removed["data"]["disconnectCalendarConnection"]["connectionId"] == connection["id"]
    assert await connection_rows(server, owner) == []
    assert await busy_rows(server, calendar_ids) == []
    async with server.services.db.session() as session:
        assert (await session.exec(select(Calendar).where(col(Calendar.id).in_(calendar_ids)))).all() == []
    assert await connections(server, owner.token) == []
    assert (await server.graphql(STATUS))["data"]["schedulingPage"]["status"] == "OFFLINE"
    assert (await book(server, "2026-12-01T11:00:00+02:00"))["__typename"] == "BookingRequest"


async def test_exchange_calendars_turn_inactive_on_the_second_refused_login_in_a_row(
    server: LiveServer, exchange: ExchangeDouble
) -> None:
    # covers: INACT-1, CAL-3
    owner = await owner_allowed_to_connect(server)
    connection = await connect_exchange(server, owner, exchange_form(exchange))
    connection_id = uuid.UUID(connection["id"])

    async def statuses() -> set[str]:
        (listed,) = await connections(server, owner.token)
        return {calendar["status"] for calendar in listed["calendars"]}

    exchange.change_password(MAILBOX, "changed-by-the-owner")
    assert not await server.services.busy_sync.refresh(connection_id)
    assert await statuses() == {"ACTIVE"}  # one 401 may be a fluke of the login handshake
    exchange.change_password(MAILBOX, PASSWORD)
    assert await server.services.busy_sync.refresh(connection_id)  # a success resets the count
    exchange.change_password(MAILBOX, "changed-by-the-owner")
    assert not await server.services.busy_sync.refresh(connection_id)
    assert await statuses() == {"ACTIVE"}
    assert not await server.services.busy_sync.refresh(connection_id)
    assert await statuses() == {"INACTIVE"}


async def test_one_refused_exchange_login_on_the_event_write_is_retried_not_given_up(
    configured: Settings, exchange: ExchangeDouble
) -> None:
    # covers: INACT-1, BOOK-7, BOOK-2
    clock = MovableClock(NOW)
    async with start_live_server(configured, clock=clock) as server:
        owner = await owner_allowed_to_connect(server)
        await connect_exchange(server, owner, exchange_form(exchange))
        exchange.fail("CreateItem", status=401)  # one refused login: maybe a fluke (INACT-1)

        booked = await book(server, "2026-12-01T11:00:00+02:00")
        assert booked["__typename"] == "Booking", booked
        retry = await eventually(
            lambda: create_event_row(server, booked["id"]),
            lambda row: row.last_error is not None,
            "first attempt failed",
        )
        assert retry.done_at is None  # not given up: retried after the backoff
        assert (await booking_row(server, booked["id"])).calendar_write == "PENDING"
        assert {calendar["status"] for calendar in (await connections(server, owner.token))[0]["calendars"]} == {
            "ACTIVE"
        }

        clock.advance(10)
        await server.services.outbox.run_once()
        done = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "done")
        (item,) = [item for item in exchange.items_on(MAILBOX) if item.attendees == [VISITOR]]
        assert done.calendar_event_id == item.item_id
