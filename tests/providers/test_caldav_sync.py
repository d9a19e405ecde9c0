"""CalDAV incremental sync (``list_changes``) against a real Radicale 3.9 server.

Every call goes through a ``DoubleServer`` forwarding to Radicale, which records each request,
so a test can count what a round costs. Each call of the adapter makes its own ``DAVClient``, and
its first request is answered 401 by Radicale to negotiate the login (see ``providers.caldav``):
a round's real requests are the ones that carry credentials. Servers without sync-collection are
Radicale behind ``WithoutSyncCollection``, which refuses the REPORT as such a server does and hides
``DAV:sync-token``. Events are written and changed with the caldav client directly, as the owner's
own calendar app would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import icalendar
import pytest
from caldav.davclient import DAVClient
from caldav.elements import cdav

from providers.base import EventChanges, EventDraft, IncrementalSync, PushWatch
from providers.caldav import CalDAVCalendarClient, CalDAVConfig, CalDAVCredentials
from providers.errors import CalendarGone, ProviderUnavailable, SyncTokenExpired
from tests.doubles.no_sync_caldav import WithoutSyncCollection
from tests.doubles.radicale import ForwardingApp, RadicaleServer
from tests.doubles.server import DoubleServer, RecordedRequest

PASSWORD = "alice-secret"
CONFIG = CalDAVConfig(timeout=5.0)
WINDOW = (datetime(2030, 3, 25, tzinfo=UTC), datetime(2030, 4, 8, tzinfo=UTC))


def utc(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2030, month, day, hour, minute, tzinfo=UTC)


def ics(uid: str, *lines: str) -> str:
    body = "\r\n".join(("BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20300101T000000Z", *lines, "END:VEVENT"))
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\n{body}\r\nEND:VCALENDAR\r\n"


class Owner:
    """alice's calendar app: writes, moves and deletes resources of one calendar on Radicale."""

    def __init__(self, radicale: RadicaleServer, calendar_path: str) -> None:
        self.radicale = radicale
        self.path = calendar_path  # "/alice/<name>/"
        self.url = radicale.url.rstrip("/") + calendar_path

    def _client(self) -> DAVClient:
        return DAVClient(self.radicale.url, username="alice", password=PASSWORD, enable_rfc6764=False)

    def put(self, name: str, *lines: str) -> None:
        """Write (or rewrite) the resource ``<name>.ics`` holding one event with UID ``name``."""
        with self._client() as client:
            answer = client.put(
                f"{self.url}{name}.ics",
                ics(name, *lines),
                {"Content-Type": "text/calendar; charset=utf-8"},
            )
        assert answer.status in (201, 204), answer.status

    def sync_token(self) -> str:
        """The calendar's ``DAV:sync-token`` now (Radicale keeps every token it hands out)."""
        asked = '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:sync-token/></d:prop></d:propfind>'
        with self._client() as client:
            (result,) = client.propfind(self.url, props=asked, depth=0).results
        return str(result.properties["{DAV:}sync-token"])

    def delete(self, name: str) -> None:
        with self._client() as client:
            assert client.delete(f"{self.url}{name}.ics").status in (200, 204)


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with RadicaleServer(tmp_path_factory.mktemp("radicale-sync"), {"alice": PASSWORD}) as server:
        yield server


@pytest.fixture
def owner(radicale: RadicaleServer) -> Owner:
    """A new calendar of alice's in Europe/Helsinki for one test, with the app to change it."""
    name = f"s-{uuid.uuid4().hex[:8]}"
    with DAVClient(radicale.url, username="alice", password=PASSWORD, enable_rfc6764=False) as client:
        calendar = client.principal().make_calendar(name="Sync", cal_id=name)
        zone = icalendar.Calendar()
        zone.add("prodid", "-//tests//EN")
        zone.add("version", "2.0")
        zone.add_component(icalendar.Timezone.from_tzid("Europe/Helsinki"))
        calendar.set_properties([cdav.CalendarTimeZone(zone.to_ical().decode())])
    return Owner(radicale, f"/alice/{name}/")


def through(app: ForwardingApp | WithoutSyncCollection) -> Iterator[DoubleServer]:
    with DoubleServer(app) as double:
        yield double


@pytest.fixture
def forwarder(radicale: RadicaleServer) -> Iterator[DoubleServer]:
    """Radicale as it is, behind a double that records (and can fail) requests."""
    yield from through(ForwardingApp(radicale.url))


