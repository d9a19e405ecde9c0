"""The Google adapter through the real google libraries against the Google double over loopback HTTPS."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from providers.base import Attendee, BusyBlock, CalendarAccess, EventDraft
from providers.errors import (
    CalendarGone,
    ProviderAuthError,
    ProviderMisconfigured,
    ProviderRateLimited,
    ProviderUnavailable,
)
from providers.google import (
    CALENDAR_EVENTS,
    CALENDAR_READONLY,
    GoogleCalendarClient,
    GoogleConfig,
    GoogleCredentials,
    GoogleOAuth,
    event_id_for,
)
from tests.doubles.google import GoogleDouble, google_error, token_error
from tests.doubles.server import TLSFiles, make_tls_files

REDIRECT_URI = "https://kokous.test/oauth/google/callback"
OWNER = "owner@example.com"
VISITOR = "visitor@example.org"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("google-tls"))


@pytest.fixture
def google(tls: TLSFiles) -> Iterator[GoogleDouble]:
    with GoogleDouble(tls=tls) as double:
        double.add_account(OWNER, time_zone="Europe/Helsinki")
        yield double


@pytest.fixture
def config(google: GoogleDouble) -> GoogleConfig:
    return GoogleConfig(**google.config_for(REDIRECT_URI))


@pytest.fixture
async def client(google: GoogleDouble, config: GoogleConfig) -> GoogleCalendarClient:
    return GoogleCalendarClient(config, await connect(google, config))


async def connect(
    google: GoogleDouble, config: GoogleConfig, granted_scopes: list[str] | None = None
) -> GoogleCredentials:
    """The whole CAL-1 dance: start, the owner allows, the callback finishes."""
    oauth = GoogleOAuth(config)
    start = await oauth.start("signed-state")
    redirect = google.consent(start.url, account_email=OWNER, granted_scopes=granted_scopes)
    return await oauth.finish(query_of(redirect), start.verifier)


def query_of(url: str) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(urlsplit(url).query).items()}


def draft(key: str = "booking-1", start: datetime = T0) -> EventDraft:
    return EventDraft(
        idempotency_key=key,
        summary="Intro call",
        start=start,
        end=start + timedelta(minutes=30),
        timezone="Europe/Helsinki",
        attendees=(Attendee(VISITOR, "Vera Visitor"),),
        description="Booked through Kokous",
        location="Video call",
    )


# -- connecting (CAL-1) --------------------------------------------------------------------------


async def test_connect_gives_the_refresh_token_and_the_account_email(
    google: GoogleDouble, config: GoogleConfig
) -> None:
    # covers: CAL-1, OPS-3
    oauth = GoogleOAuth(config)
    start = await oauth.start("signed-state")
    asked = query_of(start.url)
    assert start.url.startswith(f"{google.url}/o/oauth2/auth?")
    assert asked["access_type"] == "offline"
    assert asked["prompt"] == "consent"
    assert asked["code_challenge_method"] == "S256"
    assert asked["state"] == "signed-state"
    assert set(asked["scope"].split()) == {CALENDAR_READONLY, CALENDAR_EVENTS}
    assert asked["client_id"] == google.client_id
    assert asked["redirect_uri"] == REDIRECT_URI

    redirect = google.consent(start.url, account_email=OWNER)
    assert redirect.startswith(REDIRECT_URI)
    assert query_of(redirect)["state"] == "signed-state"
    credentials = await oauth.finish(query_of(redirect), start.verifier)

    assert credentials.account_email == OWNER
    assert credentials.refresh_token.startswith("1//")
    assert credentials.access_token in google.access_tokens_of(OWNER)
    assert credentials.expiry is not None
    assert credentials.expiry > datetime.now(UTC) + timedelta(minutes=50)
    exchange = google.requests_to("POST /token")[0]
    assert query_of("?" + exchange.text)["code_verifier"] == start.verifier["code_verifier"]


async def test_a_wrong_pkce_verifier_is_refused(google: GoogleDouble, config: GoogleConfig) -> None:
    # covers: CAL-1
    oauth = GoogleOAuth(config)
    start = await oauth.start("signed-state")
    code = query_of(google.consent(start.url, account_email=OWNER))["code"]
    with pytest.raises(ProviderAuthError) as refused:
        await oauth.finish({"code": code}, {"code_verifier": "x" * 64})
    assert refused.value.code == "invalid_grant"
    assert google.access_tokens_of(OWNER) == []


async def test_a_consent_without_the_event_scope_is_refused(google: GoogleDouble, config: GoogleConfig) -> None:
    # covers: CAL-1
    with pytest.raises(ProviderAuthError) as refused:
        await connect(google, config, granted_scopes=[CALENDAR_READONLY])
    assert refused.value.code == "insufficient_scope"


async def test_a_token_endpoint_outage_is_unavailable(google: GoogleDouble, config: GoogleConfig) -> None:
    # covers: CAL-1, BOOK-7
    google.fail("POST /token", status=503, body=token_error("temporarily_unavailable", "Try again later."))
    with pytest.raises(ProviderUnavailable):
        await connect(google, config)


async def test_credentials_survive_json(client: GoogleCalendarClient) -> None:
    # covers: CAL-1
    stored = GoogleCredentials.from_json(client.credentials_json())
    assert GoogleCredentials.from_json(stored.to_json()) == stored
    assert stored.account_email == OWNER
    assert stored.expiry is not None
    assert stored.expiry.tzinfo is not None


# -- endpoints and TLS (OPS-3) ---------------------------------------------------------------------


def test_plain_http_endpoints_need_insecure_transport() -> None:
    # covers: OPS-3
    with pytest.raises(ValueError, match="https"):
        GoogleConfig(client_id="c", client_secret="s", redirect_uri=REDIRECT_URI, token_uri="http://127.0.0.1:1/token")
    GoogleConfig(
        client_id="c",
        client_secret="s",
        redirect_uri=REDIRECT_URI,
        token_uri="http://127.0.0.1:1/token",
        insecure_transport=True,
    )


async def test_a_plain_http_double_works_with_insecure_transport() -> None:
    # covers: OPS-3, CAL-1
    with GoogleDouble() as google:
        google.add_account(OWNER)
        config = GoogleConfig(**google.config_for(REDIRECT_URI))
        assert config.insecure_transport
        assert config.auth_uri.startswith("http://")
        client = GoogleCalendarClient(config, await connect(google, config))
        assert [calendar.external_id for calendar in await client.list_calendars()] == [OWNER]


async def test_the_ca_bundle_is_what_makes_the_double_trusted(google: GoogleDouble, config: GoogleConfig) -> None:
    # covers: OPS-3
    untrusting = replace(config, ca_bundle=None)
    with pytest.raises(ProviderUnavailable, match="certificate"):
        await connect(google, untrusting)


# -- calendars (CAL-6) -------------------------------------------------------------------------------


async def test_calendars_are_listed_with_their_access_across_pages(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: CAL-6
    google.add_calendar(OWNER, "team@group.calendar.google.com", summary="Team", access_role="writer")
    google.add_calendar(OWNER, "boss@example.com", summary="Boss", access_role="reader", time_zone="America/New_York")
    google.add_calendar(OWNER, "room@example.com", summary="Room", access_role="freeBusyReader")
    google.add_calendar(OWNER, "side@group.calendar.google.com", summary="Side", access_role="owner")

    calendars = {calendar.external_id: calendar for calendar in await client.list_calendars()}

    assert len(google.requests_to("GET /calendar/v3/users/me/calendarList")) == 2  # pages of 3
    assert {key: value.access for key, value in calendars.items()} == {
        OWNER: CalendarAccess.OWNER,
        "team@group.calendar.google.com": CalendarAccess.WRITER,
        "boss@example.com": CalendarAccess.READER,
        "room@example.com": CalendarAccess.FREE_BUSY,
        "side@group.calendar.google.com": CalendarAccess.OWNER,
    }
    assert [key for key, value in calendars.items() if value.primary] == [OWNER]
    assert calendars[OWNER].timezone == "Europe/Helsinki"
    assert calendars["boss@example.com"].timezone == "America/New_York"
    assert calendars["boss@example.com"].name == "Boss"
    assert not calendars["room@example.com"].access.may_integrate


# -- busy time -----------------------------------------------------------------------------------------


async def test_a_200_day_window_is_asked_in_pieces_of_at_most_90_days(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: CAL-6, BOOK-2
    early = (T0 + timedelta(days=10), T0 + timedelta(days=10, hours=1))
    middle = (T0 + timedelta(days=100), T0 + timedelta(days=100, hours=2))
    late = (T0 + timedelta(days=190), T0 + timedelta(days=190, minutes=45))
    outside = (T0 + timedelta(days=201), T0 + timedelta(days=201, hours=1))
    for start, end in (early, middle, late, outside):
        google.add_busy(OWNER, start, end)

    blocks = await client.busy_intervals([OWNER], T0, T0 + timedelta(days=200))

    assert blocks == [BusyBlock(OWNER, start, end) for start, end in (early, middle, late)]
    windows = [request.json() for request in google.requests_to("POST /calendar/v3/freeBusy")]
    assert len(windows) >= 3
    spans = [(parse(window["timeMin"]), parse(window["timeMax"])) for window in windows]
    assert all(end - start <= timedelta(days=90) for start, end in spans)
    assert spans[0][0] == T0
    assert spans[-1][1] == T0 + timedelta(days=200)
    assert all(spans[index][1] == spans[index + 1][0] for index in range(len(spans) - 1))


async def test_sixty_calendars_are_asked_in_batches_of_at_most_50(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: CAL-6
    ids = [f"shared-{index:02d}@example.com" for index in range(60)]
    for calendar_id in ids:
        google.add_calendar(OWNER, calendar_id, access_role="reader")
    google.add_busy(ids[0], T0, T0 + timedelta(hours=1))
    google.add_busy(ids[59], T0 + timedelta(hours=2), T0 + timedelta(hours=3))

    blocks = await client.busy_intervals(ids, T0, T0 + timedelta(days=7))

    assert blocks == [
        BusyBlock(ids[0], T0, T0 + timedelta(hours=1)),
        BusyBlock(ids[59], T0 + timedelta(hours=2), T0 + timedelta(hours=3)),
    ]
    batches = [len(request.json()["items"]) for request in google.requests_to("POST /calendar/v3/freeBusy")]
    assert sorted(batches) == [10, 50]


async def test_a_calendar_google_cannot_see_any_more_is_not_found(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: INACT-1
    with pytest.raises(CalendarGone) as missing:
        await client.busy_intervals([OWNER, "gone@example.com"], T0, T0 + timedelta(days=1))
    assert missing.value.code == "notFound"
    assert missing.value.calendar_id == "gone@example.com"  # the account's other calendars still work


async def test_naive_datetimes_are_refused(google: GoogleDouble, client: GoogleCalendarClient) -> None:
    # covers: BOOK-2
    naive = datetime(2026, 3, 2, 8, 0)
    google.clear_requests()
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.busy_intervals([OWNER], naive, naive + timedelta(days=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.create_event(OWNER, draft(start=naive))
    with pytest.raises(ValueError, match="timezone-aware"):
        GoogleCredentials(refresh_token="r", account_email=OWNER, expiry=naive)
    assert google.requests == []


# -- tokens (INACT-1) ----------------------------------------------------------------------------------


async def test_an_expired_access_token_is_refreshed_and_kept(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: INACT-1, CAL-1
    before = GoogleCredentials.from_json(client.credentials_json())
    google.expire_access_tokens()

    assert [calendar.external_id for calendar in await client.list_calendars()] == [OWNER]

    after = GoogleCredentials.from_json(client.credentials_json())
    assert after.refresh_token == before.refresh_token
    assert after.access_token != before.access_token
    assert google.access_tokens_of(OWNER) == [after.access_token]
    assert [request.method for request in google.requests if request.path != "/o/oauth2/auth"][-3:] == [
        "GET",  # 401
        "POST",  # refresh
        "GET",  # answered
    ]


async def test_a_stored_token_past_its_expiry_is_refreshed_before_the_call(
    google: GoogleDouble, config: GoogleConfig
) -> None:
    # covers: INACT-1, CAL-1
    stored = await connect(google, config)
    stale = replace(stored, access_token="ya29.stale", expiry=datetime.now(UTC) - timedelta(minutes=1))
    google.clear_requests()
    client = GoogleCalendarClient(config, stale)

    await client.list_calendars()

    assert [f"{request.method} {request.path}" for request in google.requests] == [
        "POST /token",
        "GET /calendar/v3/users/me/calendarList",
    ]
    expiry = GoogleCredentials.from_json(client.credentials_json()).expiry
    assert expiry is not None
    assert expiry > datetime.now(UTC)


async def test_a_revoked_grant_is_an_auth_error(google: GoogleDouble, client: GoogleCalendarClient) -> None:
    # covers: INACT-1
    google.revoke(OWNER)
    with pytest.raises(ProviderAuthError) as lost:
        await client.list_calendars()
    assert lost.value.code == "invalid_grant"


async def test_a_refused_server_client_is_not_the_owners_lost_access(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: INACT-1
    google.expire_access_tokens()
    google.fail("POST /token", status=401, body=token_error("invalid_client", "The OAuth client was not found."))
    with pytest.raises(ProviderMisconfigured) as refused:
        await client.list_calendars()
    assert refused.value.code == "invalid_client"
    assert not isinstance(refused.value, ProviderAuthError)  # the owner cannot fix it by reconnecting
    assert isinstance(refused.value, ProviderUnavailable)  # retried like an outage
    assert len(await client.list_calendars()) >= 1  # the setting fixed: the same grant still works


async def test_a_401_that_refreshing_does_not_cure_is_an_auth_error(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: INACT-1
    google.fail(
        "GET /calendar/v3/users/me/calendarList",
        status=401,
        body=google_error(401, "authError", "Invalid Credentials"),
        times=3,
    )
    with pytest.raises(ProviderAuthError) as lost:
        await client.list_calendars()
    assert lost.value.code == "authError"


async def test_writing_without_writer_access_is_an_auth_error(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: INACT-1
    google.add_calendar(OWNER, "boss@example.com", access_role="reader")
    with pytest.raises(ProviderAuthError) as lost:
        await client.create_event("boss@example.com", draft())
    assert lost.value.code == "requiredAccessLevel"


# -- writing events (BOOK-2, BOOK-7) ----------------------------------------------------------------


async def test_visitor_text_reaches_google_as_text_not_html(google: GoogleDouble, client: GoogleCalendarClient) -> None:
    # covers: SEC-2, BOOK-2
    # Google reads descriptions as HTML and mails the invitation from the owner's account.
    written = 'Agenda: <a href="https://evil.example">Reset your password</a> & <b>more</b>'
    await client.create_event(OWNER, replace(draft(), description=written))
    [event] = google.events_on(OWNER)
    assert "<a" not in event["description"]
    assert "<b>" not in event["description"]
    assert html.unescape(event["description"]) == written  # shown exactly as typed


async def test_create_event_writes_one_event_with_the_invitee(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: BOOK-2
    written = await client.create_event(OWNER, draft())

    [event] = google.events_on(OWNER)
    assert written.calendar_id == OWNER
    assert written.event_id == event["id"] == event_id_for("booking-1")
    assert [(attendee["email"], attendee["displayName"]) for attendee in event["attendees"]] == [
        (VISITOR, "Vera Visitor")
    ]
    assert event["summary"] == "Intro call"
    assert event["description"] == "Booked through Kokous"
    assert event["location"] == "Video call"
    assert event["start"] == {"dateTime": "2026-03-02T10:00:00+02:00", "timeZone": "Europe/Helsinki"}
    assert event["end"] == {"dateTime": "2026-03-02T10:30:00+02:00", "timeZone": "Europe/Helsinki"}
    [insert] = google.requests_to("POST /calendar/v3/calendars/")
    assert query_of("?" + insert.query)["sendUpdates"] == "all"
    assert await client.busy_intervals([OWNER], T0, T0 + timedelta(hours=1)) == [
        BusyBlock(OWNER, T0, T0 + timedelta(minutes=30))
    ]


async def test_creating_twice_with_one_key_makes_one_event(google: GoogleDouble, client: GoogleCalendarClient) -> None:
    # covers: BOOK-7, BOOK-2
    first = await client.create_event(OWNER, draft())
    second = await client.create_event(OWNER, draft())

    assert first == second
    assert [event["id"] for event in google.events_on(OWNER)] == [first.event_id]
    assert len(google.requests_to("POST /calendar/v3/calendars/")) == 2  # the second got 409, then a GET
    assert len(google.requests_to(f"GET /calendar/v3/calendars/{OWNER}/events/{first.event_id}")) == 1


async def test_a_500_on_insert_then_a_retry_makes_one_event(google: GoogleDouble, client: GoogleCalendarClient) -> None:
    # covers: BOOK-7
    google.fail("POST /calendar/v3/calendars/", status=500, body=google_error(500, "backendError", "Backend Error"))
    with pytest.raises(ProviderUnavailable):
        await client.create_event(OWNER, draft())
    assert google.events_on(OWNER) == []

    written = await client.create_event(OWNER, draft())

    assert [event["id"] for event in google.events_on(OWNER)] == [written.event_id]


async def test_a_retry_after_a_lost_answer_returns_the_event_already_written(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: BOOK-7
    # The frame's faults answer instead of the real handler, so "written, answer lost" is played
    # as: the insert succeeds, the caller never learns it, and retries with the same key.
    await client.create_event(OWNER, draft(key="booking-lost"))

    retried = await client.create_event(OWNER, draft(key="booking-lost"))

    assert retried.event_id == event_id_for("booking-lost")
    assert len(google.events_on(OWNER)) == 1


async def test_a_429_carries_retry_after(google: GoogleDouble, client: GoogleCalendarClient) -> None:
    # covers: BOOK-7
    body = google_error(429, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits")
    google.fail("POST /calendar/v3/freeBusy", status=429, body=body, headers={"Retry-After": "7"})
    with pytest.raises(ProviderRateLimited) as limited:
        await client.busy_intervals([OWNER], T0, T0 + timedelta(days=1))
    assert limited.value.retry_after == 7


async def test_a_403_rate_limit_is_rate_limited(google: GoogleDouble, client: GoogleCalendarClient) -> None:
    # covers: BOOK-7
    body = google_error(403, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits")
    google.fail("POST /calendar/v3/calendars/", status=403, body=body)
    with pytest.raises(ProviderRateLimited) as limited:
        await client.create_event(OWNER, draft())
    assert limited.value.retry_after is None
    assert limited.value.code == "rateLimitExceeded"


async def test_a_slow_google_is_unavailable(google: GoogleDouble, config: GoogleConfig) -> None:
    # covers: BOOK-7
    client = GoogleCalendarClient(replace(config, timeout=0.5), await connect(google, config))
    google.fail("POST /calendar/v3/freeBusy", delay=1.0)
    with pytest.raises(ProviderUnavailable, match="timed out"):
        await client.busy_intervals([OWNER], T0, T0 + timedelta(days=1))


async def test_update_moves_the_event_and_keeps_the_invitee(google: GoogleDouble, client: GoogleCalendarClient) -> None:
    # covers: BOOK-5
    written = await client.create_event(OWNER, draft())
    moved = await client.update_event(OWNER, written.event_id, draft(start=T0 + timedelta(days=1)))

    [event] = google.events_on(OWNER)
    assert moved == written
    assert event["start"]["dateTime"] == "2026-03-03T10:00:00+02:00"
    assert [attendee["email"] for attendee in event["attendees"]] == [VISITOR]
    assert query_of("?" + google.requests_to("PATCH /calendar/v3/calendars/")[0].query)["sendUpdates"] == "all"


async def test_deleting_is_quiet_when_the_event_is_already_gone(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: BOOK-5, BOOK-7
    written = await client.create_event(OWNER, draft())

    await client.delete_event(OWNER, written.event_id)
    await client.delete_event(OWNER, written.event_id)  # Google answers 410
    await client.delete_event(OWNER, "neverexisted")  # Google answers 404

    assert google.events_on(OWNER) == []
    assert len(google.requests_to("DELETE /calendar/v3/calendars/")) == 3


def test_event_ids_are_valid_for_google_and_stable() -> None:
    # covers: BOOK-7
    first = event_id_for("booking-1")
    assert re.fullmatch(r"[a-v0-9]{5,1024}", first)
    assert event_id_for("booking-1") == first != event_id_for("booking-2")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_revoking_ends_the_grant(google: GoogleDouble, client: GoogleCalendarClient) -> None:
    # covers: CAL-8
    await client.list_calendars()
    await client.revoke()
    assert google.access_tokens_of(OWNER) == []
    google.expire_access_tokens()
    with pytest.raises(ProviderAuthError):
        await client.list_calendars()
    await client.revoke()  # a grant already gone is not an error


async def test_a_calendar_is_made_for_tasks_and_deleted_again(
    google: GoogleDouble, client: GoogleCalendarClient
) -> None:
    # covers: SYNC-4
    made = await client.create_calendar("Kokous tasks")

    (insert,) = [r for r in google.requests if r.method == "POST" and r.path == "/calendar/v3/calendars"]
    assert insert.json() == {"summary": "Kokous tasks"}
    listed = {calendar.external_id: calendar for calendar in await client.list_calendars()}
    assert (listed[made].name, listed[made].access, listed[made].primary) == (
        "Kokous tasks",
        CalendarAccess.OWNER,
        False,
    )

    await client.delete_calendar(made)
    await client.delete_calendar(made)  # already gone: not an error
    assert made not in {calendar.external_id for calendar in await client.list_calendars()}
