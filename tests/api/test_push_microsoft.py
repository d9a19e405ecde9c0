"""Microsoft 365 calendars that push: Graph subscriptions and calendarView delta, end to end.

The server's real Microsoft adapter talks to the Microsoft double over HTTPS; the double
validates the server's real ``/webhooks/microsoft`` before it agrees to a subscription, and
posts change and lifecycle notifications there over loopback, as Graph does. Widgets watch
slots over a real WebSocket; emails reach a real SMTP sink.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlmodel import col, select

from db.models import Booking, BusyInterval, OutboxMessage, PushChannel
from scheduling import outbox
from scheduling.calendars.channels import RENEW_BEFORE
from server.settings import Settings
from tests.api.test_connect_microsoft import ACCOUNT, DEFAULT, TEAM
from tests.api.test_push import WINDOW, metric, starts
from tests.doubles.microsoft import GraphNotification, MicrosoftDouble
from tests.doubles.server import TLSFiles, make_tls_files
from tests.support.booking_helpers import NOW, Owner, book
from tests.support.clock import MovableClock
from tests.support.connect_helpers import (
    START,
    booking_row,
    confirmed,
    connections,
    owner_allowed_to_connect,
    with_microsoft,
)
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually
from tests.support.smtp_sink import SmtpSink
from tests.support.ws_client import Watcher, ws_session

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

DELTA = "/calendarView/delta"
HALF_HOUR = timedelta(minutes=30)


def tuesday(hour: int, minute: int = 0) -> datetime:
    """Tuesday 1 December 2026 at this Helsinki hour, as aware UTC."""
    return datetime(2026, 12, 1, hour - 2, minute, tzinfo=UTC)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("microsoft-push-tls"))


@pytest.fixture
def microsoft(tls: TLSFiles) -> Iterator[MicrosoftDouble]:
    with MicrosoftDouble(tls) as double:
        double.add_account(ACCOUNT)
        double.add_calendar(ACCOUNT, DEFAULT, "Calendar", is_default=True)
        double.add_calendar(ACCOUNT, TEAM, "Team")
        yield double


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
async def server(
    settings: Settings, microsoft: MicrosoftDouble, tls: TLSFiles, clock: MovableClock, sink: SmtpSink
) -> AsyncIterator[LiveServer]:
    configured = with_microsoft(settings, microsoft, tls).model_copy(update={"smtp_url": sink.url})
    async with start_live_server(configured, clock=clock, own_webhook_url=True) as live:
        yield live


async def connected(server: LiveServer, microsoft: MicrosoftDouble) -> tuple[Owner, str]:
    """The owner connects Microsoft 365 (a page exists already); the connection's id."""
    owner = await owner_allowed_to_connect(server)
    started = await server.graphql(START, {"provider": "MICROSOFT"}, token=owner.token)
    redirect = urlsplit(microsoft.consent(started["data"]["startCalendarConnection"]["url"], ACCOUNT))
    response = await server.http.get(f"{redirect.path}?{redirect.query}")
    assert response.status_code == 302, response.text
    await confirmed(server, response.headers["location"], owner.token)  # SEC-3: the owner confirms
    (connection,) = await connections(server, owner.token)
    return owner, connection["id"]


def delta_calls(microsoft: MicrosoftDouble) -> list[dict[str, str]]:
    """The query of every delta call the server made, in order."""
    return [dict(parse_qsl(request.query)) for request in microsoft.requests_to("GET ") if DELTA in request.path]


async def answered(microsoft: MicrosoftDouble, kind: str, count: int = 1) -> list[GraphNotification]:
    """Notification items of this kind once our webhook answered them (polled off the event loop)."""
    return await eventually(
        lambda: [sent for sent in microsoft.notifications_sent if sent.kind == kind and (sent.status or sent.error)],
        lambda sent: len(sent) >= count,
        f"{count} {kind} notification(s) answered",
    )


async def written(server: LiveServer, booking_id: str) -> Booking:
    return await eventually(
        lambda: booking_row(server, booking_id), lambda row: row.calendar_write == "DONE", "written"
    )


async def refresh(server: LiveServer, connection_id: str) -> bool:
    return await server.services.busy_sync.refresh(uuid.UUID(connection_id))