@pytest.fixture
def legacy(radicale: RadicaleServer) -> Iterator[DoubleServer]:
    """Radicale as a server without sync-collection that has a ctag."""
    yield from through(WithoutSyncCollection(radicale.url))


@pytest.fixture
def legacy_without_ctag(radicale: RadicaleServer) -> Iterator[DoubleServer]:
    """Radicale as a server with neither sync-collection nor a ctag: only ETags tell a change."""
    yield from through(WithoutSyncCollection(radicale.url, ctag=False))


def alice_at(double: DoubleServer) -> CalDAVCalendarClient:
    url = double.url + "/"
    return CalDAVCalendarClient(CONFIG, CalDAVCredentials(url, "alice", PASSWORD, url + "alice/"))


def sent(double: DoubleServer) -> list[RecordedRequest]:
    """The requests that reached the server with credentials (each call's 401 challenge left out)."""
    return [request for request in double.requests if "authorization" in request.headers]


def kinds(double: DoubleServer) -> list[str]:
    """What each authenticated request was: the method, and the REPORT's kind."""
    names = ("sync-collection", "calendar-multiget", "calendar-query")
    return [
        request.method + next((f" {name}" for name in names if name.encode() in request.body), "")
        for request in sent(double)
    ]


async def changes(
    double: DoubleServer, owner: Owner, token: str | None, window: tuple[datetime, datetime] = WINDOW
) -> EventChanges:
    return await alice_at(double).list_changes(
        double.url + owner.path, sync_token=token, start=window[0], end=window[1]
    )


def times(result: EventChanges) -> dict[str, tuple[datetime, datetime, bool]]:
    """The round's events by id, the calendar's own URL prefix cut off."""
    return {event.event_id.rsplit("/", 1)[-1]: (event.start, event.end, event.busy) for event in result.changed}


# -- the first round -----------------------------------------------------------------------------------


async def test_the_first_round_lists_every_instance_of_the_window_with_a_sync_token(
    forwarder: DoubleServer, owner: Owner
) -> None:
    # covers: SYNC-5
    owner.put("single", "DTSTART:20300325T100000Z", "DTEND:20300325T110000Z")
    # Weekly on Mondays at 09:00 Helsinki: 07:00Z in the window's first week, 06:00Z after DST.
    owner.put("weekly", "DTSTART;TZID=Europe/Helsinki:20300304T090000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY")
    owner.put("free", "DTSTART:20300326T120000Z", "DTEND:20300326T130000Z", "TRANSP:TRANSPARENT")
    owner.put("cancelled", "DTSTART:20300327T120000Z", "DTEND:20300327T130000Z", "STATUS:CANCELLED")
    owner.put("all-day", "DTSTART;VALUE=DATE:20300328", "DTEND;VALUE=DATE:20300329")
    owner.put("floating", "DTSTART:20300329T150000", "DURATION:PT45M")  # a local time: Helsinki's
    owner.put("later", "DTSTART:20300420T150000Z", "DTEND:20300420T160000Z")

    result = await changes(forwarder, owner, None)

    assert result.full
    assert result.deleted == ()
    assert result.sync_token.startswith("sync:")
    assert times(result) == {
        "single.ics": (utc(25, 10), utc(25, 11), True),
        "weekly.ics#2030-03-25T07:00:00+00:00": (utc(25, 7), utc(25, 8), True),
        "weekly.ics#2030-04-01T06:00:00+00:00": (utc(1, 6, month=4), utc(1, 7, month=4), True),
        "free.ics": (utc(26, 12), utc(26, 13), False),
        "cancelled.ics": (utc(27, 12), utc(27, 13), False),
        "all-day.ics": (utc(27, 22), utc(28, 22), True),  # the Helsinki day
        "floating.ics": (utc(29, 13), utc(29, 13, 45), True),
    }
    assert {event.ical_uid for event in result.changed} == {
        "single",
        "weekly",
        "free",
        "cancelled",
        "all-day",
        "floating",
    }
    assert all(event.start.tzinfo is UTC and event.end.tzinfo is UTC for event in result.changed)
    assert all(event.event_id.startswith(forwarder.url + owner.path) for event in result.changed)
    # The token before the listing (one PROPFIND, with the zone), then the listing itself.
    assert kinds(forwarder) == ["PROPFIND", "REPORT calendar-query"]


