"""Exchange push subscriptions, through the real exchangelib against the EWS double on 127.0.0.1.

``watch`` makes an EWS push subscription on a calendar folder; the double then posts SOAP
``SendNotification`` requests to a loopback web hook playing Kokous's side: it reads each one with
``read_push`` and answers with ``push_answer``, and the double acts on that answer as Exchange does.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from providers.base import PushWatch, WatchChannel
from providers.errors import ProviderRefused
from providers.exchange import (
    PUSH_EVENTS,
    PUSH_HEARTBEAT,
    STATUS_MINUTES,
    ExchangeCalendarClient,
    PushNotice,
    push_answer,
    read_push,
)
from tests.doubles.exchange import ERRORS, MESSAGES, SOAP, TYPES, ExchangeDouble, PushNotification
from tests.doubles.server import DoubleServer, RecordedRequest
from tests.providers.test_exchange import OWNER, PASSWORD, client_for, draft

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
HOOK = "/webhooks/exchange"
TOKEN = "s3cret/+=&token"  # characters a query must encode
SEND_NOTIFICATION = f"{{{MESSAGES}}}SendNotification"


class Webhook:
    """Kokous's side on loopback: reads each notification with ``read_push``, answers with ``push_answer``."""

    def __init__(self) -> None:
        self.keep = True  # answer OK; False: Unsubscribe
        self.fail_with: int | None = None  # answer this status with an empty body instead
        self.notices: list[PushNotice] = []
        self.server = DoubleServer(Starlette(routes=[Route(HOOK, self._receive, methods=["POST"])]))

    @property
    def url(self) -> str:
        return self.server.url + HOOK

    def posts(self) -> list[RecordedRequest]:
        return self.server.requests_to(f"POST {HOOK}")

    async def _receive(self, request: Request) -> Response:
        if self.fail_with is not None:
            return Response(status_code=self.fail_with)
        try:
            self.notices.extend(read_push(await request.body()))
        except ValueError:
            return Response(status_code=400)
        return Response(push_answer(keep=self.keep), media_type="text/xml; charset=utf-8")


@pytest.fixture
def double() -> Iterator[ExchangeDouble]:
    with ExchangeDouble(version="EXCHANGE_2016") as server:
        server.add_mailbox(OWNER, PASSWORD)
        yield server


@pytest.fixture
async def client(double: ExchangeDouble) -> AsyncIterator[ExchangeCalendarClient]:
    connected = await client_for(double)
    yield connected
    await connected.aclose()


@pytest.fixture
def primary(double: ExchangeDouble) -> str:
    return double.primary_calendar(OWNER)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    with hook.server:
        yield hook


async def watch(client: ExchangeCalendarClient, calendar_id: str, webhook: Webhook) -> WatchChannel:
    return await client.watch(
        calendar_id, channel_id="channel-1", address=webhook.url, token=TOKEN, ttl=timedelta(days=7)
    )


def notification_parts(sent: PushNotification) -> ET.Element:
    """The m:Notification element of a posted SendNotification."""
    notification = ET.fromstring(sent.body).find(f".//{{{MESSAGES}}}Notification")
    assert notification is not None
    return notification


def child_id(event: ET.Element, name: str) -> str | None:
    """The Id of an event's ``t:<name>`` child (ItemId, ParentFolderId, ...)."""
    child = event.find(f"{{{TYPES}}}{name}")
    return None if child is None else child.get("Id")


def subscribe_request(double: ExchangeDouble, push_request: str) -> httpx.Response:
    """A raw Subscribe to the double, for what exchangelib never sends."""
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}" xmlns:m="{MESSAGES}" '
        f'xmlns:t="{TYPES}"><s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>'
        f"<m:Subscribe>{push_request}</m:Subscribe></s:Body></s:Envelope>"
    )
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    return httpx.post(double.ews_url, content=body, headers=headers, auth=(OWNER, PASSWORD), trust_env=False)


def push_request(folder: str, *, frequency: str = "15", url: str = "https://kokous.test/hook", extra: str = "") -> str:
    return (
        f'<m:PushSubscriptionRequest><t:FolderIds><t:FolderId Id="{folder}"/></t:FolderIds>'
        f"<t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes>{extra}"
        f"<t:StatusFrequency>{frequency}</t:StatusFrequency><t:URL>{url}</t:URL></m:PushSubscriptionRequest>"
    )


