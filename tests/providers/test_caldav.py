"""The CalDAV adapter against a real Radicale 3.9 server ("CalDAV connection").

One Radicale per module, with two users: alice has the calendars busy time is read from and
gets a fresh empty calendar for every test that writes; bob has a fixed set of calendars to
list. Faults Radicale cannot produce (503, 429, slow answers) come from a ``DoubleServer``
forwarding to it. The fixtures set data up with the caldav client itself, and the tests check
what Radicale stored with it too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
from caldav.collection import Calendar
from caldav.davclient import DAVClient
from caldav.elements import cdav
from starlette.responses import Response

from providers.base import Attendee, BusyBlock, CalendarAccess, EventDraft
from providers.caldav import CalDAVCalendarClient, CalDAVConfig, CalDAVCredentials, CalDAVForm, connect
from providers.errors import (
    ProviderAuthError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRefused,
    ProviderUnavailable,
)
from tests.doubles.radicale import ForwardingApp, RadicaleServer, free_port
from tests.doubles.server import DoubleServer, make_tls_files

PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret"}
CONFIG = CalDAVConfig(timeout=5.0)
HELSINKI = ZoneInfo("Europe/Helsinki")
WINDOW = (datetime(2030, 3, 25, tzinfo=UTC), datetime(2030, 4, 8, tzinfo=UTC))


def _ics(*lines: str) -> str:
    body = "\r\n".join(("BEGIN:VEVENT", f"UID:{uuid.uuid4()}", "DTSTAMP:20300101T000000Z", *lines, "END:VEVENT"))
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\n{body}\r\nEND:VCALENDAR\r\n"


# What alice's "work" calendar (zone Europe/Helsinki) holds, and the busy time it must give.
WORK_EVENTS = [
    _ics("SUMMARY:standup", "DTSTART:20300325T100000Z", "DTEND:20300325T110000Z"),
    # Weekly on Mondays at 09:00 Helsinki: 07:00Z in the window's first week, 06:00Z after DST.
    _ics("SUMMARY:weekly", "DTSTART;TZID=Europe/Helsinki:20300304T090000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY"),
    _ics("SUMMARY:free", "DTSTART:20300326T120000Z", "DTEND:20300326T130000Z", "TRANSP:TRANSPARENT"),
    _ics("SUMMARY:cancelled", "DTSTART:20300327T120000Z", "DTEND:20300327T130000Z", "STATUS:CANCELLED"),
    _ics(
        "SUMMARY:new york",
        "DTSTART;TZID=America/New_York:20300326T090000",
        "DTEND;TZID=America/New_York:20300326T100000",
    ),
    _ics("SUMMARY:all day", "DTSTART;VALUE=DATE:20300328", "DTEND;VALUE=DATE:20300329"),
    _ics("SUMMARY:duration", "DTSTART:20300329T150000Z", "DURATION:PT45M"),
    _ics("SUMMARY:later", "DTSTART:20300420T150000Z", "DTEND:20300420T160000Z"),
]
WORK_BUSY = [
    (datetime(2030, 3, 25, 7, tzinfo=UTC), datetime(2030, 3, 25, 8, tzinfo=UTC)),
    (datetime(2030, 3, 25, 10, tzinfo=UTC), datetime(2030, 3, 25, 11, tzinfo=UTC)),
    (datetime(2030, 3, 26, 13, tzinfo=UTC), datetime(2030, 3, 26, 14, tzinfo=UTC)),  # 09:00 EDT
    (datetime(2030, 3, 27, 22, tzinfo=UTC), datetime(2030, 3, 28, 22, tzinfo=UTC)),  # the Helsinki day
    (datetime(2030, 3, 29, 15, tzinfo=UTC), datetime(2030, 3, 29, 15, 45, tzinfo=UTC)),
    (datetime(2030, 4, 1, 6, tzinfo=UTC), datetime(2030, 4, 1, 7, tzinfo=UTC)),
]
# alice's "home" calendar names no zone: its all-day event is the UTC day.
HOME_EVENTS = [_ics("SUMMARY:holiday", "DTSTART;VALUE=DATE:20300402", "DTEND;VALUE=DATE:20300403")]
HOME_BUSY = [(datetime(2030, 4, 2, tzinfo=UTC), datetime(2030, 4, 3, tzinfo=UTC))]


def _dav(server: RadicaleServer, user: str) -> DAVClient:
    """A caldav client for setting up and inspecting Radicale directly."""
    return DAVClient(server.url, username=user, password=PASSWORDS[user], enable_rfc6764=False)


def _vtimezone(name: str) -> str:
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//tests//EN")
    calendar.add("version", "2.0")
    calendar.add_component(icalendar.Timezone.from_tzid(name))
    return calendar.to_ical().decode()


def _make_calendar(
    client: DAVClient, cal_id: str, name: str, *, zone: str | None = None, components: list[str] | None = None
) -> Calendar:
    calendar = client.principal().make_calendar(name=name, cal_id=cal_id, supported_calendar_component_set=components)
    if zone:
        calendar.set_properties([cdav.CalendarTimeZone(_vtimezone(zone))])
    return calendar


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with RadicaleServer(tmp_path_factory.mktemp("radicale"), PASSWORDS) as server:
        with _dav(server, "alice") as client:
            work = _make_calendar(client, "work", "Work", zone="Europe/Helsinki")
            home = _make_calendar(client, "home", "Home")
            for ics in WORK_EVENTS:
                work.add_event(ics)
            for ics in HOME_EVENTS:
                home.add_event(ics)
        with _dav(server, "bob") as client:
            _make_calendar(client, "a-personal", "Personal", zone="Europe/Helsinki")
            _make_calendar(client, "b-team", "Team")
            _make_calendar(client, "c-tasks", "Tasks", components=["VTODO"])
        yield server


@pytest.fixture
async def alice(radicale: RadicaleServer) -> CalDAVCalendarClient:
    credentials = await connect(CalDAVForm(radicale.url, "alice", PASSWORDS["alice"]), CONFIG)
    return CalDAVCalendarClient(CONFIG, credentials)


@pytest.fixture
def empty_calendar(radicale: RadicaleServer) -> str:
    """A new calendar of alice's for one test that writes; its URL."""
    with _dav(radicale, "alice") as client:
        calendar = _make_calendar(client, f"t-{uuid.uuid4().hex[:8]}", "Scratch")
        return str(calendar.url)