async def test_the_client_is_an_incremental_sync_without_push(forwarder: DoubleServer) -> None:
    # covers: SYNC-5 (CalDAV busy time kept round by round; the background pass polls it)
    client = alice_at(forwarder)

    assert isinstance(client, IncrementalSync)
    assert not isinstance(client, PushWatch)


# -- incremental rounds ------------------------------------------------------------------------------


async def test_nothing_changed_is_an_empty_round_of_one_report(forwarder: DoubleServer, owner: Owner) -> None:
    # covers: SYNC-5
    owner.put("single", "DTSTART:20300325T100000Z", "DTEND:20300325T110000Z")
    owner.put("weekly", "DTSTART:20300304T090000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY")
    first = await changes(forwarder, owner, None)
    forwarder.clear_requests()

    second = await changes(forwarder, owner, first.sync_token)

    assert second == EventChanges((), (), first.sync_token, full=False)
    assert kinds(forwarder) == ["REPORT sync-collection"]
    assert [(request.method, request.path) for request in forwarder.requests] == [("REPORT", owner.path)] * 2
    assert b"<d:sync-level>1</d:sync-level>" in sent(forwarder)[0].body


async def test_an_added_and_a_moved_event_arrive_as_changes(forwarder: DoubleServer, owner: Owner) -> None:
    # covers: SYNC-5
    owner.put("stays", "DTSTART:20300326T100000Z", "DTEND:20300326T110000Z")
    owner.put("moves", "DTSTART:20300325T100000Z", "DTEND:20300325T110000Z")
    first = await changes(forwarder, owner, None)
    owner.put("moves", "DTSTART:20300327T140000Z", "DTEND:20300327T150000Z", "SEQUENCE:1")
    owner.put("added", "DTSTART;VALUE=DATE:20300402", "DTEND;VALUE=DATE:20300403", "TRANSP:TRANSPARENT")
    forwarder.clear_requests()

    second = await changes(forwarder, owner, first.sync_token)

    assert not second.full
    assert second.deleted == ()
    assert times(second) == {
        "moves.ics": (utc(27, 14), utc(27, 15), True),
        "added.ics": (utc(1, 21, month=4), utc(2, 21, month=4), False),  # all day in Helsinki, marked free
    }
    assert second.sync_token.startswith("sync:")
    assert second.sync_token != first.sync_token
    assert kinds(forwarder) == ["REPORT sync-collection", "REPORT calendar-multiget", "PROPFIND"]  # PROPFIND: the zone
    third = await changes(forwarder, owner, second.sync_token)
    assert third == EventChanges((), (), second.sync_token, full=False)


async def test_an_event_moved_out_of_the_window_still_arrives_so_its_old_time_is_dropped(
    forwarder: DoubleServer, owner: Owner
) -> None:
    # covers: SYNC-5
    owner.put("moves", "DTSTART:20300325T100000Z", "DTEND:20300325T110000Z")
    first = await changes(forwarder, owner, None)
    owner.put("moves", "DTSTART:20300520T100000Z", "DTEND:20300520T110000Z")

    second = await changes(forwarder, owner, first.sync_token)

    assert not second.full
    assert times(second) == {"moves.ics": (utc(20, 10, month=5), utc(20, 11, month=5), True)}


async def test_a_deletion_returns_the_whole_window_again(forwarder: DoubleServer, owner: Owner) -> None:
    # covers: SYNC-5
    owner.put("stays", "DTSTART:20300326T100000Z", "DTEND:20300326T110000Z")
    owner.put("goes", "DTSTART:20300325T100000Z", "DTEND:20300325T110000Z")
    first = await changes(forwarder, owner, None)
    owner.delete("goes")
    forwarder.clear_requests()

    second = await changes(forwarder, owner, first.sync_token)

    assert second.full  # a 404 member: which ids it had is not known, so the window is re-read
    assert times(second) == {"stays.ics": (utc(26, 10), utc(26, 11), True)}
    assert kinds(forwarder)[0] == "REPORT sync-collection"
    assert "REPORT calendar-query" in kinds(forwarder)
    assert (await changes(forwarder, owner, second.sync_token)).changed == ()  # the new token holds