def response_code(answer: httpx.Response) -> str:
    envelope = ET.fromstring(answer.content)
    code = envelope.findtext(f".//{{{MESSAGES}}}ResponseCode") or envelope.findtext(f".//{{{ERRORS}}}ResponseCode")
    assert code is not None, answer.text
    return code


# -- watch and stop_watch -------------------------------------------------------------------------


async def test_watch_opens_a_push_subscription_whose_url_carries_channel_and_token(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str, webhook: Webhook
) -> None:
    # covers: SYNC-5
    assert isinstance(client, PushWatch)
    before = datetime.now(UTC)

    channel = await watch(client, primary, webhook)

    [subscription] = double.push_subscriptions()
    assert channel.channel_id == "channel-1"
    assert channel.resource_id == subscription.subscription_id
    assert before + PUSH_HEARTBEAT <= channel.expires_at <= datetime.now(UTC) + PUSH_HEARTBEAT
    assert client.heartbeat == PUSH_HEARTBEAT == timedelta(minutes=2 * STATUS_MINUTES)
    assert subscription.folder_ids == (primary,)
    assert set(subscription.event_types) == set(PUSH_EVENTS)
    assert subscription.status_frequency == STATUS_MINUTES
    url = urlsplit(subscription.url)
    assert url._replace(query="").geturl() == webhook.url
    assert parse_qs(url.query) == {"channel": ["channel-1"], "token": [TOKEN]}
    assert double.operation_counts()["Subscribe"] == 1


async def test_stop_watch_calls_nothing(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str, webhook: Webhook
) -> None:
    # covers: SYNC-5
    channel = await watch(client, primary, webhook)
    double.clear_requests()

    await client.stop_watch(channel.channel_id, channel.resource_id)

    assert double.requests == []
    assert [live.subscription_id for live in double.push_subscriptions()] == [channel.resource_id]


async def test_an_exchange_that_refuses_push_urls_is_provider_refused(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str, webhook: Webhook
) -> None:
    # covers: SYNC-5
    double.require_https = True  # the webhook is http on loopback

    with pytest.raises(ProviderRefused) as refused:
        await watch(client, primary, webhook)

    assert refused.value.code == "ErrorInvalidPushSubscriptionUrl"
    assert double.push_subscriptions() == []


async def test_an_exchange_out_of_subscriptions_is_provider_refused(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str, webhook: Webhook
) -> None:
    # covers: SYNC-5
    double.max_push_subscriptions = 1
    await watch(client, primary, webhook)

    with pytest.raises(ProviderRefused) as refused:
        await watch(client, primary, webhook)

    assert refused.value.code == "ErrorExceededSubscriptionCount"
    assert len(double.push_subscriptions()) == 1


# -- notifications ------------------------------------------------------------------------------


async def test_a_change_in_the_calendar_posts_a_notification_read_as_changed(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str, webhook: Webhook
) -> None:
    # covers: SYNC-5
    channel = await watch(client, primary, webhook)
    other = double.add_calendar(OWNER, "Holidays")

    item_id = double.add_busy(OWNER, T0, T0 + HOUR)
    double.add_busy(OWNER, T0, T0 + HOUR, calendar_id=other)  # not watched: nothing is posted for it
    [sent] = double.wait_for_push(1)
    double.settle_push()

    assert webhook.notices == [PushNotice(channel.resource_id, changed=True)]
    assert sent.events == ("CreatedEvent",)
    assert (sent.status, sent.subscription_status, sent.error) == (200, "OK", None)
    [post] = webhook.posts()
    assert parse_qs(post.query) == {"channel": ["channel-1"], "token": [TOKEN]}
    assert post.headers["content-type"].startswith("text/xml")
    notification = notification_parts(sent)
    assert notification.findtext(f"{{{TYPES}}}SubscriptionId") == channel.resource_id
    created = notification.find(f"{{{TYPES}}}CreatedEvent")
    assert created is not None
    for part in ("Watermark", "TimeStamp", "ItemId", "ParentFolderId"):
        assert created.find(f"{{{TYPES}}}{part}") is not None, part
    assert child_id(created, "ItemId") == item_id
    assert child_id(created, "ParentFolderId") == primary


