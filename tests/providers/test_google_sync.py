"""The Google adapter's incremental sync and push channels, through the real google libraries.

``list_changes`` and ``watch`` run against the Google double over loopback HTTPS, which speaks
``events.list`` with page and sync tokens (410 when Google forgot one) and ``events.watch`` /
``channels.stop``, posting notifications to a receiver on loopback as Google does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from providers.base import CalendarEvent, IncrementalSync
from providers.errors import SyncTokenExpired
from providers.google import GoogleCalendarClient, GoogleConfig
from tests.doubles.google import GoogleDouble
from tests.doubles.server import DoubleServer, TLSFiles, make_tls_files
from tests.providers.test_google import OWNER, REDIRECT_URI, connect

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 10:00 in Helsinki
WINDOW = (T0 - timedelta(days=1), T0 + timedelta(days=30))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("google-sync-tls"))


@pytest.fixture
def google(tls: TLSFiles) -> Iterator[GoogleDouble]:
    with GoogleDouble(tls=tls, events_page_size=2) as double:  # small pages: every round pages
        double.add_account(OWNER, time_zone="Europe/Helsinki")
        yield double


@pytest.fixture
async def client(google: GoogleDouble) -> GoogleCalendarClient:
    config = GoogleConfig(**google.config_for(REDIRECT_URI))
    return GoogleCalendarClient(config, await connect(google, config))


@pytest.fixture
def receiver() -> Iterator[DoubleServer]:
    """Our web hook's stand-in on loopback: answers 200 and records what Google posted."""

    async def hook(request: Request) -> Response:
        return Response(status_code=200)

    with DoubleServer(Starlette(routes=[Route("/webhooks/google", hook, methods=["POST"])])) as server:
        yield server


def by_id(events: tuple[CalendarEvent, ...]) -> dict[str, CalendarEvent]:
    return {event.event_id: event for event in events}


async def test_a_full_round_lists_the_window_page_by_page_with_what_blocks_time(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: SYNC-5
    assert isinstance(client, IncrementalSync)
    meeting = google.add_event(OWNER, T0, T0 + timedelta(hours=1))
    free = google.add_event(OWNER, T0 + timedelta(hours=2), T0 + timedelta(hours=3), transparency="transparent")
    declined = google.add_event(OWNER, T0 + timedelta(hours=4), T0 + timedelta(hours=5), declined=True)
    holiday = google.add_event(OWNER, date(2026, 3, 4), date(2026, 3, 5), all_day=True)
    google.add_event(OWNER, T0 + timedelta(days=60), T0 + timedelta(days=60, hours=1))  # outside the window

    changes = await client.list_changes(OWNER, sync_token=None, start=WINDOW[0], end=WINDOW[1])

    assert changes.full
    assert changes.sync_token
    assert changes.deleted == ()
    events = by_id(changes.changed)
    assert set(events) == {meeting, free, declined, holiday}
    assert (events[meeting].start, events[meeting].end, events[meeting].busy) == (T0, T0 + timedelta(hours=1), True)
    assert (events[free].busy, events[declined].busy) == (False, False)
    # An all-day event runs from midnight to midnight in the calendar's zone (Helsinki, UTC+2).
    assert (events[holiday].start, events[holiday].end) == (
        datetime(2026, 3, 3, 22, tzinfo=UTC),
        datetime(2026, 3, 4, 22, tzinfo=UTC),
    )
    assert len(google.requests_to("/events")) == 2  # four events in the window, in pages of two


async def test_an_incremental_round_gives_only_what_changed_since(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: SYNC-5
    kept = google.add_event(OWNER, T0, T0 + timedelta(hours=1))
    moved = google.add_event(OWNER, T0 + timedelta(hours=2), T0 + timedelta(hours=3))
    gone = google.add_event(OWNER, T0 + timedelta(hours=4), T0 + timedelta(hours=5))
    first = await client.list_changes(OWNER, sync_token=None, start=WINDOW[0], end=WINDOW[1])

    google.move_event(OWNER, moved, T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1))
    google.delete_event(OWNER, gone)
    added = google.add_event(OWNER, T0 + timedelta(days=2), T0 + timedelta(days=2, hours=1))
    second = await client.list_changes(OWNER, sync_token=first.sync_token, start=WINDOW[0], end=WINDOW[1])

    assert not second.full
    assert set(by_id(second.changed)) == {moved, added}  # the kept event is not sent again
    assert by_id(second.changed)[moved].start == T0 + timedelta(days=1)
    assert second.deleted == (gone,)
    assert kept not in by_id(second.changed)
    assert second.sync_token != first.sync_token
    third = await client.list_changes(OWNER, sync_token=second.sync_token, start=WINDOW[0], end=WINDOW[1])
    assert (third.changed, third.deleted) == ((), ())


async def test_a_token_google_forgot_asks_for_a_full_round(google: GoogleDouble, client: GoogleCalendarClient) -> None:
    # covers: SYNC-5
    google.add_event(OWNER, T0, T0 + timedelta(hours=1))
    first = await client.list_changes(OWNER, sync_token=None, start=WINDOW[0], end=WINDOW[1])
    google.invalidate_sync_tokens(OWNER)

    with pytest.raises(SyncTokenExpired):
        await client.list_changes(OWNER, sync_token=first.sync_token, start=WINDOW[0], end=WINDOW[1])
    again = await client.list_changes(OWNER, sync_token=None, start=WINDOW[0], end=WINDOW[1])
    assert again.full
    assert len(again.changed) == 1


async def test_a_watch_channel_posts_each_change_with_its_token_until_stopped(
    google: GoogleDouble, client: GoogleCalendarClient, receiver: DoubleServer
) -> None:
    # covers: SYNC-5
    address = f"{receiver.url}/webhooks/google"
    channel = await client.watch(
        OWNER, channel_id="kokous-channel-1", address=address, token="secret-token", ttl=timedelta(days=2)
    )
    assert (channel.channel_id, bool(channel.resource_id)) == ("kokous-channel-1", True)
    assert timedelta(days=1, hours=23) < channel.expires_at - datetime.now(UTC) <= timedelta(days=2)
    google.wait_for_notifications(1, channel_id="kokous-channel-1", state="sync")

    google.add_event(OWNER, T0, T0 + timedelta(hours=1))
    (sent,) = google.wait_for_notifications(1, channel_id="kokous-channel-1", state="exists")
    assert sent.status == 200
    posted = receiver.requests_to("POST /webhooks/google")[-1]
    assert posted.headers["x-goog-channel-token"] == "secret-token"
    assert posted.headers["x-goog-resource-id"] == channel.resource_id
    assert posted.body == b""

    await client.stop_watch(channel.channel_id, channel.resource_id)
    await client.stop_watch(channel.channel_id, channel.resource_id)  # already gone: not an error
    google.add_event(OWNER, T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1))
    google.settle_notifications()
    assert len(google.notifications_sent) == 2  # the sync message and the one change before stopping
