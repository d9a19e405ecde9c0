"""The Google double's incremental sync and push notifications, driven through google-api-python-client.

These pin down the wire behaviour of ``tests/doubles/google.py`` that a sync built on
``events.list`` and ``events.watch`` will meet: pages with ``nextSyncToken`` on the last one only,
changes (deleted ones as ``cancelled``) since a sync token, Google's 400 and 410 answers, and
notifications posted to a loopback receiver.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import google_auth_httplib2
import httplib2
import httpx
import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.doubles.google import READONLY, GoogleDouble
from tests.doubles.server import DoubleServer, RecordedRequest

OWNER = "owner@example.com"
REDIRECT_URI = "https://kokous.test/oauth/google/callback"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def google() -> Iterator[GoogleDouble]:
    with GoogleDouble() as double:
        double.add_account(OWNER, time_zone="Europe/Helsinki")
        yield double


@pytest.fixture
def receiver() -> Iterator[DoubleServer]:
    """A web hook on loopback that answers 200 and records what it was sent."""

    async def hook(request: Request) -> Response:
        return Response(status_code=200)

    with DoubleServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as server:
        yield server


@pytest.fixture
def service(google: GoogleDouble) -> Iterator[Any]:
    yield from calendar_service(
        google, access_token(google, [READONLY, "https://www.googleapis.com/auth/calendar.events"])
    )


def access_token(google: GoogleDouble, scopes: list[str]) -> str:
    """Consent and code exchange against the double, as an installed app would do them."""
    config = google.config_for(REDIRECT_URI)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    asked = {
        "client_id": google.client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": " ".join(scopes),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s",
        "access_type": "offline",
    }
    redirect = google.consent(f"{config['auth_uri']}?{urlencode(asked)}", account_email=OWNER)
    code = parse_qs(urlsplit(redirect).query)["code"][0]
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "client_id": google.client_id,
        "client_secret": google.client_secret,
    }
    answer = httpx.post(config["token_uri"], data=fields, trust_env=False)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def calendar_service(google: GoogleDouble, token: str) -> Iterator[Any]:
    """A Calendar v3 service the way the adapter builds it, against the double."""
    http = httplib2.Http(timeout=5)
    try:
        yield build(
            "calendar",
            "v3",
            http=google_auth_httplib2.AuthorizedHttp(Credentials(token=token), http=http),  # type: ignore[no-untyped-call]
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": f"{google.url}/calendar/v3/"},
        )
    finally:
        http.close()


def full_sync(service: Any, **params: Any) -> tuple[list[dict[str, Any]], str, list[dict[str, Any]]]:
    """Every page of events.list: (items, the sync token, the pages)."""
    pages: list[dict[str, Any]] = []
    events = service.events()
    request = events.list(calendarId="primary", **params)
    while request is not None:
        pages.append(request.execute(num_retries=0))
        request = events.list_next(request, pages[-1])
    items = [item for page in pages for item in page.get("items", [])]
    return items, pages[-1]["nextSyncToken"], pages


def refused(error: pytest.ExceptionInfo[HttpError]) -> tuple[int, str]:
    body = json.loads(error.value.content)["error"]
    assert body["code"] == error.value.resp.status
    return error.value.resp.status, body["errors"][0]["reason"]


def watch(service: Any, channel_id: str, address: str, **extra: Any) -> dict[str, Any]:
    body = {"id": channel_id, "type": "web_hook", "address": address, **extra}
    answer: dict[str, Any] = service.events().watch(calendarId="primary", body=body).execute(num_retries=0)
    return answer


def posts(receiver: DoubleServer) -> list[RecordedRequest]:
    return receiver.requests_to("POST /hook")


# -- events.list ---------------------------------------------------------------------------------


def test_a_full_sync_pages_and_gives_the_sync_token_only_on_the_last_page(google: GoogleDouble, service: Any) -> None:
    # covers: SYNC-5
    google.add_busy(OWNER, T0, T0 + HOUR)
    free = google.add_event(OWNER, T0 + 2 * HOUR, T0 + 3 * HOUR, transparency="transparent", summary="Focus")
    holiday = google.add_event(OWNER, date(2026, 3, 3), date(2026, 3, 4), all_day=True, summary="Holiday")
    declined = google.add_event(OWNER, T0 + 4 * HOUR, T0 + 5 * HOUR, declined=True)
    body = {"id": "kokousbooking1", "summary": "Intro call", "start": {"dateTime": "2026-03-05T08:00:00Z"}}
    body |= {"end": {"dateTime": "2026-03-05T08:30:00Z"}, "extendedProperties": {"private": {"kokous": "b1"}}}
    service.events().insert(calendarId="primary", body=body).execute(num_retries=0)

    items, sync_token, pages = full_sync(service, maxResults=2, singleEvents=True)

    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert all("nextPageToken" in page and "nextSyncToken" not in page for page in pages[:-1])
    assert "nextPageToken" not in pages[-1]
    assert sync_token
    assert all(page["kind"] == "calendar#events" and page["timeZone"] == "Europe/Helsinki" for page in pages)
    by_id = {item["id"]: item for item in items}
    assert len(by_id) == 5
    for item in items:
        assert {"id", "status", "start", "end", "updated", "etag", "iCalUID"} <= set(item)
    busy = next(item for item in items if item["id"] not in (free, holiday, declined, "kokousbooking1"))
    assert busy["start"]["dateTime"] == "2026-03-02T10:00:00+02:00"  # the calendar's zone, with its offset
    assert "transparency" not in busy  # omitted means opaque
    assert by_id[free]["transparency"] == "transparent"
    assert by_id[holiday]["start"] == {"date": "2026-03-03"}
    assert by_id[holiday]["end"] == {"date": "2026-03-04"}
    [me] = [attendee for attendee in by_id[declined]["attendees"] if attendee.get("self")]
    assert me["responseStatus"] == "declined"
    assert by_id["kokousbooking1"]["extendedProperties"] == {"private": {"kokous": "b1"}}
    assert by_id["kokousbooking1"]["start"]["dateTime"] == "2026-03-05T10:00:00+02:00"

    # events_on shows only what was written through the API; freeBusy what the owner is busy with
    assert [event["id"] for event in google.events_on(OWNER)] == ["kokousbooking1"]
    window = {"timeMin": "2026-03-02T00:00:00Z", "timeMax": "2026-03-06T00:00:00Z", "items": [{"id": OWNER}]}
    busy_times = service.freebusy().query(body=window).execute(num_retries=0)["calendars"][OWNER]["busy"]
    assert busy_times == [
        {"start": "2026-03-02T08:00:00Z", "end": "2026-03-02T09:00:00Z"},
        {"start": "2026-03-02T22:00:00Z", "end": "2026-03-03T22:00:00Z"},  # the all-day event, Helsinki's day
        {"start": "2026-03-05T08:00:00Z", "end": "2026-03-05T08:30:00Z"},
    ]


def test_a_window_lists_the_events_that_overlap_it(google: GoogleDouble, service: Any) -> None:
    # covers: SYNC-5
    before = google.add_event(OWNER, T0 - 2 * HOUR, T0)
    overlapping = google.add_event(OWNER, T0 - HOUR, T0 + HOUR)
    inside = google.add_event(OWNER, T0 + HOUR, T0 + 2 * HOUR)
    google.add_event(OWNER, T0 + 3 * HOUR, T0 + 4 * HOUR)
    window = {"timeMin": "2026-03-02T08:00:00Z", "timeMax": "2026-03-02T12:00:00+02:00"}

    items, _, _ = full_sync(service, singleEvents=True, orderBy="startTime", **window)

    assert [item["id"] for item in items] == [overlapping, inside]
    assert before not in [item["id"] for item in items]  # it ends when the window starts


def test_a_page_token_needs_the_same_request(google: GoogleDouble, service: Any) -> None:
    # covers: SYNC-5
    for hour in range(3):
        google.add_event(OWNER, T0 + hour * HOUR, T0 + (hour + 1) * HOUR)
    first = service.events().list(calendarId="primary", maxResults=1).execute(num_retries=0)

    with pytest.raises(HttpError) as error:
        service.events().list(calendarId="primary", pageToken=first["nextPageToken"], q="x").execute(num_retries=0)

    assert refused(error) == (400, "invalid")


def test_an_incremental_sync_gives_what_was_created_changed_and_deleted(google: GoogleDouble, service: Any) -> None:
    # covers: SYNC-5
    moved = google.add_event(OWNER, T0, T0 + HOUR, summary="Dentist")
    deleted = google.add_event(OWNER, T0 + 2 * HOUR, T0 + 3 * HOUR)
    untouched = google.add_event(OWNER, T0 + 4 * HOUR, T0 + 5 * HOUR)
    written = {"summary": "Intro", "start": {"dateTime": "2026-03-04T08:00:00Z"}}
    written |= {"end": {"dateTime": "2026-03-04T09:00:00Z"}}
    booking = service.events().insert(calendarId="primary", body=written).execute(num_retries=0)["id"]
    _, token, _ = full_sync(service)

    created = google.add_event(OWNER, T0 + 6 * HOUR, T0 + 7 * HOUR, status="tentative")
    google.move_event(OWNER, moved, T0 + HOUR, T0 + 2 * HOUR)
    google.delete_event(OWNER, deleted)
    service.events().delete(calendarId="primary", eventId=booking).execute(num_retries=0)
    changes = service.events().list(calendarId="primary", syncToken=token).execute(num_retries=0)

    by_id = {item["id"]: item for item in changes["items"]}
    assert set(by_id) == {created, moved, deleted, booking}
    assert untouched not in by_id
    assert by_id[created]["status"] == "tentative"
    assert by_id[moved]["start"]["dateTime"] == "2026-03-02T11:00:00+02:00"
    assert by_id[moved]["summary"] == "Dentist"
    assert by_id[deleted] == {"id": deleted, "status": "cancelled"}
    assert by_id[booking] == {"id": booking, "status": "cancelled"}
    assert "nextPageToken" not in changes

    quiet = service.events().list(calendarId="primary", syncToken=changes["nextSyncToken"]).execute(num_retries=0)
    assert quiet["items"] == []
    assert quiet["nextSyncToken"]


def test_an_incremental_sync_pages_too(google: GoogleDouble, service: Any) -> None:
    # covers: SYNC-5
    _, token, _ = full_sync(service)
    added = [google.add_event(OWNER, T0 + hour * HOUR, T0 + (hour + 1) * HOUR) for hour in range(3)]

    items, next_token, pages = full_sync(service, syncToken=token, maxResults=2)

    assert [item["id"] for item in items] == added
    assert ["nextSyncToken" in page for page in pages] == [False, True]
    assert next_token != token


@pytest.mark.parametrize(
    "extra",
    [
        {"timeMin": "2026-03-01T00:00:00Z"},
        {"timeMax": "2026-04-01T00:00:00Z"},
        {"q": "call"},
        {"updatedMin": "2026-03-01T00:00:00Z"},
        {"showDeleted": False},
    ],
)
def test_a_sync_token_refuses_the_parameters_google_forbids_with_it(
    google: GoogleDouble, service: Any, extra: dict[str, Any]
) -> None:
    # covers: SYNC-5
    _, token, _ = full_sync(service)

    with pytest.raises(HttpError) as error:
        service.events().list(calendarId="primary", syncToken=token, **extra).execute(num_retries=0)

    assert refused(error) == (400, "invalid")


def test_an_invalidated_sync_token_is_gone_until_a_full_sync(google: GoogleDouble, service: Any) -> None:
    # covers: SYNC-5
    google.add_event(OWNER, T0, T0 + HOUR)
    _, token, _ = full_sync(service)
    google.invalidate_sync_tokens(OWNER)

    with pytest.raises(HttpError) as error:
        service.events().list(calendarId="primary", syncToken=token).execute(num_retries=0)

    assert refused(error) == (410, "fullSyncRequired")
    assert json.loads(error.value.content)["error"]["message"] == (
        "Sync token is no longer valid, a full sync is required."
    )
    items, fresh, _ = full_sync(service)
    assert len(items) == 1
    assert service.events().list(calendarId="primary", syncToken=fresh).execute(num_retries=0)["items"] == []


# -- push notifications ----------------------------------------------------------------------------


def test_a_channel_sends_sync_then_one_exists_message_per_change(
    google: GoogleDouble, service: Any, receiver: DoubleServer
) -> None:
    # covers: SYNC-5
    address = f"{receiver.url}/hook"
    channel = watch(service, "kokous-channel-1", address, token="calendar=42", params={"ttl": "3600"})

    assert channel["kind"] == "api#channel"
    assert (channel["id"], channel["token"]) == ("kokous-channel-1", "calendar=42")
    expiration = datetime.fromtimestamp(int(channel["expiration"]) / 1000, UTC)
    assert abs(expiration - (datetime.now(UTC) + HOUR)) < timedelta(minutes=1)
    [sync] = google.wait_for_notifications(1, channel_id="kokous-channel-1")
    assert (sync.state, sync.message_number, sync.status) == ("sync", 1, 200)
    assert google.channels() == [
        {
            "id": "kokous-channel-1",
            "resourceId": channel["resourceId"],
            "resourceUri": channel["resourceUri"],
            "calendarId": OWNER,
            "address": address,
            "token": "calendar=42",
            "expiration": channel["expiration"],
        }
    ]

    google.add_event(OWNER, T0, T0 + HOUR)
    body = {"start": {"dateTime": "2026-03-04T08:00:00Z"}, "end": {"dateTime": "2026-03-04T09:00:00Z"}}
    service.events().insert(calendarId="primary", body=body).execute(num_retries=0)
    sent = google.wait_for_notifications(3, channel_id="kokous-channel-1")

    assert [notification.state for notification in sent] == ["sync", "exists", "exists"]
    numbers = [notification.message_number for notification in sent]
    assert numbers == sorted(set(numbers))
    assert all(notification.status == 200 for notification in sent)
    received = posts(receiver)
    assert len(received) == 3
    for request, number in zip(received, numbers, strict=True):
        assert request.body == b""
        assert request.headers["x-goog-channel-id"] == "kokous-channel-1"
        assert request.headers["x-goog-channel-token"] == "calendar=42"
        assert request.headers["x-goog-resource-id"] == channel["resourceId"]
        assert request.headers["x-goog-resource-uri"] == channel["resourceUri"]
        assert request.headers["x-goog-message-number"] == str(number)
        assert parsedate_to_datetime(request.headers["x-goog-channel-expiration"]) == expiration.replace(microsecond=0)
    assert [request.headers["x-goog-resource-state"] for request in received] == ["sync", "exists", "exists"]


def test_a_stopped_channel_sends_nothing_more(google: GoogleDouble, service: Any, receiver: DoubleServer) -> None:
    # covers: SYNC-5
    channel = watch(service, "kokous-channel-2", f"{receiver.url}/hook")
    google.wait_for_notifications(1, channel_id="kokous-channel-2")
    assert "x-goog-channel-token" not in posts(receiver)[0].headers  # no token given, none sent

    stop = {"id": channel["id"], "resourceId": channel["resourceId"]}
    assert service.channels().stop(body=stop).execute(num_retries=0) == ""
    google.add_event(OWNER, T0, T0 + HOUR)
    google.settle_notifications()

    assert len(google.notifications_sent) == 1
    assert len(posts(receiver)) == 1
    assert google.channels() == []
    assert google.requests_to("POST /calendar/v3/channels/stop")[-1].json() == stop
    with pytest.raises(HttpError) as error:
        service.channels().stop(body=stop).execute(num_retries=0)
    assert refused(error) == (404, "notFound")


def test_an_expired_channel_sends_nothing_more(google: GoogleDouble, service: Any, receiver: DoubleServer) -> None:
    # covers: SYNC-5
    watch(service, "kokous-channel-3", f"{receiver.url}/hook")
    google.wait_for_notifications(1)
    google.expire_channel("kokous-channel-3")

    google.add_event(OWNER, T0, T0 + HOUR)
    google.settle_notifications()

    assert [notification.state for notification in google.notifications_sent] == ["sync"]
    assert google.channels() == []
    watch(service, "kokous-channel-3", f"{receiver.url}/hook")  # the id is free again
    google.wait_for_notifications(2)


def test_a_duplicate_channel_id_is_refused(google: GoogleDouble, service: Any, receiver: DoubleServer) -> None:
    # covers: SYNC-5
    watch(service, "kokous-channel-4", f"{receiver.url}/hook")

    with pytest.raises(HttpError) as error:
        watch(service, "kokous-channel-4", f"{receiver.url}/hook")

    assert refused(error) == (400, "channelIdNotUnique")
    assert len(google.channels()) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"id": "", "type": "web_hook", "address": "http://127.0.0.1:9/hook"}, "required"),
        ({"id": "x" * 65, "type": "web_hook", "address": "http://127.0.0.1:9/hook"}, "invalid"),
        ({"id": "c", "type": "webhook", "address": "http://127.0.0.1:9/hook"}, "invalid"),
        ({"id": "c", "type": "web_hook"}, "required"),
        ({"id": "c", "type": "web_hook", "address": "http://127.0.0.1:9/hook", "token": "t" * 257}, "invalid"),
    ],
)
def test_a_watch_request_is_checked(google: GoogleDouble, service: Any, body: dict[str, Any], reason: str) -> None:
    # covers: SYNC-5
    with pytest.raises(HttpError) as error:
        service.events().watch(calendarId="primary", body=body).execute(num_retries=0)

    assert refused(error) == (400, reason)
    assert google.channels() == []


def test_https_is_required_when_the_double_is_strict() -> None:
    # covers: SYNC-5
    with GoogleDouble(require_https=True) as google:
        google.add_account(OWNER)
        for service in calendar_service(google, access_token(google, [READONLY])):
            with pytest.raises(HttpError) as error:
                watch(service, "kokous-channel-5", "http://127.0.0.1:9/hook")
            assert refused(error) == (400, "push.webhookUrlNotHttps")
            answer = watch(service, "kokous-channel-5", "https://127.0.0.1:9/hook")  # read scope is enough
            assert answer["expiration"]
            [sync] = google.wait_for_notifications(1)
            assert sync.status is None  # nobody listens there
            assert sync.error
