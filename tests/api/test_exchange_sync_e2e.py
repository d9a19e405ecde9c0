"""Exchange busy time kept by EWS sync, end to end: after the first round only SyncFolderItems is asked.

The server's real Exchange adapter talks EWS to the Exchange double over HTTPS (trusted through
``ca_bundle``); the double keeps a change log per calendar folder and answers SyncFolderItems as
Exchange does. The owner connects through GraphQL and makes changes in the double as in Outlook;
the background pass's round is run with ``busy_sync.refresh``. Slots are read over GraphQL as a
visitor's widget reads them; emails reach a real SMTP sink.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest

from server.settings import Settings
from tests.api.test_connect_forms import MAILBOX, PASSWORD, connect_exchange, exchange_form
from tests.api.test_known_time import at, create_page, day, slots_on
from tests.api.test_own_events import mail_to, sync_and_follow
from tests.doubles.exchange import ExchangeDouble
from tests.doubles.server import TLSFiles, make_tls_files
from tests.support.booking_helpers import NOW, Owner, book
from tests.support.clock import MovableClock
from tests.support.connect_helpers import booking_row, connections, owner_allowed_to_connect
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually
from tests.support.smtp_sink import SmtpSink

HALF_HOUR = timedelta(minutes=30)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("exchange-sync-tls"))


@pytest.fixture
def exchange(tls: TLSFiles) -> Iterator[ExchangeDouble]:
    with ExchangeDouble(version="EXCHANGE_2016", tls=tls) as double:
        double.add_mailbox(MAILBOX, PASSWORD)
        yield double


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
async def server(settings: Settings, tls: TLSFiles, sink: SmtpSink, clock: MovableClock) -> AsyncIterator[LiveServer]:
    configured = settings.model_copy(update={"ca_bundle": tls.ca_path, "smtp_url": sink.url})
    async with start_live_server(configured, clock=clock) as live:
        yield live


async def connected(server: LiveServer, exchange: ExchangeDouble, owner: Owner) -> str:
    """The owner's Exchange connection, made through GraphQL; its id."""
    made = await connect_exchange(server, owner, exchange_form(exchange))
    assert made["__typename"] == "CalendarConnection", made
    (connection,) = await connections(server, owner.token)
    return str(connection["id"])


async def refresh(server: LiveServer, connection_id: str) -> None:
    assert await server.services.busy_sync.refresh(uuid.UUID(connection_id))


async def booked_and_written(server: LiveServer, exchange: ExchangeDouble) -> tuple[str, str, str]:
    """A booking on Tuesday 10:00 whose item is in the Exchange calendar, and a background round
    since (the sync state knows the item): the booking's id, the item's id, the connection's id."""
    owner = await owner_allowed_to_connect(server)
    connection_id = await connected(server, exchange, owner)
    booked = await book(server, "2026-12-01T10:00:00+02:00", email="vera@example.com")
    row = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "written")
    assert row.calendar_event_id is not None
    await refresh(server, connection_id)
    return booked["id"], row.calendar_event_id, connection_id


async def test_a_meeting_added_in_exchange_blocks_the_page_after_one_cheap_sync_round(
    server: LiveServer, exchange: ExchangeDouble
) -> None:
    # covers: SYNC-5, BOOK-8
    owner = await owner_allowed_to_connect(server, with_page=False)
    connection_id = await connected(server, exchange, owner)
    owner.page_id = await create_page(server, owner)
    assert at(1, 14) in (await slots_on(server, 1)).starts

    meeting = exchange.add_busy(MAILBOX, day(1, 14), day(1, 15))  # the owner accepts a meeting in Outlook
    exchange.clear_requests()
    await refresh(server, connection_id)

    assert exchange.operation_counts() == {"SyncFolderItems": 1, "GetItem": 1}  # no free/busy, no view
    free = (await slots_on(server, 1)).starts
    assert {at(1, 14), at(1, 14, 30)}.isdisjoint(free)
    assert {at(1, 13, 30), at(1, 15)} <= set(free)

    exchange.clear_requests()
    await refresh(server, connection_id)  # nothing changed since
    assert exchange.operation_counts() == {"SyncFolderItems": 1}

    exchange.move_item(MAILBOX, meeting, day(1, 10), day(1, 11))
    await refresh(server, connection_id)
    free = (await slots_on(server, 1)).starts
    assert at(1, 14) in free  # moved away from here
    assert at(1, 10) not in free

    exchange.delete_item(MAILBOX, meeting)
    exchange.clear_requests()
    await refresh(server, connection_id)
    assert exchange.operation_counts() == {"SyncFolderItems": 1, "FindItem": 1}  # a deletion: the window again
    assert at(1, 10) in (await slots_on(server, 1)).starts