@pytest.fixture
def forwarder(radicale: RadicaleServer) -> Iterator[DoubleServer]:
    """Radicale behind a double that can be told to fail."""
    with DoubleServer(ForwardingApp(radicale.url)) as double:
        yield double


@pytest.fixture
async def alice_forwarded(forwarder: DoubleServer) -> CalDAVCalendarClient:
    """alice through the forwarder, with a short timeout so a slow answer is a timeout."""
    config = CalDAVConfig(timeout=0.5)
    return CalDAVCalendarClient(
        config, await connect(CalDAVForm(forwarder.url + "/", "alice", PASSWORDS["alice"]), config)
    )


def _stored_events(radicale: RadicaleServer, calendar_url: str) -> list[icalendar.Event]:
    """Every VEVENT Radicale holds in the calendar, read with the caldav client."""
    with _dav(radicale, "alice") as client:
        resources = Calendar(client=client, url=calendar_url).get_events()
        return [
            event
            for resource in resources
            for event in icalendar.Calendar.from_ical(resource.data).walk("VEVENT")
            if isinstance(event, icalendar.Event)
        ]


DRAFT = EventDraft(
    idempotency_key="booking-1",
    summary="Intro call",
    start=datetime(2030, 5, 6, 9, tzinfo=HELSINKI),
    end=datetime(2030, 5, 6, 9, 30, tzinfo=HELSINKI),
    timezone="Europe/Helsinki",
    attendees=(Attendee("visitor@example.com", "Vera Visitor"),),
    description="Booked through Kokous",
    location="https://meet.example.com/x",
    organizer_email="alice@example.com",
)


# -- connecting ---------------------------------------------------------------------------------


async def test_connect_discovers_the_principal(radicale: RadicaleServer) -> None:
    # covers: CAL-6 (CalDAV connection: tested and discovered before it is saved)
    credentials = await connect(CalDAVForm(radicale.url, "alice", PASSWORDS["alice"]), CONFIG)

    assert credentials.principal_url == radicale.user_url("alice")
    assert CalDAVCredentials.from_json(credentials.to_json()) == credentials