async def test_a_change_in_outlook_reaches_a_watching_widget_through_a_notification(
    server: LiveServer, microsoft: MicrosoftDouble
) -> None:
    # covers: SYNC-5, SUB-1
    await connected(server, microsoft)
    (subscription,) = microsoft.subscriptions()  # opened for the default calendar at its first sync
    assert subscription["resource"] == f"me/calendars/{DEFAULT}/events"
    assert subscription["notificationUrl"] == f"{server.base_url}/webhooks/microsoft"
    assert {(check.status, check.body) for check in microsoft.validation_requests} == {
        (200, check.token) for check in microsoft.validation_requests
    }  # our webhook answered each handshake with the token itself

    async with ws_session(server.ws_url, "graphql-transport-ws") as session:
        watcher = Watcher(session, {**WINDOW, "timezone": "Europe/Helsinki"})
        assert "2026-12-01T10:00:00+02:00" in starts(await watcher.next())
        microsoft.clear_requests()
        microsoft.add_busy(DEFAULT, tuesday(10), tuesday(11))  # the owner adds a meeting in Outlook

        (sent,) = await answered(microsoft, "change")
        assert sent.status == 202
        after = starts(await watcher.next())
        assert "2026-12-01T10:00:00+02:00" not in after
        assert "2026-12-01T11:00:00+02:00" in after
        await watcher.close()
    assert ["$deltatoken" in call for call in delta_calls(microsoft)] == [True]  # one incremental round
    assert not [request for request in microsoft.requests_to("GET ") if request.path.endswith("/calendarView")]
    assert await metric(server, "kokous_push_notifications_total", 'outcome="synced"') == 1.0
    assert await metric(server, "kokous_sync_rounds_total", 'kind="full"') == 1.0  # at connect
    assert await metric(server, "kokous_sync_rounds_total", 'kind="incremental"') == 1.0
    await server.services.busy_sync.channels.count_active()  # as each background pass does
    assert await metric(server, "kokous_push_channels_active", 'provider="microsoft"') == 1.0


async def test_forged_unknown_and_malformed_graph_notifications_change_nothing(
    server: LiveServer, microsoft: MicrosoftDouble
) -> None:
    # covers: SYNC-5, SEC-4
    await connected(server, microsoft)
    (subscription,) = microsoft.subscriptions()
    microsoft.clear_requests()

    def body(subscription_id: str, client_state: str | None) -> dict[str, Any]:
        item = {"subscriptionId": subscription_id, "changeType": "created", "resource": "Users/x/Events/y"}
        return {"value": [{**item, "clientState": client_state}]}

    hook = "/webhooks/microsoft"
    forged = await server.http.post(hook, json=body(subscription["id"], "guessed"))
    no_state = await server.http.post(hook, json=body(subscription["id"], None))
    unknown = await server.http.post(hook, json=body(str(uuid.uuid4()), "guessed"))
    garbled = await server.http.post(hook, content=b"{not json", headers={"content-type": "application/json"})
    empty = await server.http.post(hook, json={"value": []})
    too_big = await server.http.post(hook, content=b"x" * 300_000)
    echoed = await server.http.post(f"{hook}?validationToken=a%2Bb%20c%3Cscript%3E")

    statuses = [r.status_code for r in (forged, no_state, unknown, garbled, empty, too_big)]
    assert statuses == [403, 403, 404, 400, 400, 413]
    assert (echoed.status_code, echoed.text, echoed.headers["content-type"]) == (
        200,
        "a+b c<script>",
        "text/plain; charset=utf-8",
    )
    assert delta_calls(microsoft) == []  # nothing was synced
    assert await metric(server, "kokous_push_notifications_total", 'outcome="forged"') == 2.0
    assert await metric(server, "kokous_push_notifications_total", 'outcome="unknown"') == 1.0


