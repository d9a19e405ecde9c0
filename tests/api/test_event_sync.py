"""Google busy time kept from the calendar's events: after the first round only changes are read.

The server's real Google adapter talks to the Google double, which speaks ``events.list`` with
sync tokens as Google does (changes only, deleted events as ``cancelled``, 410 when it forgot a
token). Slots are read over HTTP, as a visitor's widget reads them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from urllib.parse import parse_qsl

import pytest
from sqlmodel import col, select

from db.models import BusyInterval, Calendar, CalendarConnection
from providers.base import IncrementalSync
from scheduling.calendars.event_sync import sync_calendar
from server.settings import Settings
from tests.api.test_known_time import ACCOUNT, TEAM, at, create_page, day, slots_on
from tests.doubles.google import GoogleDouble
from tests.support.booking_helpers import NOW
from tests.support.connect_helpers import (
    connect_google,
    connected_with_team_integrated,
    connections,
    google_with_team,
    owner_allowed_to_connect,
    with_google,
)
from tests.support.live_server import LiveServer, start_live_server

EVENTS = "/events"


@pytest.fixture
def google() -> Iterator[GoogleDouble]:
    with google_with_team() as double:
        yield double


@pytest.fixture
async def server(settings: Settings, google: GoogleDouble) -> AsyncIterator[LiveServer]:
    async with start_live_server(with_google(settings, google), clock=lambda: NOW) as live:
        yield live


def list_calls(google: GoogleDouble) -> list[dict[str, str]]:
    """The query of every events.list call the server made, in order."""
    return [dict(parse_qsl(request.query)) for request in google.requests_to("GET ") if request.path.endswith(EVENTS)]


async def refresh(server: LiveServer, connection_id: str) -> bool:
    return await server.services.busy_sync.refresh(uuid.UUID(connection_id))


async def busy_rows(server: LiveServer, calendar_id: str) -> list[tuple[str | None, str]]:
    async with server.services.db.session() as session:
        rows = await session.exec(select(BusyInterval).where(col(BusyInterval.calendar_id) == uuid.UUID(calendar_id)))
        return sorted((row.external_id, row.start_at.isoformat()) for row in rows.all())


async def test_after_the_first_round_only_changes_are_read_and_applied(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-5, BOOK-8, BOOK-1
    owner = await owner_allowed_to_connect(server)
    lunch = google.add_event(ACCOUNT, day(1, 11), day(1, 12))
    await connect_google(server, google, owner, ACCOUNT)
    (connection,) = await connections(server, owner.token)
    primary = next(calendar for calendar in connection["calendars"] if calendar["isPrimary"])
    (first,) = list_calls(google)
    assert ("timeMin" in first, "syncToken" in first) == (True, False)  # a full round with a window
    assert at(1, 11) not in (await slots_on(server, 1)).starts

    google.add_event(ACCOUNT, day(1, 14), day(1, 15))
    google.add_event(ACCOUNT, day(1, 15), day(1, 16), transparency="transparent")  # marked free
    google.add_event(ACCOUNT, day(1, 16), day(1, 17), declined=True)  # declined by the owner
    google.move_event(ACCOUNT, lunch, day(1, 12), day(1, 13))
    google.clear_requests()
    assert await refresh(server, connection["id"])

    (second,) = list_calls(google)
    assert ("syncToken" in second, "timeMin" in second) == (True, False)  # only what changed
    assert not google.requests_to("freeBusy")
    free = (await slots_on(server, 1)).starts
    assert at(1, 11) in free  # the meeting moved away from here
    assert {at(1, 12), at(1, 14)}.isdisjoint(free)
    assert {at(1, 15), at(1, 16)} <= set(free)  # free and declined events do not block
    rows = await busy_rows(server, primary["id"])
    assert [external_id for external_id, _ in rows].count(lunch) == 1  # moved, not copied

    google.delete_event(ACCOUNT, lunch)
    google.clear_requests()
    assert await refresh(server, connection["id"])
    assert at(1, 12) in (await slots_on(server, 1)).starts
    google.clear_requests()
    assert await refresh(server, connection["id"])  # nothing changed: one cheap call
    assert len(list_calls(google)) == 1


async def test_a_forgotten_sync_token_means_one_full_round_without_duplicates(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-5
    owner = await owner_allowed_to_connect(server)
    for hour in (10, 12, 14):
        google.add_event(ACCOUNT, day(1, hour), day(1, hour + 1))
    await connect_google(server, google, owner, ACCOUNT)
    (connection,) = await connections(server, owner.token)
    primary = next(calendar for calendar in connection["calendars"] if calendar["isPrimary"])
    before = await busy_rows(server, primary["id"])
    assert len(before) == 3

    google.invalidate_sync_tokens(ACCOUNT)
    google.add_event(ACCOUNT, day(1, 16), day(1, 17))
    google.clear_requests()
    assert await refresh(server, connection["id"])

    calls = list_calls(google)
    assert ["syncToken" in call for call in calls] == [True, False]  # refused (410), then one full round
    after = await busy_rows(server, primary["id"])
    assert len(after) == 4  # nothing twice, nothing lost
    assert set(before) < set(after)
    free = (await slots_on(server, 1)).starts
    assert not {at(1, 10), at(1, 12), at(1, 14), at(1, 16)} & set(free)


async def test_a_calendar_unshared_between_rounds_turns_inactive_alone(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-5, INACT-1
    connection, _team = await connected_with_team_integrated(server, google)

    google.unshare(ACCOUNT, TEAM)
    assert not await refresh(server, connection["id"])

    async with server.services.db.session() as session:
        states = {
            row.name: (row.status, row.inactive_reason)
            for row in (
                await session.exec(select(Calendar).where(Calendar.connection_id == uuid.UUID(connection["id"])))
            ).all()
        }
    assert states == {"Team": ("INACTIVE", "notFound"), ACCOUNT: ("ACTIVE", None)}


async def test_an_older_round_finishing_last_does_not_undo_a_newer_one(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-5
    owner = await owner_allowed_to_connect(server)
    meeting = google.add_event(ACCOUNT, day(1, 10), day(1, 11))
    await connect_google(server, google, owner, ACCOUNT)
    (connection,) = await connections(server, owner.token)
    primary = next(calendar for calendar in connection["calendars"] if calendar["isPrimary"])
    async with server.services.db.session() as session:
        as_seen_by_the_older_round = await session.get(Calendar, uuid.UUID(primary["id"]))
    assert as_seen_by_the_older_round is not None

    google.move_event(ACCOUNT, meeting, day(1, 14), day(1, 15))
    assert await refresh(server, connection["id"])  # the newer round stores the move first
    async with server.services.db.session() as session:
        stored = await session.get(Calendar, uuid.UUID(primary["id"]))
    assert stored is not None
    newest_token = stored.sync_token

    async with server.services.db.session() as session:
        row = await session.get(CalendarConnection, uuid.UUID(connection["id"]))
    assert row is not None
    async with server.services.busy_sync.access.client(row) as client:  # the older round, from the older token
        assert isinstance(client, IncrementalSync)
        older = await sync_calendar(
            server.services.db,
            client,
            as_seen_by_the_older_round,
            start=NOW - timedelta(days=1),
            end=NOW + timedelta(days=60),
            now=NOW,
        )
    assert older.changed is False  # dropped: its token was no longer the calendar's
    async with server.services.db.session() as session:
        again = await session.get(Calendar, uuid.UUID(primary["id"]))
    assert again is not None
    assert again.sync_token == newest_token
    assert [start for _, start in await busy_rows(server, primary["id"])] == [day(1, 14).isoformat()]


async def test_visitors_waiting_on_the_same_unfetched_time_share_one_fetch(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: BOOK-8, SYNC-5
    owner = await owner_allowed_to_connect(server, with_page=False)
    google.add_event(ACCOUNT, day(100, 10), day(100, 11))
    await connect_google(server, google, owner, ACCOUNT)
    owner.page_id = await create_page(server, owner, bookingHorizonDays=120)
    google.clear_requests()
    google.latency = 0.3  # the fetch takes a while: every visitor below arrives while it runs

    answers = await asyncio.gather(*(slots_on(server, 100) for _ in range(6)))

    # One free/busy fetch for six visitors, the quickest answer (Google takes at most 90 days a
    # call, so the window comes in consecutive parts, each asked once); no event was listed.
    asked = [json.loads(r.text) for r in google.requests_to("POST /calendar/v3/freeBusy")]
    windows = sorted((window["timeMin"], window["timeMax"]) for window in asked)
    assert len(windows) == 2
    assert windows[0][1] == windows[1][0]
    assert list_calls(google) == []
    assert all(at(100, 10) not in answer.starts and at(100, 9) in answer.starts for answer in answers)
    # The connection is due at once for the event sync, which lists every event of the new window.
    (connection,) = await connections(server, owner.token)
    async with server.services.db.session() as session:
        row = await session.get(CalendarConnection, uuid.UUID(connection["id"]))
    assert row is not None
    assert row.checked_at is None
    assert await server.services.busy_sync.refresh(uuid.UUID(connection["id"]))
    assert len([call for call in list_calls(google) if "timeMin" in call]) == 1


async def test_one_calendar_failing_leaves_the_other_calendars_round_standing(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-5, BOOK-8
    connection, _team = await connected_with_team_integrated(server, google)

    google.add_event(ACCOUNT, day(1, 10), day(1, 11))
    google.fail(f"GET /calendar/v3/calendars/{TEAM}/events", status=500, times=3)
    assert not await refresh(server, connection["id"])  # not every calendar synced

    async with server.services.db.session() as session:
        rows = (await session.exec(select(Calendar).where(Calendar.connection_id == uuid.UUID(connection["id"])))).all()
    failing = {row.name: row.busy_failed_at is not None for row in rows if row.integrated}
    assert failing == {"Team": True, ACCOUNT: False}
    assert {row.status for row in rows} == {"ACTIVE"}
    assert at(1, 10) not in (await slots_on(server, 1)).starts  # the primary's change arrived