async def test_each_kind_of_change_is_notified_and_watermarks_follow_on(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str, webhook: Webhook
) -> None:
    # covers: SYNC-5
    channel = await watch(client, primary, webhook)

    written = await client.create_event(primary, draft())
    await client.update_event(primary, written.event_id, draft(start=T0, end=T0 + HOUR))
    await client.delete_event(primary, written.event_id)  # through EWS: a hard delete
    busy = double.add_busy(OWNER, T0, T0 + HOUR)
    double.move_item(OWNER, busy, T0 + HOUR, T0 + 2 * HOUR)
    double.cancel_item(OWNER, busy)
    double.delete_item(OWNER, busy)  # in Outlook: moved to Deleted Items
    series = double.add_recurring(OWNER, T0, T0 + HOUR, count=3)
    double.delete_item(OWNER, double.occurrence_ids(OWNER, series)[1])  # changes the series
    double.settle_push()

    sent = double.push_notifications_sent
    kinds = [kind for notification in sent for kind in notification.events]
    assert kinds == [
        "CreatedEvent",
        "ModifiedEvent",
        "DeletedEvent",
        "CreatedEvent",
        "ModifiedEvent",
        "ModifiedEvent",
        "MovedEvent",
        "CreatedEvent",
        "ModifiedEvent",
    ]
    assert all(notification.subscription_status == "OK" for notification in sent)
    assert set(webhook.notices) == {PushNotice(channel.resource_id, changed=True)}
    # Each notification starts where the one before ended.
    for before, after in itertools.pairwise(sent):
        last_event = list(notification_parts(before))[-1]
        previous = notification_parts(after).findtext(f"{{{TYPES}}}PreviousWatermark")
        assert previous == last_event.findtext(f"{{{TYPES}}}Watermark")
    moved = next(event for n in sent for event in notification_parts(n) if event.tag == f"{{{TYPES}}}MovedEvent")
    assert child_id(moved, "OldItemId") == busy
    assert child_id(moved, "OldParentFolderId") == primary
    assert child_id(moved, "ParentFolderId") not in (None, primary)  # Deleted Items


async def test_a_status_ping_reads_as_not_changed(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str, webhook: Webhook
) -> None:
    # covers: SYNC-5
    channel = await watch(client, primary, webhook)

    assert double.send_status(channel.resource_id)
    [sent] = double.wait_for_push(1)

    assert sent.events == ("StatusEvent",)
    assert sent.subscription_status == "OK"
    assert webhook.notices == [PushNotice(channel.resource_id, changed=False)]


async def test_answering_unsubscribe_ends_the_subscription(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str, webhook: Webhook
) -> None:
    # covers: SYNC-5
    channel = await watch(client, primary, webhook)
    webhook.keep = False  # a channel Kokous no longer keeps

    double.add_busy(OWNER, T0, T0 + HOUR)
    [sent] = double.wait_for_push(1)
    double.settle_push()

    assert sent.subscription_status == "Unsubscribe"
    assert double.push_subscriptions() == []
    double.add_busy(OWNER, T0 + HOUR, T0 + 2 * HOUR)
    assert not double.send_status(channel.resource_id)
    double.settle_push()
    assert len(double.push_notifications_sent) == 1
    assert len(webhook.posts()) == 1


@pytest.mark.parametrize("keep", [True, False])
async def test_push_answer_is_read_by_exchange(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str, webhook: Webhook, keep: bool
) -> None:
    # covers: SYNC-5
    channel = await watch(client, primary, webhook)
    webhook.keep = keep

    double.send_status(channel.resource_id)
    [sent] = double.wait_for_push(1)

    assert sent.subscription_status == ("OK" if keep else "Unsubscribe")
    answer = ET.fromstring(push_answer(keep=keep))
    status = answer.findtext(f"{{{SOAP}}}Body/{{{MESSAGES}}}SendNotificationResult/{{{MESSAGES}}}SubscriptionStatus")
    assert status == sent.subscription_status


@pytest.mark.parametrize("failure", [500, 204])
async def test_a_receiver_that_keeps_failing_loses_the_subscription(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str, webhook: Webhook, failure: int
) -> None:
    # covers: SYNC-5
    channel = await watch(client, primary, webhook)
    webhook.fail_with = failure  # an error, or a success without a SendNotificationResult

    double.send_status(channel.resource_id)
    double.settle_push()

    attempts = double.push_notifications_sent
    assert len(attempts) == 1 + double.push_retries
    assert all(sent.status == failure and sent.subscription_status is None and sent.error for sent in attempts)
    assert double.push_subscriptions() == []


