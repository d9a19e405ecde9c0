"""Exchange calendars that push: EWS push subscriptions posting SOAP to the server's webhook.

The server's real Exchange adapter subscribes at the EWS double (HTTPS, trusted through
``ca_bundle``) with the address of the server's real ``/webhooks/exchange``; the double posts its
``SendNotification`` messages there from a background thread, as Exchange does, and reads the
``SubscriptionStatus`` the webhook answers. Widgets watch slots over a real WebSocket.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select

from db.models import PushChannel
from providers.exchange import PUSH_HEARTBEAT
from server.settings import Settings
from tests.api.test_connect_forms import MAILBOX, PASSWORD, connect_exchange, exchange_form
from tests.api.test_push import WINDOW, metric, starts
from tests.doubles.exchange import ExchangeDouble, PushNotification
from tests.doubles.server import TLSFiles, make_tls_files
from tests.support.booking_helpers import NOW
from tests.support.clock import MovableClock
from tests.support.connect_helpers import connections, owner_allowed_to_connect
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually
from tests.support.ws_client import Watcher, ws_session

HOOK = "/webhooks/exchange"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("exchange-push-tls"))


@pytest.fixture
def exchange(tls: TLSFiles) -> Iterator[ExchangeDouble]:
    with ExchangeDouble(version="EXCHANGE_2016", tls=tls) as double:
        double.add_mailbox(MAILBOX, PASSWORD)
        yield double


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
async def server(settings: Settings, tls: TLSFiles, clock: MovableClock) -> AsyncIterator[LiveServer]:
    configured = settings.model_copy(update={"ca_bundle": tls.ca_path})
    async with start_live_server(configured, clock=clock, own_webhook_url=True) as live:
        yield live


async def connected(server: LiveServer, exchange: ExchangeDouble) -> str:
    owner = await owner_allowed_to_connect(server)
    made = await connect_exchange(server, owner, exchange_form(exchange))
    assert made["__typename"] == "CalendarConnection", made
    (connection,) = await connections(server, owner.token)
    return str(connection["id"])


async def answered(exchange: ExchangeDouble, count: int = 1) -> list[PushNotification]:
    """Notifications the double posted and our webhook answered (polled off the event loop)."""
    return await eventually(
        lambda: [sent for sent in exchange.push_notifications_sent if sent.status or sent.error],
        lambda sent: len(sent) >= count,
        f"{count} notification(s) answered",
    )


def tuesday(hour: int) -> datetime:
    """Tuesday 1 December 2026 at this Helsinki hour, as aware UTC."""
    return datetime(2026, 12, 1, hour - 2, tzinfo=UTC)


async def test_a_change_in_exchange_reaches_a_watching_widget_through_a_push_notification(
    server: LiveServer, exchange: ExchangeDouble
) -> None:
    # covers: SYNC-5, SUB-1
    await connected(server, exchange)
    (subscription,) = exchange.push_subscriptions()  # opened at the calendar's first sync
    address = urlsplit(subscription.url)
    assert f"{address.scheme}://{address.netloc}{address.path}" == f"{server.base_url}{HOOK}"
    query = parse_qs(address.query)
    async with server.services.db.session() as session:
        (channel,) = (await session.exec(select(PushChannel))).all()
    assert (query["channel"], channel.resource_id) == ([str(channel.id)], subscription.subscription_id)

    async with ws_session(server.ws_url, "graphql-transport-ws") as session:
        watcher = Watcher(session, {**WINDOW, "timezone": "Europe/Helsinki"})
        assert "2026-12-01T10:00:00+02:00" in starts(await watcher.next())
        exchange.clear_requests()
        exchange.add_busy(MAILBOX, tuesday(10), tuesday(11))  # the owner adds a meeting in Outlook

        (sent,) = await answered(exchange)
        assert (sent.status, sent.subscription_status, sent.events) == (200, "OK", ("CreatedEvent",))
        after = starts(await watcher.next())
        assert "2026-12-01T10:00:00+02:00" not in after
        assert "2026-12-01T11:00:00+02:00" in after
        await watcher.close()
    assert exchange.operation_counts() == {"SyncFolderItems": 1, "GetItem": 1}  # one incremental round
    assert await metric(server, "kokous_push_notifications_total", 'outcome="synced"') == 1.0


async def test_status_pings_keep_the_subscription_alive_and_a_silent_one_is_replaced(
    server: LiveServer, exchange: ExchangeDouble, clock: MovableClock
) -> None:
    # covers: SYNC-5
    connection_id = uuid.UUID(await connected(server, exchange))
    (first,) = exchange.push_subscriptions()
    clock.now = NOW + timedelta(minutes=20)
    exchange.clear_requests()
    assert exchange.send_status(first.subscription_id)  # nothing changed: Exchange says it is still there
    (ping,) = await answered(exchange)
    assert (ping.events, ping.subscription_status) == (("StatusEvent",), "OK")
    assert exchange.operation_counts() == {}  # a status message syncs nothing
    async with server.services.db.session() as session:
        (channel,) = (await session.exec(select(PushChannel))).all()
    assert channel.expires_at == clock.now + PUSH_HEARTBEAT  # heard from: alive for longer

    clock.now = channel.expires_at + timedelta(minutes=1)  # then silence: the subscription is gone
    assert connection_id in await server.services.busy_sync.claim_due()  # polled meanwhile
    assert await server.services.busy_sync.refresh(connection_id)
    subscriptions = exchange.push_subscriptions()
    assert len(subscriptions) == 2  # a new one (EWS cannot end the old one by request)
    assert exchange.send_status(first.subscription_id)  # the old one speaks once more...
    (_, old_ping) = await answered(exchange, count=2)
    assert old_ping.subscription_status == "Unsubscribe"  # ...and is told to stop
    assert [s.subscription_id for s in exchange.push_subscriptions()] == [subscriptions[1].subscription_id]


async def test_forged_unknown_and_malformed_exchange_notifications_change_nothing(
    server: LiveServer, exchange: ExchangeDouble
) -> None:
    # covers: SYNC-5, SEC-4
    await connected(server, exchange)
    (subscription,) = exchange.push_subscriptions()
    query = parse_qs(urlsplit(subscription.url).query)
    exchange.add_busy(MAILBOX, tuesday(10), tuesday(11))
    (genuine,) = await answered(exchange)
    body = genuine.body
    await eventually(lambda: server.services.busy_sync.pushed_syncs_running == 0, bool, "the sync ended")
    exchange.clear_requests()

    channel = query["channel"][0]
    forged = await server.http.post(f"{HOOK}?channel={channel}&token=guessed", content=body)
    no_token = await server.http.post(f"{HOOK}?channel={channel}", content=body)
    unknown = await server.http.post(f"{HOOK}?channel={uuid.uuid4()}&token=x", content=body)
    garbled = await server.http.post(f"{HOOK}?channel={channel}&token=x", content=b"<not soap")
    nameless = await server.http.post(HOOK, content=body)
    too_big = await server.http.post(f"{HOOK}?channel={channel}", content=b"x" * 300_000)

    statuses = [r.status_code for r in (forged, no_token, unknown, garbled, nameless, too_big)]
    assert statuses == [403, 403, 200, 400, 400, 413]
    assert b"Unsubscribe" in unknown.content  # not ours: Exchange is asked to stop sending
    assert exchange.operation_counts() == {}  # nothing was synced
    assert await metric(server, "kokous_push_notifications_total", 'outcome="forged"') == 2.0
    assert await metric(server, "kokous_push_notifications_total", 'outcome="unknown"') == 1.0
