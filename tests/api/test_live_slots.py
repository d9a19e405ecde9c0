"""Live slots: a widget sees a slot vanish when booked and return when cancelled (SUB-1, SUB-3)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gql import GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError

from server.settings import Settings
from tests.support.booking_helpers import (
    BOOK_RESULT,
    REQUEST,
    book,
    booking_input,
    booking_server,
    change,
    owner_with_page,
)
from tests.support.live_server import LiveServer, start_live_server
from tests.support.ws_client import PROTOCOLS, Watcher, ws_session

WINDOW = {"slug": "intro", "start": "2026-12-01T00:00:00+02:00", "end": "2026-12-02T00:00:00+02:00"}
TEN = "2026-12-01T10:00:00+02:00"
BOOKING_CREATED = gql("subscription { bookingCreated { __typename ... on BookingFields { id start status } } }")


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    async for live in booking_server(settings):
        yield live


def starts(message: dict[str, Any] | BaseException) -> list[str]:
    assert isinstance(message, dict), message
    return [slot["start"] for slot in message["slotsChanged"]["slots"]]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_slot_vanishes_when_booked_and_returns_when_cancelled(server: LiveServer, protocol: str) -> None:
    # covers: SUB-1, BOOK-5
    owner = await owner_with_page(server)
    async with ws_session(server.ws_url, protocol) as session:
        watchers = [Watcher(session, {**WINDOW, "timezone": zone}) for zone in ("Europe/Helsinki", "Asia/Kolkata")]
        first = [starts(await watcher.next()) for watcher in watchers]
        assert TEN in first[0]
        assert "2026-12-01T13:30:00+05:30" in first[1]  # the same instant, shown in Kolkata

        booked = await book(server, TEN)
        assert booked["__typename"] == "Booking"
        after_booking = [starts(await watcher.next()) for watcher in watchers]
        assert TEN not in after_booking[0]
        assert "2026-12-01T13:30:00+05:30" not in after_booking[1]
        assert len(after_booking[0]) == len(first[0]) - 1

        cancelled = await change(server, "cancelBooking", owner.token, id=booked["id"])
        assert cancelled["status"] == "CANCELLED"
        assert [starts(await watcher.next()) for watcher in watchers] == first
        for watcher in watchers:
            await watcher.close()


async def test_watchers_of_one_window_share_one_feed(server: LiveServer) -> None:
    # covers: SUB-1
    await owner_with_page(server)
    live = server.services.live
    async with ws_session(server.ws_url, "graphql-transport-ws") as session:
        watchers = [Watcher(session, {**WINDOW, "timezone": "Europe/Helsinki"}) for _ in range(5)]
        other = Watcher(session, {**WINDOW, "timezone": "Europe/Helsinki", "duration": 60})
        for watcher in [*watchers, other]:
            await watcher.next()
        assert len(live._feeds) == 2  # five watchers share one feed; another duration has its own
        schema = server.app.state.graphql.schema
        assert len(schema.shared_streams) == 2  # ... and one GraphQL execution per change
        await book(server, TEN)
        for watcher in [*watchers, other]:
            assert TEN not in starts(await watcher.next())
        for watcher in [*watchers, other]:
            await watcher.close()


async def test_owner_hears_of_new_bookings_and_requests_only_their_own(server: LiveServer) -> None:
    # covers: SUB-3
    owner = await owner_with_page(server)
    other = await owner_with_page(server, slug="other-page")
    async with (
        ws_session(server.ws_url, "graphql-transport-ws", token=owner.token) as mine,
        ws_session(server.ws_url, "graphql-transport-ws", token=other.token) as theirs,
    ):
        hub = server.services.bus.hub
        before = hub.stats.subscribers
        my_next = asyncio.ensure_future(mine.subscribe(GraphQLRequest(BOOKING_CREATED)).__anext__())
        their_next = asyncio.ensure_future(theirs.subscribe(GraphQLRequest(BOOKING_CREATED)).__anext__())
        # The protocol does not acknowledge a subscription: wait until both are on the hub.
        deadline = time.monotonic() + 5
        while hub.stats.subscribers < before + 2:
            assert time.monotonic() < deadline, hub.stats
            await asyncio.sleep(0.01)
        booked = await book(server, TEN)
        created = await asyncio.wait_for(my_next, 5)
        assert created["bookingCreated"] == {
            "__typename": "Booking",
            "id": booked["id"],
            "start": TEN,
            "status": "CONFIRMED",
        }
        await asyncio.sleep(0.2)  # a message for the other owner would have arrived by now
        assert not their_next.done()
        their_next.cancel()


async def test_booking_created_needs_a_token(server: LiveServer) -> None:
    # covers: SUB-3
    async with ws_session(server.ws_url, "graphql-transport-ws") as anonymous:
        with pytest.raises(TransportQueryError, match="Not authenticated"):
            async for _ in anonymous.subscribe(GraphQLRequest(BOOKING_CREATED)):
                pass


class RunningClock:
    """Real time, as if it had been ``start`` when the clock was made; ``set`` moves it."""

    def __init__(self, start: datetime) -> None:
        self._offset = start - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def set(self, moment: datetime) -> None:
        """Now it is ``moment``, and time runs on from there."""
        self._offset = moment - datetime.now(UTC)


async def test_a_slot_inside_the_minimum_notice_leaves_live_widgets(settings: Settings) -> None:
    # covers: SUB-1, PAGE-2
    clock = RunningClock(datetime(2026, 12, 1, 5, 0, tzinfo=UTC))
    async with start_live_server(settings, clock=clock) as server:
        await owner_with_page(server, minimumNoticeMinutes=60)
        # 0.3 s on, 09:00 Helsinki is less than an hour away (set once the server is up, however long that took).
        clock.set(datetime(2026, 12, 1, 6, 0, tzinfo=UTC) - timedelta(seconds=0.3))
        async with ws_session(server.ws_url, "graphql-transport-ws") as session:
            watcher = Watcher(session, {**WINDOW, "timezone": "Europe/Helsinki"})
            first = starts(await watcher.next())
            assert first[0] == "2026-12-01T09:00:00+02:00"
            assert starts(await watcher.next()) == first[1:]  # pushed by the passing of time alone
            await watcher.close()


async def test_an_expiring_request_gives_its_time_back_to_live_widgets(settings: Settings) -> None:
    # covers: SUB-1, SEC-2
    # A pending request holds its time for KOKOUS_REQUEST_TTL_DAYS; when that passes, widgets
    # watching the page get the time back without anyone touching the page.
    clock = RunningClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # a week and a day before the window
    async with start_live_server(settings, clock=clock) as server:
        await owner_with_page(server, online=False, durations=[30])
        answer_time = clock()
        answer = await server.graphql(REQUEST + BOOK_RESULT, {"input": booking_input(TEN)})
        assert answer["data"]["requestMeeting"]["__typename"] == "BookingRequest", answer
        clock.set(answer_time + timedelta(days=settings.request_ttl_days) - timedelta(seconds=0.5))
        async with ws_session(server.ws_url, "graphql-transport-ws") as session:
            watcher = Watcher(session, {**WINDOW, "timezone": "Europe/Helsinki"})
            held = starts(await watcher.next())
            assert held
            assert TEN not in held  # the request still holds it
            freed = starts(await watcher.next())  # pushed by the passing of time alone
            assert freed == sorted([*held, TEN])
            await watcher.close()