async def test_an_expired_delta_link_means_one_full_round_without_duplicates(
    server: LiveServer, microsoft: MicrosoftDouble
) -> None:
    # covers: SYNC-5
    for hour in (10, 12, 14):
        microsoft.add_busy(DEFAULT, tuesday(hour), tuesday(hour + 1))
    await connected(server, microsoft)
    microsoft.expire_delta_tokens(DEFAULT)
    microsoft.clear_requests()
    microsoft.add_busy(DEFAULT, tuesday(16), tuesday(17))  # notified: the sync finds its link expired
    await answered(microsoft, "change")
    await eventually(lambda: server.services.busy_sync.pushed_syncs_running == 0, bool, "the sync ended")

    calls = delta_calls(microsoft)
    assert ["$deltatoken" in call for call in calls] == [True, False]  # refused (410), then one full round
    assert "startDateTime" in calls[1]
    async with server.services.db.session() as session:
        rows = (await session.exec(select(BusyInterval))).all()
    assert sorted(row.start_at for row in rows) == [tuesday(10), tuesday(12), tuesday(14), tuesday(16)]


async def test_a_subscription_near_its_end_is_renewed_in_place(
    server: LiveServer, microsoft: MicrosoftDouble, clock: MovableClock
) -> None:
    # covers: SYNC-5
    _, connection_id = await connected(server, microsoft)
    (before,) = microsoft.subscriptions()
    async with server.services.db.session() as session:
        (channel,) = (await session.exec(select(PushChannel))).all()
    clock.now = channel.expires_at - RENEW_BEFORE + timedelta(minutes=5)
    microsoft.clear_requests()
    assert await refresh(server, connection_id)

    (after,) = microsoft.subscriptions()
    assert after["id"] == before["id"]
    assert after["expirationDateTime"] > before["expirationDateTime"]
    assert len(microsoft.requests_to(f"PATCH /v1.0/subscriptions/{before['id']}")) == 1
    assert not microsoft.requests_to("POST /v1.0/subscriptions")
    async with server.services.db.session() as session:
        (renewed,) = (await session.exec(select(PushChannel))).all()
    assert renewed.expires_at > channel.expires_at
    assert await metric(server, "kokous_push_channels_total", 'event="renewed"') == 1.0


async def test_a_subscription_graph_removed_is_opened_again_and_the_calendar_synced(
    server: LiveServer, microsoft: MicrosoftDouble
) -> None:
    # covers: SYNC-5
    await connected(server, microsoft)
    (removed,) = microsoft.subscriptions()
    microsoft.clear_requests()
    microsoft.remove_subscription(removed["id"])

    (sent,) = await answered(microsoft, "subscriptionRemoved")
    assert sent.status == 202
    (opened,) = await eventually(microsoft.subscriptions, lambda live: len(live) == 1, "a new subscription")
    assert opened["id"] != removed["id"]
    await eventually(lambda: server.services.busy_sync.pushed_syncs_running == 0, bool, "the sync ended")
    assert ["$deltatoken" in call for call in delta_calls(microsoft)] == [True]  # changes meanwhile are read
    async with server.services.db.session() as session:
        channels = (await session.exec(select(PushChannel))).all()
    assert [channel.resource_id for channel in channels] == [opened["id"]]

    microsoft.add_busy(DEFAULT, tuesday(10), tuesday(11))  # the new subscription delivers
    (change,) = await answered(microsoft, "change")
    assert (change.subscription_id, change.status) == (opened["id"], 202)


async def test_reauthorization_renews_the_subscription_and_missed_notices_bring_a_round(
    server: LiveServer, microsoft: MicrosoftDouble
) -> None:
    # covers: SYNC-5
    await connected(server, microsoft)
    (subscription,) = microsoft.subscriptions()
    microsoft.clear_requests()
    microsoft.require_reauthorization(subscription["id"])
    await answered(microsoft, "reauthorizationRequired")
    await eventually(
        lambda: microsoft.requests_to(f"PATCH /v1.0/subscriptions/{subscription['id']}"), bool, "a renewal"
    )
    microsoft.add_busy(DEFAULT, tuesday(10), tuesday(11))  # delivered again once reauthorized
    (change,) = await answered(microsoft, "change")
    assert change.status == 202

    microsoft.clear_requests()
    microsoft.miss_notifications(subscription["id"])
    await answered(microsoft, "missed")
    await eventually(lambda: delta_calls(microsoft), bool, "a delta round after missed notifications")
    assert [channel["id"] for channel in microsoft.subscriptions()] == [subscription["id"]]


