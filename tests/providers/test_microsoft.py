"""The Microsoft 365 adapter through real msal and httpx against the HTTPS identity-and-Graph double."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from providers.base import Attendee, BusyBlock, CalendarAccess, EventDraft
from providers.errors import (
    CalendarGone,
    ProviderAuthError,
    ProviderMisconfigured,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRefused,
    ProviderUnavailable,
)
from providers.microsoft import MicrosoftCalendarClient, MicrosoftConfig, MicrosoftCredentials, MicrosoftOAuth
from tests.doubles.microsoft import MicrosoftDouble, query_of
from tests.doubles.server import TLSFiles, make_tls_files

# msal warns on every auth-code flow that is not form_post; the callback is a GET, as clients rely on.
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

OWNER = "anna@contoso.test"
TOKEN_PATH = "POST /common/oauth2/v2.0/token"
JULY_1 = datetime(2026, 7, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("microsoft-tls"))


@pytest.fixture
def double(tls_files: TLSFiles) -> Iterator[MicrosoftDouble]:
    with MicrosoftDouble(tls_files) as server:
        server.add_account(OWNER)
        server.add_calendar(OWNER, "cal-primary", "Calendar", is_default=True)
        yield server


async def connect(double: MicrosoftDouble, config: MicrosoftConfig, email: str = OWNER) -> MicrosoftCredentials:
    """The whole authorization code flow, as the callback handler runs it."""
    oauth = MicrosoftOAuth(config)
    start = await oauth.start("signed-state-1")
    return await oauth.finish(query_of(double.consent(start.url, email)), start.verifier)


@pytest.fixture
async def client(double: MicrosoftDouble) -> AsyncIterator[MicrosoftCalendarClient]:
    config = double.config()
    calendar_client = MicrosoftCalendarClient(config, await connect(double, config))
    try:
        yield calendar_client
    finally:
        await calendar_client.aclose()


def draft(key: str = "booking-1", start: datetime = JULY_1 + timedelta(hours=7)) -> EventDraft:
    return EventDraft(
        idempotency_key=key,
        summary="Intro call",
        start=start,
        end=start + timedelta(minutes=30),
        timezone="Europe/Helsinki",
        attendees=(Attendee("visitor@example.test", "Vera Visitor"),),
        description="Booked through Kokous",
    )


# -- sign-in ------------------------------------------------------------------------------------


async def test_sign_in_trusts_only_the_configured_ca_bundle(
    double: MicrosoftDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # covers: CAL-2, OPS-3
    bogus = tmp_path / "empty.pem"
    bogus.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bogus))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bogus))
    config = double.config()

    credentials = await connect(double, config)

    assert credentials.account_email == OWNER
    assert credentials.home_account_id.endswith(".9188040d-6c67-4c5b-b112-36a304b66dad")
    assert MicrosoftCredentials.from_json(credentials.to_json()) == credentials
    authorize = double.requests_to("GET /common/oauth2/v2.0/authorize")[0]
    sent = dict(item.split("=", 1) for item in authorize.query.split("&"))
    assert sent["code_challenge_method"] == "S256"
    assert "Calendars.ReadWrite" in sent["scope"]
    assert sent["state"] == "signed-state-1"
    assert "grant_type=authorization_code" in double.requests_to(TOKEN_PATH)[0].text
    client = MicrosoftCalendarClient(config, credentials)
    try:
        assert [calendar.external_id for calendar in await client.list_calendars()] == ["cal-primary"]
    finally:
        await client.aclose()


async def test_without_the_ca_bundle_the_double_is_not_trusted(double: MicrosoftDouble) -> None:
    # covers: OPS-3
    with pytest.raises(ProviderUnavailable):
        await MicrosoftOAuth(double.config(ca_bundle=None)).start("state")
    assert double.requests == []


async def test_a_reply_with_another_state_is_refused(double: MicrosoftDouble) -> None:
    # covers: CAL-2
    oauth = MicrosoftOAuth(double.config())
    start = await oauth.start("signed-state-1")
    reply = query_of(double.consent(start.url, OWNER)) | {"state": "forged"}

    with pytest.raises(ProviderAuthError) as caught:
        await oauth.finish(reply, start.verifier)
    assert caught.value.code == "state_mismatch"
    assert double.requests_to(TOKEN_PATH) == []


async def test_a_code_redeemed_twice_is_refused_with_its_aadsts_code(double: MicrosoftDouble) -> None:
    # covers: CAL-2
    oauth = MicrosoftOAuth(double.config())
    start = await oauth.start("signed-state-1")
    reply = query_of(double.consent(start.url, OWNER))
    await oauth.finish(reply, start.verifier)

    with pytest.raises(ProviderAuthError) as caught:
        await oauth.finish(reply, start.verifier)
    assert caught.value.code == "AADSTS54005"


async def test_declined_consent_carries_the_aadsts_code(double: MicrosoftDouble) -> None:
    # covers: CAL-2, INACT-1
    oauth = MicrosoftOAuth(double.config())
    start = await oauth.start("signed-state-1")
    reply = {
        "error": "access_denied",
        "error_description": "AADSTS65004: User declined to consent to access the app.",
        "state": "signed-state-1",
    }

    with pytest.raises(ProviderAuthError) as caught:
        await oauth.finish(reply, start.verifier)
    assert caught.value.code == "AADSTS65004"


# -- calendars and busy time --------------------------------------------------------------------


async def test_calendars_are_paged_and_their_access_mapped(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: CAL-2, CAL-6
    double.add_calendar(OWNER, "cal-birthdays", "Birthdays")
    double.add_calendar(OWNER, "cal-team", "Team", owner_email="boss@contoso.test")
    double.add_calendar(OWNER, "cal-holidays", "Holidays", can_edit=False, owner_email="hr@contoso.test")

    calendars = {calendar.external_id: calendar for calendar in await client.list_calendars()}

    assert {key: (value.access, value.primary) for key, value in calendars.items()} == {
        "cal-primary": (CalendarAccess.OWNER, True),
        "cal-birthdays": (CalendarAccess.OWNER, False),
        "cal-team": (CalendarAccess.WRITER, False),
        "cal-holidays": (CalendarAccess.READER, False),
    }
    assert calendars["cal-team"].name == "Team"
    assert len(double.requests_to("GET /v1.0/me/calendars")) == 2  # page size 2


async def test_busy_time_is_paged_and_leaves_out_free_and_cancelled(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: CAL-2, CAL-6
    double.add_calendar(OWNER, "cal-team", "Team", owner_email="boss@contoso.test")
    at = JULY_1 + timedelta(hours=8)
    for hour, show_as in enumerate(["busy", "tentative", "oof", "free", "workingElsewhere"]):
        double.add_busy(
            "cal-primary", at + timedelta(hours=hour), at + timedelta(hours=hour, minutes=30), show_as=show_as
        )
    double.add_busy("cal-primary", at, at + timedelta(hours=1), cancelled=True)
    double.add_busy("cal-primary", at + timedelta(days=3), at + timedelta(days=3, hours=1))  # outside the window
    double.add_busy("cal-team", at, at + timedelta(hours=2))

    blocks = await client.busy_intervals(["cal-primary", "cal-team"], JULY_1, JULY_1 + timedelta(days=1))

    assert sorted(blocks, key=lambda block: (block.calendar_id, block.start)) == [
        BusyBlock("cal-primary", at, at + timedelta(minutes=30)),
        BusyBlock("cal-primary", at + timedelta(hours=1), at + timedelta(hours=1, minutes=30)),
        BusyBlock("cal-primary", at + timedelta(hours=2), at + timedelta(hours=2, minutes=30)),
        BusyBlock("cal-team", at, at + timedelta(hours=2)),
    ]
    views = double.requests_to("calendarView")
    assert len(views) == 4  # six events at two a page on the primary calendar, one page on the other
    assert all(view.headers["prefer"] == 'outlook.timezone="UTC", odata.maxpagesize=500' for view in views)


async def test_times_in_a_windows_zone_are_converted(double: MicrosoftDouble, client: MicrosoftCalendarClient) -> None:
    # covers: CAL-2
    double.honours_timezone_preference = False  # Graph answers in each event's own zone
    double.add_busy("cal-primary", datetime(2026, 7, 1, 10), datetime(2026, 7, 1, 11), time_zone="FLE Standard Time")
    double.add_busy("cal-primary", datetime(2026, 1, 15, 10), datetime(2026, 1, 15, 11), time_zone="FLE Standard Time")

    summer = await client.busy_intervals(["cal-primary"], JULY_1, JULY_1 + timedelta(days=1))
    winter = await client.busy_intervals(
        ["cal-primary"], datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 1, 16, tzinfo=UTC)
    )

    assert summer == [
        BusyBlock("cal-primary", datetime(2026, 7, 1, 7, tzinfo=UTC), datetime(2026, 7, 1, 8, tzinfo=UTC))
    ]
    assert winter == [
        BusyBlock("cal-primary", datetime(2026, 1, 15, 8, tzinfo=UTC), datetime(2026, 1, 15, 9, tzinfo=UTC))
    ]
    assert double.events_on("cal-primary")[0]["originalStartTimeZone"] == "FLE Standard Time"


async def test_naive_datetimes_are_refused(double: MicrosoftDouble, client: MicrosoftCalendarClient) -> None:
    # covers: CAL-2
    double.clear_requests()
    with pytest.raises(ValueError, match="aware"):
        await client.busy_intervals(["cal-primary"], datetime(2026, 7, 1), datetime(2026, 7, 2))
    with pytest.raises(ValueError, match="aware"):
        await client.create_event("cal-primary", draft(start=datetime(2026, 7, 1, 7)))
    assert double.requests == []


# -- tokens ---------------------------------------------------------------------------------------


async def test_an_expired_access_token_is_refreshed_silently(double: MicrosoftDouble) -> None:
    # covers: CAL-2, INACT-1
    double.token_lifetime = 120  # inside msal's five-minute margin: expired as soon as it is stored
    config = double.config()
    credentials = await connect(double, config)
    client = MicrosoftCalendarClient(config, credentials)
    try:
        await client.list_calendars()
        refreshed = MicrosoftCredentials.from_json(client.credentials_json())
    finally:
        await client.aclose()

    grants = [request.text.split("grant_type=")[1].split("&")[0] for request in double.requests_to(TOKEN_PATH)]
    assert grants == ["authorization_code", "refresh_token"]
    assert len(double.requests_to("GET /v1.0/me/calendars")) == 1  # refreshed before Graph saw the old token
    assert refreshed.token_cache != credentials.token_cache
    assert refreshed.home_account_id == credentials.home_account_id


async def test_a_token_graph_rejects_is_refreshed_once(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: CAL-2, INACT-1
    before = client.credentials_json()
    double.expire_access_tokens()

    assert len(await client.list_calendars()) == 1

    assert [request.method for request in double.requests_to("/v1.0/me/calendars")] == ["GET", "GET"]
    assert "grant_type=refresh_token" in double.requests_to(TOKEN_PATH)[-1].text
    assert client.credentials_json() != before


async def test_a_revoked_grant_is_an_auth_error_with_its_aadsts_code(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: INACT-1
    double.revoke(OWNER)

    with pytest.raises(ProviderAuthError) as caught:
        await client.busy_intervals(["cal-primary"], JULY_1, JULY_1 + timedelta(days=1))
    assert caught.value.code == "AADSTS50173"


async def test_a_wrong_client_secret_is_not_the_owners_lost_access(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: INACT-1
    double.expire_access_tokens()
    wrong_secret = {
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided.",
        "error_codes": [7000215],
    }
    double.fail(TOKEN_PATH, status=401, body=wrong_secret)
    with pytest.raises(ProviderMisconfigured) as caught:
        await client.busy_intervals(["cal-primary"], JULY_1, JULY_1 + timedelta(days=1))
    assert caught.value.code == "AADSTS7000215"
    assert not isinstance(caught.value, ProviderAuthError)
    assert await client.busy_intervals(["cal-primary"], JULY_1, JULY_1 + timedelta(days=1)) == []


async def test_lost_access_to_a_calendar_is_an_auth_error(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: INACT-1
    denied = {"error": {"code": "ErrorAccessDenied", "message": "Access is denied. Check credentials and try again."}}
    double.fail("calendarView", status=403, body=denied)
    with pytest.raises(ProviderAuthError) as caught:
        await client.busy_intervals(["cal-primary"], JULY_1, JULY_1 + timedelta(days=1))
    assert caught.value.code == "ErrorAccessDenied"

    quota = {"error": {"code": "ErrorQuotaExceeded", "message": "The mailbox is over its quota."}}
    double.fail("POST /v1.0/me/calendars", status=403, body=quota)
    with pytest.raises(ProviderRefused):
        await client.create_event("cal-primary", draft())
    with pytest.raises(CalendarGone) as gone:
        await client.busy_intervals(["no-such-calendar"], JULY_1, JULY_1 + timedelta(days=1))
    assert gone.value.calendar_id == "no-such-calendar"


async def test_a_paging_link_to_another_host_is_not_followed(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: CAL-2
    elsewhere = {"value": [], "@odata.nextLink": "https://graph.evil.test/v1.0/me/calendars?$skip=2"}
    double.fail("GET /v1.0/me/calendars", status=200, body=elsewhere)

    with pytest.raises(ProviderRefused):
        await client.list_calendars()


# -- writing events --------------------------------------------------------------------------------


async def test_creating_twice_with_one_key_makes_one_event(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: BOOK-2
    first = await client.create_event("cal-primary", draft())
    second = await client.create_event("cal-primary", draft())

    assert first == second
    [event] = double.events_on("cal-primary")
    assert event["id"] == first.event_id
    assert event["attendees"] == [  # as written, with the response Graph adds
        {
            "emailAddress": {"address": "visitor@example.test", "name": "Vera Visitor"},
            "type": "required",
            "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
        }
    ]
    sent = double.requests_to("POST /v1.0/me/calendars/cal-primary/events")[0].json()
    assert sent["start"] == {"dateTime": "2026-07-01T10:00:00", "timeZone": "FLE Standard Time"}
    assert event["start"] == {"dateTime": "2026-07-01T07:00:00.0000000", "timeZone": "UTC"}
    assert await client.busy_intervals(["cal-primary"], JULY_1, JULY_1 + timedelta(days=1)) == [
        BusyBlock("cal-primary", JULY_1 + timedelta(hours=7), JULY_1 + timedelta(hours=7, minutes=30))
    ]


async def test_a_server_error_then_a_retry_makes_one_event(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: BOOK-7
    double.fail("POST /v1.0/me/calendars", status=500, body={"error": {"code": "generalException", "message": "x"}})
    with pytest.raises(ProviderUnavailable):
        await client.create_event("cal-primary", draft())

    written = await client.create_event("cal-primary", draft())

    assert [event["id"] for event in double.events_on("cal-primary")] == [written.event_id]
    posts = double.requests_to("POST /v1.0/me/calendars/cal-primary/events")
    assert len(posts) == 2
    assert posts[0].json()["transactionId"] == posts[1].json()["transactionId"]


async def test_throttling_carries_retry_after(double: MicrosoftDouble, client: MicrosoftCalendarClient) -> None:
    # covers: BOOK-7
    throttled = {
        "error": {"code": "ApplicationThrottled", "message": "Application is over its MailboxConcurrency limit."}
    }
    double.fail("POST /v1.0/me/calendars", status=429, body=throttled, headers={"Retry-After": "5"})
    with pytest.raises(ProviderRateLimited) as caught:
        await client.create_event("cal-primary", draft())
    assert caught.value.retry_after == 5

    double.fail("POST /v1.0/me/calendars", status=503, body={"error": {"code": "serviceNotAvailable", "message": "x"}})
    with pytest.raises(ProviderUnavailable):
        await client.create_event("cal-primary", draft())
    assert double.events_on("cal-primary") == []


async def test_timeouts_of_graph_and_of_the_token_endpoint_are_unavailable(double: MicrosoftDouble) -> None:
    # covers: BOOK-7
    config = double.config(timeout=0.3)
    client = MicrosoftCalendarClient(config, await connect(double, config))
    try:
        double.fail("POST /v1.0/me/calendars", delay=1.0)
        with pytest.raises(ProviderUnavailable):
            await client.create_event("cal-primary", draft())

        double.expire_access_tokens()
        double.fail(TOKEN_PATH, delay=1.0)
        with pytest.raises(ProviderUnavailable):
            await client.list_calendars()
    finally:
        await client.aclose()


async def test_update_moves_the_event_and_deleting_a_missing_one_is_quiet(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: BOOK-2
    written = await client.create_event("cal-primary", draft())
    moved = await client.update_event("cal-primary", written.event_id, draft(start=JULY_1 + timedelta(hours=9)))

    assert moved == written
    assert double.events_on("cal-primary")[0]["start"]["dateTime"] == "2026-07-01T09:00:00.0000000"
    await client.delete_event("cal-primary", written.event_id)
    assert double.events_on("cal-primary") == []
    await client.delete_event("cal-primary", written.event_id)
    with pytest.raises(ProviderNotFound):
        await client.update_event("cal-primary", written.event_id, draft())


async def test_a_calendar_is_made_for_tasks_and_deleted_again(
    double: MicrosoftDouble, client: MicrosoftCalendarClient
) -> None:
    # covers: SYNC-4
    made = await client.create_calendar("Kokous tasks")

    (create,) = double.requests_to("POST /v1.0/me/calendars")
    assert create.json() == {"name": "Kokous tasks"}
    listed = {calendar.external_id: calendar for calendar in await client.list_calendars()}
    assert (listed[made].name, listed[made].access, listed[made].primary) == (
        "Kokous tasks",
        CalendarAccess.OWNER,
        False,
    )
    with pytest.raises(ProviderRefused):
        await client.create_calendar("Kokous tasks")  # Graph refuses a second calendar of one name

    await client.delete_calendar(made)
    await client.delete_calendar(made)  # already gone: not an error
    assert made not in {calendar.external_id for calendar in await client.list_calendars()}