async def test_a_changed_recurring_event_returns_the_whole_window_again(forwarder: DoubleServer, owner: Owner) -> None:
    # covers: SYNC-5
    owner.put("single", "DTSTART:20300326T100000Z", "DTEND:20300326T110000Z")
    owner.put("weekly", "DTSTART:20300304T090000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY")
    first = await changes(forwarder, owner, None)
    owner.put("weekly", "DTSTART:20300304T090000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY", "EXDATE:20300325T090000Z")

    second = await changes(forwarder, owner, first.sync_token)

    assert second.full
    assert times(second) == {
        "single.ics": (utc(26, 10), utc(26, 11), True),
        "weekly.ics#2030-04-01T09:00:00+00:00": (utc(1, 9, month=4), utc(1, 10, month=4), True),
    }


async def test_a_single_event_made_recurring_returns_the_whole_window_again(
    forwarder: DoubleServer, owner: Owner
) -> None:
    # covers: SYNC-5
    owner.put("becomes-weekly", "DTSTART:20300325T090000Z", "DURATION:PT1H")
    first = await changes(forwarder, owner, None)
    owner.put("becomes-weekly", "DTSTART:20300325T090000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY")

    second = await changes(forwarder, owner, first.sync_token)

    assert second.full
    assert set(times(second)) == {
        "becomes-weekly.ics#2030-03-25T09:00:00+00:00",
        "becomes-weekly.ics#2030-04-01T09:00:00+00:00",
    }


async def test_a_series_made_a_single_event_returns_the_whole_window_again(
    forwarder: DoubleServer, owner: Owner
) -> None:
    # covers: SYNC-5 (the series' instance rows must not outlive it)
    owner.put("weekly", "DTSTART:20300304T090000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY")
    first = await changes(forwarder, owner, None)
    owner.put("weekly", "DTSTART:20300326T090000Z", "DURATION:PT1H")  # no RRULE any more

    second = await changes(forwarder, owner, first.sync_token)

    assert second.full
    assert times(second) == {"weekly.ics": (utc(26, 9), utc(26, 10), True)}


async def test_a_truncated_answer_is_followed_until_complete(forwarder: DoubleServer, owner: Owner) -> None:
    # covers: SYNC-5 (RFC 6578 3.6: a 507 for the collection and a token to go on from)
    owner.put("a", "DTSTART:20300325T100000Z", "DTEND:20300325T110000Z")
    first = await changes(forwarder, owner, None)
    owner.put("a", "DTSTART:20300325T120000Z", "DTEND:20300325T130000Z")
    server_token = owner.sync_token()  # where the truncated answer stops
    owner.put("b", "DTSTART:20300326T100000Z", "DTEND:20300326T110000Z")
    truncated = (
        '<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:">'
        f'<d:response><d:href>{owner.path}a.ics</d:href><d:propstat><d:prop><d:getetag>"x"</d:getetag></d:prop>'
        "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
        f"<d:response><d:href>{owner.path}</d:href><d:status>HTTP/1.1 507 Insufficient Storage</d:status></d:response>"
        f"<d:sync-token>{server_token}</d:sync-token></d:multistatus>"
    )
    forwarder.fail("sync-collection", status=207, body=truncated, headers={"content-type": "application/xml"})
    forwarder.clear_requests()

    second = await changes(forwarder, owner, first.sync_token)

    assert not second.full
    assert times(second) == {
        "a.ics": (utc(25, 12), utc(25, 13), True),
        "b.ics": (utc(26, 10), utc(26, 11), True),  # only in the answer after the truncated one
    }
    syncs = [request for request in forwarder.requests if b"sync-collection" in request.body]
    # The truncated answer (to the first request, before any login), then from its token on.
    assert first.sync_token.split(":", 2)[2].encode() in syncs[0].body
    assert all(server_token.encode() in request.body for request in syncs[1:])
    assert kinds(forwarder)[:2] == ["REPORT sync-collection", "REPORT calendar-multiget"]


# -- tokens the server refuses -------------------------------------------------------------------------


async def test_radicale_refuses_an_unknown_token_with_403_valid_sync_token(
    radicale: RadicaleServer, owner: Owner
) -> None:
    # covers: SYNC-5 (what the adapter maps to SyncTokenExpired, as Radicale really answers it)
    body = (
        '<?xml version="1.0" encoding="utf-8"?><d:sync-collection xmlns:d="DAV:">'
        f"<d:sync-token>http://radicale.org/ns/sync/{'0' * 64}</d:sync-token><d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/></d:prop></d:sync-collection>"
    )
    answer = httpx.request("REPORT", owner.url, content=body, headers={"Depth": "0"}, auth=("alice", PASSWORD))

    assert answer.status_code == 403
    assert b"valid-sync-token" in answer.content