async def test_connect_with_a_wrong_password_is_an_auth_error_that_mentions_app_passwords(
    radicale: RadicaleServer,
) -> None:
    # covers: CAL-6, INACT-1 (CalDAV connection refused: 401)
    with pytest.raises(ProviderAuthError) as caught:
        await connect(CalDAVForm(radicale.url, "alice", "wrong"), CONFIG)

    assert "app-specific password" in caught.value.message
    assert caught.value.code == "401"


async def test_connect_to_a_closed_port_is_unavailable() -> None:
    # covers: CAL-6 (CalDAV connection: server unreachable)
    with pytest.raises(ProviderUnavailable):
        await connect(CalDAVForm(f"http://127.0.0.1:{free_port()}/", "alice", "x"), CONFIG)


async def test_connect_to_a_plain_web_server_is_refused() -> None:
    # covers: CAL-6 (CalDAV connection: not a CalDAV server)
    web_page = Response(b"<html><body>Welcome</body></html>", media_type="text/html")

    with DoubleServer(web_page) as web, pytest.raises(ProviderRefused):
        await connect(CalDAVForm(web.url + "/", "alice", "x"), CONFIG)


async def test_connect_needs_an_http_address() -> None:
    # covers: CAL-6 (CalDAV connection: form validation)
    with pytest.raises(ProviderRefused):
        await connect(CalDAVForm("caldav.example.com", "alice", "x"), CONFIG)


async def test_https_server_is_trusted_through_the_ca_bundle(tmp_path: Path) -> None:
    # covers: CAL-6 (CalDAV connection over TLS with the configured CA bundle)
    tls = make_tls_files(tmp_path)
    with RadicaleServer(tmp_path / "tls", {"alice": "pw"}, tls=tls) as server:
        form = CalDAVForm(server.url, "alice", "pw")
        credentials = await connect(form, CalDAVConfig(ca_bundle=str(tls.ca_path), timeout=5.0))
        with pytest.raises(ProviderUnavailable):
            await connect(form, CONFIG)  # the session CA is not in the system store

    assert credentials.principal_url == server.user_url("alice")


# -- calendars ----------------------------------------------------------------------------------


async def test_lists_event_calendars_with_access_zone_and_one_primary(radicale: RadicaleServer) -> None:
    # covers: CAL-6
    credentials = await connect(CalDAVForm(radicale.url, "bob", PASSWORDS["bob"]), CONFIG)

    calendars = await CalDAVCalendarClient(CONFIG, credentials).list_calendars()

    home = radicale.user_url("bob")
    by_url = {c.external_id: c for c in calendars}
    assert sorted(by_url) == [home + "a-personal/", home + "b-team/"]  # the task list is left out
    assert (by_url[home + "a-personal/"].name, by_url[home + "b-team/"].name) == ("Personal", "Team")
    assert all(c.access is CalendarAccess.OWNER for c in calendars)
    # No default named: the writable one with the first URL, whatever order the server lists them in.
    assert (by_url[home + "a-personal/"].primary, by_url[home + "b-team/"].primary) == (True, False)
    assert (by_url[home + "a-personal/"].timezone, by_url[home + "b-team/"].timezone) == ("Europe/Helsinki", None)


async def test_the_servers_default_calendar_is_primary(radicale: RadicaleServer) -> None:
    # covers: CAL-6 (bookings go to the default calendar: RFC 6638 schedule-default-calendar-URL)
    with DoubleServer(ForwardingApp(radicale.url)) as forwarder:
        xml = {"content-type": "application/xml; charset=utf-8"}
        principal = (
            '<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:response><d:href>/bob/</d:href>'
            "<d:propstat><d:prop><c:calendar-home-set><d:href>/bob/</d:href></c:calendar-home-set>"
            "<c:schedule-inbox-URL><d:href>/bob/inbox/</d:href></c:schedule-inbox-URL></d:prop>"
            "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"
        )
        inbox = (
            '<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:response><d:href>/bob/inbox/</d:href>'
            "<d:propstat><d:prop><c:schedule-default-calendar-URL><d:href>/bob/b-team/</d:href>"
            "</c:schedule-default-calendar-URL></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
            "</d:response></d:multistatus>"
        )
        forwarder.fail("calendar-home-set", status=207, body=principal, headers=xml)
        forwarder.fail("schedule-default-calendar-URL", status=207, body=inbox, headers=xml)
        credentials = CalDAVCredentials(forwarder.url + "/", "bob", PASSWORDS["bob"], forwarder.url + "/bob/")

        calendars = await CalDAVCalendarClient(CONFIG, credentials).list_calendars()

    assert [c.external_id for c in calendars if c.primary] == [forwarder.url + "/bob/b-team/"]