async def test_a_failed_delivery_is_retried(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str, webhook: Webhook
) -> None:
    # covers: SYNC-5
    channel = await watch(client, primary, webhook)
    webhook.server.fail(f"POST {HOOK}", status=503)  # once

    double.add_busy(OWNER, T0, T0 + HOUR)
    double.settle_push()

    first, second = double.push_notifications_sent
    assert (first.status, first.subscription_status) == (503, None)
    assert (second.status, second.subscription_status) == (200, "OK")
    assert first.body == second.body
    assert webhook.notices == [PushNotice(channel.resource_id, changed=True)]
    assert len(double.push_subscriptions()) == 1


# -- read_push ----------------------------------------------------------------------------------


def refusal_fault(code: str, text: str) -> bytes:
    """A SOAP fault as EWS answers a request it refuses outright."""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Body><s:Fault>'
        f'<faultcode xmlns:a="{TYPES}">a:{code}</faultcode><faultstring xml:lang="en-US">{text}</faultstring>'
        f'<detail><e:ResponseCode xmlns:e="{ERRORS}">{code}</e:ResponseCode>'
        f'<e:Message xmlns:e="{ERRORS}">{text}</e:Message>'
        "</detail></s:Fault></s:Body></s:Envelope>"
    ).encode()


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>'
    b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>&lol2;</s:Body></s:Envelope>'
)
ERROR_MESSAGE = (
    f'<s:Envelope xmlns:s="{SOAP}" xmlns:m="{MESSAGES}"><s:Body><m:SendNotification><m:ResponseMessages>'
    '<m:SendNotificationResponseMessage ResponseClass="Error"><m:MessageText>Internal error.</m:MessageText>'
    "<m:ResponseCode>ErrorInternalServerError</m:ResponseCode></m:SendNotificationResponseMessage>"
    "</m:ResponseMessages></m:SendNotification></s:Body></s:Envelope>"
).encode()
NO_SUBSCRIPTION_ID = (
    f'<s:Envelope xmlns:s="{SOAP}" xmlns:m="{MESSAGES}" xmlns:t="{TYPES}"><s:Body><m:SendNotification>'
    '<m:ResponseMessages><m:SendNotificationResponseMessage ResponseClass="Success">'
    "<m:ResponseCode>NoError</m:ResponseCode><m:Notification><t:MoreEvents>false</t:MoreEvents>"
    "<t:StatusEvent><t:Watermark>AQAAAAAAAAAA</t:Watermark></t:StatusEvent></m:Notification>"
    "</m:SendNotificationResponseMessage></m:ResponseMessages></m:SendNotification></s:Body></s:Envelope>"
).encode()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"garbage",
        b"<notification/>",
        push_answer(keep=True),  # our own answer is no notification
        refusal_fault("ErrorInternalServerError", "An internal server error occurred."),
        BILLION_LAUGHS,
        ERROR_MESSAGE,
        NO_SUBSCRIPTION_ID,
    ],
    ids=["empty", "garbage", "other xml", "an answer", "a fault", "a dtd", "an error message", "no id"],
)
def test_read_push_rejects_what_is_not_a_notification(body: bytes) -> None:
    # covers: SYNC-5
    with pytest.raises(ValueError, match="not an Exchange push notification"):
        read_push(body)


async def test_read_push_rejects_a_truncated_notification(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str, webhook: Webhook
) -> None:
    # covers: SYNC-5
    channel = await watch(client, primary, webhook)
    double.send_status(channel.resource_id)
    [sent] = double.wait_for_push(1)
    assert read_push(sent.body) == [PushNotice(channel.resource_id, changed=False)]

    with pytest.raises(ValueError, match="not an Exchange push notification"):
        read_push(sent.body[:-40])  # exchangelib alone would read what is there


# -- the double's Subscribe, as strict as Exchange -------------------------------------------------


def frequency_after_url(folder: str) -> str:
    """StatusFrequency and URL the wrong way round."""
    return push_request(folder).replace(
        "<t:StatusFrequency>15</t:StatusFrequency><t:URL>https://kokous.test/hook</t:URL>",
        "<t:URL>https://kokous.test/hook</t:URL><t:StatusFrequency>15</t:StatusFrequency>",
    )