async def test_a_booking_follows_its_outlook_event_deleted_or_moved_by_the_owner(
    server: LiveServer, microsoft: MicrosoftDouble, sink: SmtpSink
) -> None:
    # covers: SYNC-6, BOOK-5
    await connected(server, microsoft)
    first = await book(server, "2026-12-01T10:00:00+02:00", email="vera@example.com")
    second = await book(server, "2026-12-01T14:00:00+02:00", email="olli@example.com")
    event_ids = [(await written(server, booked["id"])).calendar_event_id for booked in (first, second)]
    assert all(event_ids)

    await answered(microsoft, "change", count=2)  # our own two writes come back, and ask for nothing
    microsoft.delete_event(str(event_ids[0]))  # the owner deletes Vera's meeting in Outlook
    microsoft.move_event(str(event_ids[1]), tuesday(15), tuesday(15) + HALF_HOUR)  # and moves Olli's
    await answered(microsoft, "change", count=4)
    await eventually(lambda: server.services.busy_sync.pushed_syncs_running == 0, bool, "the syncs ended")
    await server.services.outbox.run_once()

    cancelled = await eventually(
        lambda: booking_row(server, first["id"]), lambda row: row.status == "CANCELLED", "cancelled"
    )
    assert cancelled.calendar_write == "NONE"
    moved = await eventually(
        lambda: booking_row(server, second["id"]), lambda row: row.start_at == tuesday(15), "moved"
    )
    assert (moved.status, moved.calendar_write) == ("CONFIRMED", "DONE")

    def mail(to: str, subject: str) -> list[Any]:
        return [m for m in sink.messages if m.rcpt_tos == [to] and str(m.message["Subject"]).startswith(subject)]

    await eventually(lambda: mail("vera@example.com", "Cancelled:"), bool, "Vera's email")
    await eventually(lambda: mail("olli@example.com", "Rescheduled:"), bool, "Olli's email")
    assert not microsoft.requests_to("DELETE /v1.0/me/events")  # already gone: nothing to delete
    assert not microsoft.requests_to("PATCH /v1.0/me/events")  # already there: nothing written back


async def test_a_graph_notification_batch_for_one_calendar_costs_at_most_two_rounds(
    server: LiveServer, microsoft: MicrosoftDouble
) -> None:
    # covers: SYNC-5
    await connected(server, microsoft)
    microsoft.clear_requests()
    with microsoft.hold_notifications():
        for hour in (9, 10, 11, 12, 13):
            microsoft.add_busy(DEFAULT, tuesday(hour), tuesday(hour) + HALF_HOUR)
    sent = await answered(microsoft, "change", count=5)
    assert {item.batch for item in sent} == {sent[0].batch}  # one POST carried all five
    await eventually(lambda: server.services.busy_sync.pushed_syncs_running == 0, bool, "the syncs ended")
    assert 1 <= len(delta_calls(microsoft)) <= 2
    async with server.services.db.session() as session:
        rows = (await session.exec(select(BusyInterval).where(col(BusyInterval.start_at) >= tuesday(9)))).all()
    assert len(rows) == 5


async def test_an_event_deleted_after_its_meeting_is_over_tells_nobody(
    server: LiveServer, microsoft: MicrosoftDouble, sink: SmtpSink, clock: MovableClock
) -> None:
    # covers: SYNC-6
    await connected(server, microsoft)
    booked = await book(server, "2026-12-01T10:00:00+02:00", email="vera@example.com")
    event_id = (await written(server, booked["id"])).calendar_event_id
    await answered(microsoft, "change")  # our own write came back
    clock.now = tuesday(12)  # the meeting is over; the owner tidies their calendar
    microsoft.delete_event(str(event_id))
    await answered(microsoft, "change", count=2)
    await eventually(lambda: server.services.busy_sync.pushed_syncs_running == 0, bool, "the sync ended")
    await server.services.outbox.run_once()

    async def follows() -> list[OutboxMessage]:
        async with server.services.db.session() as session:
            found = await session.exec(
                select(OutboxMessage).where(OutboxMessage.kind == outbox.BOOKING_FOLLOW_CALENDAR)
            )
            return list(found.all())

    # Seen and handled (by this run or the server's own worker, whichever took it).
    (follow,) = await eventually(follows, lambda found: bool(found) and found[0].done_at is not None, "handled")
    assert follow.payload["deleted"] is True
    row = await booking_row(server, booked["id"])
    assert row.status == "CONFIRMED"
    assert not [mail for mail in sink.messages if str(mail.message["Subject"]).startswith("Cancelled:")]
