"""SEC-3: an OAuth consent connects nothing until the owner who started it confirms it.

The signed ``state`` names the owner, not the browser: a consent link finished in someone else's
browser must not connect that person's calendar to the sender. The callback keeps the grant
pending with a one-time code; only the starting owner's token turns it into a connection.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from server.logs import HideQuerySecrets
from server.settings import Settings
from tests.doubles.google import GoogleDouble
from tests.support.booking_helpers import NOW, Owner
from tests.support.clock import MovableClock
from tests.support.connect_helpers import (
    START,
    confirm_code,
    confirm_connection,
    connections,
    oauth_callback,
    owner_allowed_to_connect,
    with_google,
)
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually

ACCOUNT = "owner.google@example.com"
DASHBOARD = "http://127.0.0.1:8000/dashboard"
CALENDAR_LIST = "GET /calendar/v3/users/me/calendarList"


@pytest.fixture
def google() -> Iterator[GoogleDouble]:
    with GoogleDouble() as double:
        double.add_account(ACCOUNT, time_zone="Europe/Helsinki")
        yield double


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
async def server(settings: Settings, google: GoogleDouble, clock: MovableClock) -> AsyncIterator[LiveServer]:
    async with start_live_server(with_google(settings, google), clock=clock) as live:
        yield live


async def consent_link(server: LiveServer, owner: Owner) -> str:
    started = await server.graphql(START, {"provider": "GOOGLE"}, token=owner.token)
    result = started["data"]["startCalendarConnection"]
    assert result["__typename"] == "AuthorizationUrl", result
    return str(result["url"])


async def finished_elsewhere(server: LiveServer, google: GoogleDouble, owner: Owner) -> tuple[str, str]:
    """The owner's consent link finished in some browser (no token of anyone): the callback's
    redirect and the confirmation code it carries."""
    location = await oauth_callback(server, google.consent(await consent_link(server, owner), account_email=ACCOUNT))
    assert location.startswith(f"{DASHBOARD}?connected=google&confirm="), location
    code = confirm_code(location)
    assert code
    return location, code


async def test_a_consent_finished_in_another_browser_connects_nothing_until_the_starting_owner_confirms(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SEC-3, CAL-1
    owner = await owner_allowed_to_connect(server, with_page=False)
    _, code = await finished_elsewhere(server, google, owner)

    assert await connections(server, owner.token) == []  # the callback alone connects nothing
    assert google.requests_to(CALENDAR_LIST) == []  # nor lists the account's calendars

    confirmed = await confirm_connection(server, code, owner.token)
    assert (confirmed["__typename"], confirmed["accountEmail"]) == ("CalendarConnection", ACCOUNT)
    (connection,) = await connections(server, owner.token)
    assert connection["id"] == confirmed["id"]
    assert [calendar["isPrimary"] for calendar in connection["calendars"]] == [True]
    assert google.requests_to(CALENDAR_LIST)  # connected exactly as the callback used to


async def test_another_owners_confirmation_is_refused_and_changes_nothing(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SEC-3
    sender = await owner_allowed_to_connect(server, with_page=False)
    other = await owner_allowed_to_connect(server, with_page=False)
    _, code = await finished_elsewhere(server, google, sender)

    refused = await confirm_connection(server, code, other.token)
    assert refused["__typename"] == "NotFound", refused
    assert await connections(server, other.token) == []
    assert await connections(server, sender.token) == []
    assert google.requests_to("POST /revoke") == []

    anonymous = await server.graphql(
        "mutation($c: String!) { confirmCalendarConnection(code: $c) { __typename } }", {"c": code}
    )
    assert "errors" in anonymous  # owner-only: no token, no answer
    assert await connections(server, sender.token) == []

    still_pending = await confirm_connection(server, code, sender.token)  # the grant waited for the right owner
    assert still_pending["__typename"] == "CalendarConnection", still_pending


async def test_a_confirmation_code_works_once(server: LiveServer, google: GoogleDouble) -> None:
    # covers: SEC-3
    owner = await owner_allowed_to_connect(server, with_page=False)
    _, code = await finished_elsewhere(server, google, owner)
    assert (await confirm_connection(server, code, owner.token))["__typename"] == "CalendarConnection"

    again = await confirm_connection(server, code, owner.token)
    assert again["__typename"] == "NotFound", again
    forged = await confirm_connection(server, code[:-4] + "AAAA", owner.token)
    assert forged["__typename"] == "NotFound", forged
    assert (await confirm_connection(server, "not-a-code", owner.token))["__typename"] == "NotFound"
    assert len(await connections(server, owner.token)) == 1


async def test_an_unconfirmed_grant_expires_after_ten_minutes_and_is_revoked_at_the_provider(
    server: LiveServer, google: GoogleDouble, clock: MovableClock
) -> None:
    # covers: SEC-3
    owner = await owner_allowed_to_connect(server, with_page=False)
    _, code = await finished_elsewhere(server, google, owner)
    assert google.access_tokens_of(ACCOUNT)  # the code was redeemed: Google holds a live grant

    clock.advance(9 * 60)
    await server.services.connections.expire_pending()
    assert google.requests_to("POST /revoke") == []  # not yet expired

    clock.advance(60)
    expired = await confirm_connection(server, code, owner.token)
    assert expired["__typename"] == "NotFound", expired
    await server.services.connections.expire_pending()  # the background pass does this too

    await eventually(lambda: google.requests_to("POST /revoke"), lambda revoked: len(revoked) == 1, "revoked")
    assert google.access_tokens_of(ACCOUNT) == []
    assert await connections(server, owner.token) == []
    assert (await confirm_connection(server, code, owner.token))["__typename"] == "NotFound"


async def test_the_redirect_and_the_access_log_hold_no_oauth_code_state_or_confirmation(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SEC-3, SEC-4
    owner = await owner_allowed_to_connect(server, with_page=False)
    redirect = google.consent(await consent_link(server, owner), account_email=ACCOUNT)
    callback = urlsplit(redirect)
    sent = parse_qs(callback.query)
    location = await oauth_callback(server, redirect)

    assert set(parse_qs(urlsplit(location).query)) == {"connected", "confirm"}  # no code, no state
    assert sent["code"][0] not in location
    assert sent["state"][0] not in location
    confirmation = confirm_code(location)
    assert confirmation

    secrets = (sent["code"][0], sent["state"][0], confirmation)
    for path in (f"{callback.path}?{callback.query}", urlsplit(location).path + "?" + urlsplit(location).query):
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("ip", "GET", path, "1.1", 302),
            None,
        )
        assert HideQuerySecrets().filter(record)
        line = record.getMessage()
        assert not any(secret in line for secret in secrets), line