@pytest.mark.parametrize(
    ("make_request", "code"),
    [
        pytest.param(lambda folder: push_request(folder, frequency="0"), "ErrorSchemaValidation", id="frequency 0"),
        pytest.param(lambda folder: push_request(folder, frequency="1441"), "ErrorSchemaValidation", id="1441"),
        pytest.param(frequency_after_url, "ErrorSchemaValidation", id="out of order"),
        pytest.param(
            lambda folder: push_request(folder).replace("<t:URL>https://kokous.test/hook</t:URL>", ""),
            "ErrorSchemaValidation",
            id="no url",
        ),
        pytest.param(
            lambda folder: push_request(folder, url="ftp://kokous.test/hook"),
            "ErrorInvalidPushSubscriptionUrl",
            id="ftp",
        ),
        pytest.param(
            lambda folder: push_request(folder, url="https://kokous.test/" + "x" * 2083),
            "ErrorInvalidPushSubscriptionUrl",
            id="too long",
        ),
        pytest.param(lambda folder: push_request("AAMkbm90LWEtZm9sZGVy"), "ErrorFolderNotFound", id="folder"),
        pytest.param(
            lambda folder: push_request(folder, extra="<t:Watermark>AQD/////////</t:Watermark>"),
            "ErrorInvalidWatermark",
            id="watermark",
        ),
    ],
)
def test_the_double_refuses_a_subscription_as_exchange_does(
    double: ExchangeDouble, primary: str, make_request: Callable[[str], str], code: str
) -> None:
    # covers: SYNC-5
    answer = subscribe_request(double, make_request(primary))

    assert response_code(answer) == code
    assert double.push_subscriptions() == []


def test_the_double_answers_a_subscription_with_its_id_and_a_watermark(double: ExchangeDouble, primary: str) -> None:
    # covers: SYNC-5
    answer = subscribe_request(double, push_request(primary, url="http://kokous.test/hook"))

    assert answer.status_code == 200
    message = ET.fromstring(answer.content).find(f".//{{{MESSAGES}}}SubscribeResponseMessage")
    assert message is not None
    assert message.get("ResponseClass") == "Success"
    [live] = double.push_subscriptions()
    assert message.findtext(f"{{{MESSAGES}}}SubscriptionId") == live.subscription_id
    assert message.findtext(f"{{{MESSAGES}}}Watermark")
    assert (live.folder_ids, live.event_types, live.status_frequency) == ((primary,), ("CreatedEvent",), 15)


def test_a_known_watermark_replays_the_changes_since_it(double: ExchangeDouble, primary: str, webhook: Webhook) -> None:
    # covers: SYNC-5
    first = subscribe_request(double, push_request(primary, url=webhook.url))
    watermark = ET.fromstring(first.content).findtext(f".//{{{MESSAGES}}}Watermark")
    item_id = double.add_busy(OWNER, T0, T0 + HOUR)  # a change the first subscription is told of
    double.settle_push()

    subscribe_request(double, push_request(primary, url=webhook.url, extra=f"<t:Watermark>{watermark}</t:Watermark>"))
    double.settle_push()

    first_sent, replayed = double.push_notifications_sent
    assert replayed.subscription_id != first_sent.subscription_id
    assert replayed.events == ("CreatedEvent",)
    [created] = notification_parts(replayed).iter(f"{{{TYPES}}}CreatedEvent")
    assert child_id(created, "ItemId") == item_id
    assert notification_parts(replayed).findtext(f"{{{TYPES}}}PreviousWatermark") == watermark


async def test_a_restarted_exchange_forgets_its_subscriptions_without_a_word(
    double: ExchangeDouble, client: ExchangeCalendarClient, primary: str, webhook: Webhook
) -> None:
    # covers: SYNC-5
    channel = await watch(client, primary, webhook)

    double.drop_push_subscriptions()  # only the heartbeat running out tells Kokous
    double.add_busy(OWNER, T0, T0 + HOUR)
    double.settle_push()

    assert double.push_subscriptions() == []
    assert not double.send_status(channel.resource_id)
    assert double.push_notifications_sent == []
    assert webhook.posts() == []