@pytest.mark.parametrize(
    "stored",
    [
        f"sync:0:http://radicale.org/ns/sync/{'0' * 64}",  # well formed, but Radicale never issued it
        "sync:0:not-a-radicale-token",
        "sync:zz:http://radicale.org/ns/sync/x",  # not even ours
        "vendor:abc",
    ],
)
async def test_a_token_the_server_does_not_know_is_expired_and_the_next_full_round_is_right(
    forwarder: DoubleServer, owner: Owner, stored: str
) -> None:
    # covers: SYNC-5
    owner.put("single", "DTSTART:20300325T100000Z", "DTEND:20300325T110000Z")

    with pytest.raises(SyncTokenExpired):
        await changes(forwarder, owner, stored)
    again = await changes(forwarder, owner, None)

    assert again.full
    assert times(again) == {"single.ics": (utc(25, 10), utc(25, 11), True)}
    assert (await changes(forwarder, owner, again.sync_token)).changed == ()


async def test_a_409_valid_sync_token_is_expired_too(forwarder: DoubleServer, owner: Owner) -> None:
    # covers: SYNC-5 (RFC 6578 allows 403 or 409; other servers answer 409)
    first = await changes(forwarder, owner, None)
    refused = '<?xml version="1.0"?><d:error xmlns:d="DAV:"><d:valid-sync-token/></d:error>'
    forwarder.fail("sync-collection", status=409, body=refused, headers={"content-type": "application/xml"})

    with pytest.raises(SyncTokenExpired):
        await changes(forwarder, owner, first.sync_token)


async def test_failures_are_mapped_as_every_other_call_is(forwarder: DoubleServer, owner: Owner) -> None:
    # covers: SYNC-5, BOOK-7 (a provider that is down is retried later)
    first = await changes(forwarder, owner, None)
    forwarder.fail("sync-collection", status=503)
    with pytest.raises(ProviderUnavailable):
        await changes(forwarder, owner, first.sync_token)

    for token in (None, first.sync_token):
        with pytest.raises(CalendarGone) as gone:  # that calendar turns inactive, the others sync on
            await changes(forwarder, Owner(owner.radicale, "/alice/gone/"), token)
        assert gone.value.calendar_id == forwarder.url + "/alice/gone/"


# -- our own events ------------------------------------------------------------------------------------


async def test_our_own_event_comes_back_with_the_id_create_event_returned(
    forwarder: DoubleServer, owner: Owner
) -> None:
    # covers: SYNC-5, SYNC-6 (a booking's event is recognised in the calendar)
    client = alice_at(forwarder)
    calendar_id = forwarder.url + owner.path
    first = await changes(forwarder, owner, None)
    draft = EventDraft("booking-7", "Intro call", utc(27, 8), utc(27, 8, 30), "Europe/Helsinki")

    written = await client.create_event(calendar_id, draft)
    second = await changes(forwarder, owner, first.sync_token)
    full = await changes(forwarder, owner, None)

    assert [event.event_id for event in second.changed] == [written.event_id]
    (event,) = second.changed
    assert (event.event_id, event.start, event.end, event.busy, event.ical_uid) == (
        written.event_id,
        utc(27, 8),
        utc(27, 8, 30),
        True,
        "booking-7@kokous",
    )
    assert [event.event_id for event in full.changed] == [written.event_id]

    owner.put("booking-7@kokous", "DTSTART:20300328T080000Z", "DTEND:20300328T083000Z")  # the owner moves it
    third = await changes(forwarder, owner, second.sync_token)
    assert [(event.event_id, event.start) for event in third.changed] == [(written.event_id, utc(28, 8))]


# -- servers without sync-collection -------------------------------------------------------------------


