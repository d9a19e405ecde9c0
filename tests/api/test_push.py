"""Google pushes its changes: a watch channel per calendar, notifications checked, one sync each.

The server's webhook address is its own, so the Google double posts its notifications (no body,
Google's headers) to the server's real ``/webhooks/google`` over loopback, and widgets watch
slots over a real WebSocket.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import delete
from sqlmodel import col

from db.models import PushChannel
from server.settings import Settings
from tests.api.test_known_time import ACCOUNT, day
from tests.doubles.google import GoogleDouble, google_error
from tests.support.booking_helpers import NOW
from tests.support.clock import MovableClock
from tests.support.connect_helpers import (
    DISCONNECT,
    GOOGLE_TEAM,
    SET_INTEGRATED,
    connect_google,
    connected_with_team_integrated,
    connections,
    google_with_team,
    owner_allowed_to_connect,
    with_google,
)
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually
from tests.support.ws_client import Watcher, ws_session

WINDOW = {"slug": "intro", "start": "2026-12-01T00:00:00+02:00", "end": "2026-12-02T00:00:00+02:00"}


@pytest.fixture
def google() -> Iterator[GoogleDouble]:
    with google_with_team() as double:
        yield double


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
async def server(settings: Settings, google: GoogleDouble, clock: MovableClock) -> AsyncIterator[LiveServer]:
    async with start_live_server(with_google(settings, google), clock=clock, own_webhook_url=True) as live:
        yield live


def starts(message: dict[str, Any] | BaseException) -> list[str]:
    assert isinstance(message, dict), message
    return [slot["start"] for slot in message["slotsChanged"]["slots"]]


async def metric(server: LiveServer, name: str, label: str | None = None) -> float:
    wanted = f"{name}{{{label}}}" if label else name
    for line in (await server.http.get("/metrics")).text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def delivered(google: GoogleDouble, channel_id: str, state: str) -> list[Any]:
    """The double's notifications of that state on that channel, once our webhook answered one
    (polled without blocking the event loop the server runs on)."""
    return await eventually(
        lambda: [
            sent
            for sent in google.notifications_sent
            if sent.channel_id == channel_id and sent.state == state and (sent.status or sent.error)
        ],
        bool,
        f"a {state} notification answered",
    )


def list_calls(google: GoogleDouble) -> list[dict[str, str]]:
    return [
        dict(parse_qsl(request.query)) for request in google.requests_to("GET ") if request.path.endswith("/events")
    ]


async def test_a_change_in_google_reaches_a_watching_widget_through_a_notification(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-5, SUB-1
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    (channel,) = google.channels()  # opened when the calendar was first synced
    assert (channel["calendarId"], channel["address"]) == (ACCOUNT, f"{server.base_url}/webhooks/google")
    await delivered(google, channel["id"], "sync")

    async with ws_session(server.ws_url, "graphql-transport-ws") as session:
        watcher = Watcher(session, {**WINDOW, "timezone": "Europe/Helsinki"})
        assert "2026-12-01T10:00:00+02:00" in starts(await watcher.next())
        google.clear_requests()
        google.add_event(ACCOUNT, day(1, 10), day(1, 11))  # the owner adds a meeting in Google

        (sent,) = await delivered(google, channel["id"], "exists")
        assert sent.status == 200
        after = starts(await watcher.next())
        assert "2026-12-01T10:00:00+02:00" not in after
        assert "2026-12-01T11:00:00+02:00" in after
        await watcher.close()
    assert [("syncToken" in call) for call in list_calls(google)] == [True]  # one incremental round
    assert not google.requests_to("freeBusy")
    assert await metric(server, "kokous_push_notifications_total", 'outcome="synced"') == 1.0, google.notifications_sent
    assert await metric(server, "kokous_push_notifications_total", 'outcome="ignored"') == 1.0


async def test_forged_and_unknown_notifications_change_nothing(server: LiveServer, google: GoogleDouble) -> None:
    # covers: SYNC-5, SEC-4
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    (channel,) = google.channels()
    google.clear_requests()
    headers = {
        "x-goog-channel-id": channel["id"],
        "x-goog-resource-id": channel["resourceId"],
        "x-goog-resource-state": "exists",
        "x-goog-message-number": "7",
    }

    forged = await server.http.post("/webhooks/google", headers={**headers, "x-goog-channel-token": "guessed"})
    no_token = await server.http.post("/webhooks/google", headers=headers)
    unknown = await server.http.post(
        "/webhooks/google",
        headers={**headers, "x-goog-channel-id": "6f1c0a52-0b7e-4c3e-9f57-3a3b2d7d6a10", "x-goog-channel-token": "x"},
    )
    garbled = await server.http.post("/webhooks/google", headers={**headers, "x-goog-channel-id": "not-a-uuid"})
    headless = await server.http.post("/webhooks/google")
    too_big = await server.http.post("/webhooks/google", headers=headers, content=b"x" * 10_000)

    statuses = [r.status_code for r in (forged, no_token, unknown, garbled, headless, too_big)]
    assert statuses == [403, 403, 404, 404, 400, 413]
    assert list_calls(google) == []  # nothing was synced
    assert await metric(server, "kokous_push_notifications_total", 'outcome="forged"') == 2.0
    assert await metric(server, "kokous_push_notifications_total", 'outcome="unknown"') == 2.0


async def test_a_channel_near_its_end_is_replaced_and_the_old_one_stopped(
    server: LiveServer, google: GoogleDouble, clock: MovableClock
) -> None:
    # covers: SYNC-5
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    (first,) = google.channels()
    (connection,) = await connections(server, owner.token)

    ends = datetime.fromtimestamp(int(first["expiration"]) / 1000, tz=UTC)
    clock.now = ends - timedelta(hours=12)  # the channel ends within a day
    assert await server.services.busy_sync.refresh(uuid.UUID(connection["id"]))

    (second,) = google.channels()
    assert second["id"] != first["id"]  # a new channel id, as Google requires
    assert google.requests_to("POST /calendar/v3/channels/stop")
    assert await metric(server, "kokous_push_channels_total", 'event="renewed"') == 1.0

    google.clear_requests()
    google.add_event(ACCOUNT, day(1, 13), day(1, 14))
    await eventually(lambda: list_calls(google), lambda calls: len(calls) >= 1, "a sync from the new channel")


async def test_disconnecting_stops_the_channels(server: LiveServer, google: GoogleDouble) -> None:
    # covers: SYNC-5, CAL-8
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    assert len(google.channels()) == 1
    (connection,) = await connections(server, owner.token)
    gone = await server.graphql(DISCONNECT, {"id": connection["id"]}, token=owner.token)
    assert gone["data"]["disconnectCalendarConnection"]["__typename"] == "Disconnected"
    assert google.channels() == []


async def test_a_burst_of_notifications_ends_in_one_more_sync_not_one_each(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-5
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    (channel,) = google.channels()
    await delivered(google, channel["id"], "sync")
    google.clear_requests()
    google.latency = 0.5  # each sync takes half a second, so the burst arrives while one runs
    headers = {
        "x-goog-channel-id": channel["id"],
        "x-goog-channel-token": channel["token"],
        "x-goog-resource-id": channel["resourceId"],
        "x-goog-resource-state": "exists",
    }
    answers = await asyncio.gather(
        *(server.http.post("/webhooks/google", headers={**headers, "x-goog-message-number": str(n)}) for n in range(6))
    )
    assert [answer.status_code for answer in answers] == [200] * 6
    busy_sync = server.services.busy_sync
    await eventually(lambda: busy_sync.pushed_syncs_running, lambda running: running == 0, "the syncs ended")
    assert len(list_calls(google)) == 2  # the first sync, then one more for everything after it
    assert await metric(server, "kokous_push_syncs_total") == 2.0


async def test_a_pushed_connection_is_polled_only_as_a_safety_net(
    server: LiveServer, google: GoogleDouble, clock: MovableClock
) -> None:
    # covers: SYNC-5
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    (connection,) = await connections(server, owner.token)
    busy_sync = server.services.busy_sync

    clock.now = NOW + timedelta(minutes=30)  # a polled connection would be due every five minutes
    assert uuid.UUID(connection["id"]) not in await busy_sync.claim_due()
    clock.now = NOW + timedelta(hours=7)
    assert uuid.UUID(connection["id"]) in await busy_sync.claim_due()


async def test_a_calendar_gone_inactive_does_not_bring_back_polling(
    server: LiveServer, google: GoogleDouble, clock: MovableClock
) -> None:
    # covers: SYNC-5, INACT-1
    connection, team = await connected_with_team_integrated(server, google)
    assert len(google.channels()) == 2  # each integrated calendar pushes
    google.unshare(ACCOUNT, GOOGLE_TEAM)
    assert not await server.services.busy_sync.refresh(uuid.UUID(connection["id"]))  # Team turns inactive
    async with server.services.db.transaction() as session:  # Team's channel ends; it is not renewed
        await session.exec(delete(PushChannel).where(col(PushChannel.calendar_id) == uuid.UUID(team["id"])))

    # Nobody books while it is inactive, and the primary calendar still pushes: a safety net only.
    clock.now = NOW + timedelta(minutes=30)
    assert uuid.UUID(connection["id"]) not in await server.services.busy_sync.claim_due()
    clock.now = NOW + timedelta(hours=7)
    assert uuid.UUID(connection["id"]) in await server.services.busy_sync.claim_due()


async def test_a_calendar_google_will_not_watch_is_polled_and_not_asked_again_for_a_day(
    server: LiveServer, google: GoogleDouble, clock: MovableClock
) -> None:
    # covers: SYNC-5
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    (connection,) = await connections(server, owner.token)
    connection_id = uuid.UUID(connection["id"])
    team = next(calendar for calendar in connection["calendars"] if calendar["name"] == "Team")
    refused = google_error(400, "pushNotSupportedForRequestedResource", "Push notifications are not supported.")
    google.fail(f"/calendars/{GOOGLE_TEAM}/events/watch", status=400, body=refused)
    google.clear_requests()
    on = await server.graphql(SET_INTEGRATED, {"id": team["id"], "on": True}, token=owner.token)
    assert on["data"]["setCalendarIntegrated"]["integrated"] is True
    assert [channel["calendarId"] for channel in google.channels()] == [ACCOUNT]
    assert len(google.requests_to("/events/watch")) == 1
    assert await metric(server, "kokous_push_channels_total", 'event="refused"') == 1.0

    clock.now = NOW + timedelta(minutes=2)  # Google's quota is per project: no short poll for it
    assert connection_id not in await server.services.busy_sync.claim_due()
    clock.now = NOW + timedelta(minutes=6)  # Team does not push: the connection is polled as usual
    assert connection_id in await server.services.busy_sync.claim_due()
    assert await server.services.busy_sync.refresh(connection_id)
    assert len(google.requests_to("/events/watch")) == 1  # not asked again the same day

    clock.now = NOW + timedelta(days=1, minutes=10)
    assert await server.services.busy_sync.refresh(connection_id)
    assert sorted(channel["calendarId"] for channel in google.channels()) == sorted([ACCOUNT, GOOGLE_TEAM])