# -- busy time ----------------------------------------------------------------------------------


async def test_busy_time_expands_recurrences_converts_zones_and_skips_free_events(
    alice: CalDAVCalendarClient, radicale: RadicaleServer
) -> None:
    # covers: BOOK-2 (live free/busy), CAL-6 (availability across every integrated calendar)
    work, home = radicale.user_url("alice") + "work/", radicale.user_url("alice") + "home/"

    blocks = await alice.busy_intervals([work, home], *WINDOW)

    expected = [BusyBlock(work, start, end) for start, end in WORK_BUSY] + [
        BusyBlock(home, start, end) for start, end in HOME_BUSY
    ]
    assert sorted(blocks, key=lambda b: (b.start, b.calendar_id)) == sorted(
        expected, key=lambda b: (b.start, b.calendar_id)
    )
    assert all(block.start.tzinfo is UTC and block.end.tzinfo is UTC for block in blocks)


async def test_busy_time_refuses_naive_datetimes(alice: CalDAVCalendarClient, radicale: RadicaleServer) -> None:
    # covers: BOOK-2 (aware UTC at the adapter boundary)
    with pytest.raises(ValueError, match="aware"):
        await alice.busy_intervals([radicale.user_url("alice") + "work/"], datetime(2030, 3, 25), WINDOW[1])


async def test_busy_time_of_a_missing_calendar_is_not_found(
    alice: CalDAVCalendarClient, radicale: RadicaleServer
) -> None:
    # covers: INACT-1 (a calendar that is gone)
    with pytest.raises(ProviderNotFound):
        await alice.busy_intervals([radicale.user_url("alice") + "gone/"], *WINDOW)


async def test_a_changed_password_makes_calls_fail_with_auth_error(radicale: RadicaleServer) -> None:
    # covers: INACT-1
    stale = CalDAVCredentials(radicale.url, "alice", "old-password", radicale.user_url("alice"))
    client = CalDAVCalendarClient(CONFIG, stale)

    with pytest.raises(ProviderAuthError):
        await client.busy_intervals([radicale.user_url("alice") + "work/"], *WINDOW)
    with pytest.raises(ProviderAuthError):
        await client.list_calendars()


async def test_server_errors_and_timeouts_are_unavailable(
    alice_forwarded: CalDAVCalendarClient, forwarder: DoubleServer
) -> None:
    # covers: BOOK-7 (a provider that is down is retried later), INACT-1 (not mistaken for lost access)
    calendar = forwarder.url + "/alice/work/"
    forwarder.fail("REPORT", status=500)
    with pytest.raises(ProviderUnavailable):
        await alice_forwarded.busy_intervals([calendar], *WINDOW)

    forwarder.fail("REPORT", status=200, delay=1.0)  # longer than the 0.5 s timeout
    with pytest.raises(ProviderUnavailable):
        await alice_forwarded.busy_intervals([calendar], *WINDOW)

    assert len(await alice_forwarded.busy_intervals([calendar], *WINDOW)) == len(WORK_BUSY)


# -- writing events -----------------------------------------------------------------------------


async def test_create_event_writes_it_once_with_the_attendee(
    alice: CalDAVCalendarClient, radicale: RadicaleServer, empty_calendar: str
) -> None:
    # covers: BOOK-2
    written = await alice.create_event(empty_calendar, DRAFT)

    assert written.calendar_id == empty_calendar
    assert written.event_id == empty_calendar + "booking-1@kokous.ics"
    [event] = _stored_events(radicale, empty_calendar)
    assert str(event["UID"]) == "booking-1@kokous"
    assert str(event["SUMMARY"]) == "Intro call"
    assert str(event["DESCRIPTION"]) == "Booked through Kokous"
    assert str(event["LOCATION"]) == "https://meet.example.com/x"
    assert str(event["ORGANIZER"]) == "mailto:alice@example.com"
    [attendee] = event.attendees
    assert str(attendee) == "mailto:visitor@example.com"
    assert attendee.params["CN"] == "Vera Visitor"
    assert event["DTSTART"].params["TZID"] == "Europe/Helsinki"
    assert event.start == datetime(2030, 5, 6, 9, tzinfo=HELSINKI)
    assert event.end == datetime(2030, 5, 6, 9, 30, tzinfo=HELSINKI)