async def test_a_forgotten_sync_state_means_one_full_round_and_nothing_lost(
    server: LiveServer, exchange: ExchangeDouble
) -> None:
    # covers: SYNC-5
    owner = await owner_allowed_to_connect(server)
    exchange.add_busy(MAILBOX, day(1, 10), day(1, 11))
    connection_id = await connected(server, exchange, owner)

    exchange.forget_sync_states()
    exchange.add_busy(MAILBOX, day(1, 14), day(1, 15))
    exchange.clear_requests()
    await refresh(server, connection_id)

    # refused, then a full round (its items' attendees read with GetItem)
    assert exchange.operation_counts() == {"SyncFolderItems": 2, "FindItem": 1, "GetItem": 1}
    free = (await slots_on(server, 1)).starts
    assert not {at(1, 10), at(1, 14)} & set(free)
    assert at(1, 12) in free


async def test_a_booking_moved_by_the_owner_in_exchange_moves_with_it(
    server: LiveServer, exchange: ExchangeDouble, sink: SmtpSink
) -> None:
    # covers: SYNC-6, BOOK-5
    booking_id, item_id, connection_id = await booked_and_written(server, exchange)

    exchange.move_item(MAILBOX, item_id, day(1, 13), day(1, 13) + HALF_HOUR)  # in Outlook
    exchange.clear_requests()
    await sync_and_follow(server, connection_id)

    assert exchange.operation_counts()["SyncFolderItems"] == 1
    assert "FindItem" not in exchange.operation_counts()  # one moved single item: no view of the window
    moved = await eventually(lambda: booking_row(server, booking_id), lambda b: b.start_at == day(1, 13), "moved")
    assert (moved.status, moved.end_at) == ("CONFIRMED", day(1, 13) + HALF_HOUR)
    await eventually(lambda: mail_to(sink, "vera@example.com", "Rescheduled:"), bool, "the invitee's email")
    assert "UpdateItem" not in exchange.operation_counts()  # the calendar already has it: nothing written back


async def test_a_booking_whose_event_the_owner_deleted_in_exchange_is_cancelled(
    server: LiveServer, exchange: ExchangeDouble, sink: SmtpSink
) -> None:
    # covers: SYNC-6, BOOK-5
    booking_id, item_id, connection_id = await booked_and_written(server, exchange)

    exchange.delete_item(MAILBOX, item_id)  # the owner deletes it in Outlook
    exchange.clear_requests()
    await sync_and_follow(server, connection_id)
    assert exchange.operation_counts() == {"SyncFolderItems": 1, "FindItem": 1}  # a deletion: the window again

    cancelled = await eventually(
        lambda: booking_row(server, booking_id), lambda b: b.status == "CANCELLED", "cancelled"
    )
    assert cancelled.calendar_write == "NONE"
    await eventually(lambda: mail_to(sink, "vera@example.com", "Cancelled:"), bool, "the invitee's email")
    assert "DeleteItem" not in exchange.operation_counts()  # already gone: nothing to delete
    assert at(1, 10) in (await slots_on(server, 1)).starts  # and its time is free again


async def test_a_booking_whose_event_was_deleted_before_any_round_saw_it_is_cancelled(
    server: LiveServer, exchange: ExchangeDouble, sink: SmtpSink
) -> None:
    # covers: SYNC-6, BOOK-5
    owner = await owner_allowed_to_connect(server)
    connection_id = await connected(server, exchange, owner)
    booked = await book(server, "2026-12-01T10:00:00+02:00", email="vera@example.com")
    row = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "written")
    assert row.calendar_event_id is not None
    exchange.delete_item(MAILBOX, row.calendar_event_id)  # made and gone between two rounds
    exchange.clear_requests()
    await sync_and_follow(server, connection_id)

    # Exchange says nothing of an item it never reported: the unseen event asks for a full round.
    assert exchange.operation_counts() == {"SyncFolderItems": 2, "FindItem": 1}
    await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.status == "CANCELLED", "cancelled")
    await eventually(lambda: mail_to(sink, "vera@example.com", "Cancelled:"), bool, "the invitee's email")


async def test_once_a_round_has_seen_the_bookings_event_idle_rounds_stay_cheap(
    server: LiveServer, exchange: ExchangeDouble
) -> None:
    # covers: SYNC-5, SYNC-6
    _, _, connection_id = await booked_and_written(server, exchange)  # one round saw the new item
    for _ in range(2):
        exchange.clear_requests()
        await refresh(server, connection_id)
        assert exchange.operation_counts() == {"SyncFolderItems": 1}


async def test_an_exchange_server_refusing_push_is_asked_what_changed_every_minute(
    server: LiveServer, exchange: ExchangeDouble, clock: MovableClock
) -> None:
    # covers: SYNC-5
    exchange.max_push_subscriptions = 0  # a throttling policy allows this mailbox no subscription
    owner = await owner_allowed_to_connect(server)
    connection_id = uuid.UUID(await connected(server, exchange, owner))  # synced at NOW
    assert exchange.push_subscriptions() == []
    clock.now = NOW + timedelta(seconds=40)
    assert connection_id not in await server.services.busy_sync.claim_due()
    clock.now = NOW + timedelta(minutes=1, seconds=5)  # not pushed: a short poll instead
    assert connection_id in await server.services.busy_sync.claim_due()
    assert await server.services.busy_sync.refresh(connection_id)  # the round gives its lease back
    clock.now = NOW + timedelta(minutes=2, seconds=11)
    assert connection_id in await server.services.busy_sync.claim_due()