async def test_without_sync_collection_the_ctag_is_polled_with_one_propfind(legacy: DoubleServer, owner: Owner) -> None:
    # covers: SYNC-5
    owner.put("single", "DTSTART:20300325T100000Z", "DTEND:20300325T110000Z")
    first = await changes(legacy, owner, None)
    assert first.full
    assert first.sync_token.startswith("ctag:")
    assert times(first) == {"single.ics": (utc(25, 10), utc(25, 11), True)}
    legacy.clear_requests()

    unchanged = await changes(legacy, owner, first.sync_token)

    assert unchanged == EventChanges((), (), first.sync_token, full=False)
    assert kinds(legacy) == ["PROPFIND"]
    assert sent(legacy)[0].headers["depth"] == "0"

    owner.put("added", "DTSTART:20300326T100000Z", "DTEND:20300326T110000Z")
    legacy.clear_requests()
    changed = await changes(legacy, owner, unchanged.sync_token)

    assert changed.full
    assert changed.sync_token.startswith("ctag:")
    assert changed.sync_token != first.sync_token
    assert times(changed) == {
        "single.ics": (utc(25, 10), utc(25, 11), True),
        "added.ics": (utc(26, 10), utc(26, 11), True),
    }
    assert kinds(legacy) == ["PROPFIND", "REPORT calendar-query"]
    assert not [request for request in legacy.requests if b"sync-collection" in request.body]


async def test_a_sync_token_refused_as_an_unsupported_report_falls_back_to_the_ctag(
    forwarder: DoubleServer, legacy: DoubleServer, owner: Owner
) -> None:
    # covers: SYNC-5 (a server that shows a sync-token but refuses the REPORT)
    owner.put("single", "DTSTART:20300325T100000Z", "DTEND:20300325T110000Z")
    first = await changes(forwarder, owner, None)
    assert first.sync_token.startswith("sync:")

    fallen_back = await changes(legacy, owner, first.sync_token)

    assert fallen_back.full
    assert fallen_back.sync_token.startswith("ctag:")
    assert times(fallen_back) == {"single.ics": (utc(25, 10), utc(25, 11), True)}
    legacy.clear_requests()
    assert (await changes(legacy, owner, fallen_back.sync_token)).changed == ()
    assert kinds(legacy) == ["PROPFIND"]


async def test_a_501_for_sync_collection_falls_back_to_the_ctag(forwarder: DoubleServer, owner: Owner) -> None:
    # covers: SYNC-5
    first = await changes(forwarder, owner, None)
    forwarder.fail("sync-collection", status=501)

    fallen_back = await changes(forwarder, owner, first.sync_token)

    assert fallen_back.full
    assert fallen_back.sync_token.startswith("ctag:")


async def test_without_a_ctag_either_the_members_etags_are_compared(
    legacy_without_ctag: DoubleServer, owner: Owner
) -> None:
    # covers: SYNC-5
    owner.put("moves", "DTSTART:20300325T100000Z", "DTEND:20300325T110000Z")
    first = await changes(legacy_without_ctag, owner, None)
    assert first.full
    assert first.sync_token.startswith("etags:")
    legacy_without_ctag.clear_requests()

    unchanged = await changes(legacy_without_ctag, owner, first.sync_token)
    assert unchanged == EventChanges((), (), first.sync_token, full=False)
    assert kinds(legacy_without_ctag) == ["PROPFIND", "PROPFIND"]  # the collection, then its members' ETags

    owner.put("moves", "DTSTART:20300325T120000Z", "DTEND:20300325T130000Z")
    changed = await changes(legacy_without_ctag, owner, first.sync_token)
    assert changed.full
    assert changed.sync_token != first.sync_token
    assert times(changed) == {"moves.ics": (utc(25, 12), utc(25, 13), True)}


def test_the_strict_proxy_hides_what_a_server_without_sync_collection_lacks(legacy: DoubleServer, owner: Owner) -> None:
    # covers: SYNC-5 (the fallback's server: no DAV:sync-token, no sync-collection, the REPORT refused)
    with DAVClient(legacy.url + "/", username="alice", password=PASSWORD, enable_rfc6764=False) as client:
        asked = (
            '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/">'
            "<d:prop><d:sync-token/><cs:getctag/><d:supported-report-set/></d:prop></d:propfind>"
        )
        (result,) = client.propfind(legacy.url + owner.path, props=asked, depth=0).results
    assert "{DAV:}sync-token" not in result.properties
    assert result.properties["{http://calendarserver.org/ns/}getctag"]
    assert "{DAV:}sync-collection" not in result.properties["{DAV:}supported-report-set"]
    assert "{urn:ietf:params:xml:ns:caldav}calendar-multiget" in result.properties["{DAV:}supported-report-set"]
    refused = httpx.request(
        "REPORT", legacy.url + owner.path, content=b"<d:sync-collection xmlns:d='DAV:'/>", auth=("alice", PASSWORD)
    )
    assert (refused.status_code, b"supported-report" in refused.content) == (403, True)