async def test_creating_with_the_same_key_twice_keeps_one_event(
    alice: CalDAVCalendarClient, radicale: RadicaleServer, empty_calendar: str
) -> None:
    # covers: BOOK-2, BOOK-7 (a retried write duplicates nothing)
    first = await alice.create_event(empty_calendar, replace(DRAFT, idempotency_key="booking-2"))
    retry = replace(DRAFT, idempotency_key="booking-2", summary="Retried")
    second = await alice.create_event(empty_calendar, retry)

    assert second == first
    [event] = _stored_events(radicale, empty_calendar)
    assert (str(event["UID"]), str(event["SUMMARY"])) == ("booking-2@kokous", "Intro call")  # the first one kept


async def test_a_write_while_the_server_is_down_fails_retryably_and_the_retry_writes_once(
    alice_forwarded: CalDAVCalendarClient, forwarder: DoubleServer, radicale: RadicaleServer, empty_calendar: str
) -> None:
    # covers: BOOK-7
    calendar = empty_calendar.replace(radicale.url, forwarder.url + "/")
    forwarder.fail("PUT", status=503)
    with pytest.raises(ProviderUnavailable):
        await alice_forwarded.create_event(calendar, replace(DRAFT, idempotency_key="booking-3"))

    forwarder.fail("PUT", status=429, headers={"Retry-After": "7"})
    with pytest.raises(ProviderRateLimited) as limited:
        await alice_forwarded.create_event(calendar, replace(DRAFT, idempotency_key="booking-3"))
    assert limited.value.retry_after == 7.0

    await alice_forwarded.create_event(calendar, replace(DRAFT, idempotency_key="booking-3"))
    assert [str(event["UID"]) for event in _stored_events(radicale, empty_calendar)] == ["booking-3@kokous"]


async def test_update_event_rewrites_it_with_a_higher_sequence(
    alice: CalDAVCalendarClient, radicale: RadicaleServer, empty_calendar: str
) -> None:
    # covers: BOOK-5 (the calendar event follows the booking)
    written = await alice.create_event(empty_calendar, replace(DRAFT, idempotency_key="booking-4"))
    later = datetime(2030, 5, 7, 14, tzinfo=HELSINKI)

    updated = await alice.update_event(
        empty_calendar,
        written.event_id,
        replace(DRAFT, idempotency_key="booking-4", summary="Moved call", start=later, end=later + timedelta(hours=1)),
    )

    assert updated == written
    [event] = _stored_events(radicale, empty_calendar)
    assert (str(event["SUMMARY"]), event.start, event.sequence) == ("Moved call", later, 1)


async def test_delete_event_removes_it_and_is_quiet_when_it_is_gone(
    alice: CalDAVCalendarClient, radicale: RadicaleServer, empty_calendar: str
) -> None:
    # covers: BOOK-5 (the calendar event follows the booking)
    written = await alice.create_event(empty_calendar, replace(DRAFT, idempotency_key="booking-5"))

    await alice.delete_event(empty_calendar, written.event_id)
    await alice.delete_event(empty_calendar, written.event_id)

    assert _stored_events(radicale, empty_calendar) == []
    with pytest.raises(ProviderNotFound):
        await alice.update_event(empty_calendar, written.event_id, replace(DRAFT, idempotency_key="booking-5"))


async def test_writes_refuse_naive_datetimes(alice: CalDAVCalendarClient, empty_calendar: str) -> None:
    # covers: BOOK-2 (aware UTC at the adapter boundary)
    with pytest.raises(ValueError, match="aware"):
        await alice.create_event(
            empty_calendar, replace(DRAFT, start=datetime(2030, 5, 6, 9), end=datetime(2030, 5, 6, 10))
        )


async def test_credentials_json_round_trips(alice: CalDAVCalendarClient, radicale: RadicaleServer) -> None:
    # covers: INACT-1 (the stored connection is what the next call uses)
    stored = CalDAVCredentials.from_json(alice.credentials_json())

    assert stored == CalDAVCredentials(radicale.url, "alice", PASSWORDS["alice"], radicale.user_url("alice"))
