"""Connecting calendars over the API: documents, an owner allowed to connect, its connections."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from db.models import Booking
from server.settings import Settings
from tests.doubles.google import GoogleDouble
from tests.doubles.microsoft import CLIENT_ID, CLIENT_SECRET, MicrosoftDouble
from tests.doubles.server import TLSFiles
from tests.support.booking_helpers import NOW, Owner, create_intro_page
from tests.support.clock import MovableClock
from tests.support.live_server import LiveServer, start_live_server
from tests.support.owners import make_owner

CONNECTION_FIELDS = """
fragment ConnectionFields on CalendarConnection {
  id provider accountEmail calendarSync schedulingPages
  calendars { id name isPrimary integrated status inactiveReason accessRole }
}
"""
START = """
mutation($provider: CalendarProvider!) {
  startCalendarConnection(provider: $provider) {
    __typename
    ... on AuthorizationUrl { url }
    ... on Error { message }
    ... on PermissionRequired { setting }
    ... on CalendarConnectionFailed { reason }
    ... on InvalidInput { field }
  }
}
"""
CONNECT_RESULT = """
    __typename
    ...ConnectionFields
    ... on Error { message }
    ... on PermissionRequired { setting }
    ... on CalendarConnectionFailed { reason }
    ... on InvalidInput { field }
"""
CONNECT_EXCHANGE = (
    "mutation($input: ExchangeConnectionInput!) { connectExchangeCalendar(input: $input) {"
    + CONNECT_RESULT
    + "} }"
    + CONNECTION_FIELDS
)
CONNECT_CALDAV = (
    "mutation($input: CalDAVConnectionInput!) { connectCalDAVCalendar(input: $input) {"
    + CONNECT_RESULT
    + "} }"
    + CONNECTION_FIELDS
)
CONFIRM = (
    "mutation($code: String!) { confirmCalendarConnection(code: $code) {" + CONNECT_RESULT + "} }" + CONNECTION_FIELDS
)
CONNECTIONS = "query { me { connections { ...ConnectionFields } } }" + CONNECTION_FIELDS
SET_INTEGRATED = """
mutation($id: ID!, $on: Boolean!) {
  setCalendarIntegrated(calendarId: $id, integrated: $on) {
    __typename ... on Calendar { id integrated } ... on NotFound { message }
  }
}
"""
REMOVE = """
mutation($id: ID!) {
  removeCalendar(calendarId: $id) {
    __typename
    ... on CalendarRemoved { calendarId }
    ... on PrimaryCalendarNotRemovable { message connectionId }
    ... on NotFound { message }
  }
}
"""
DISCONNECT = """
mutation($id: ID!) {
  disconnectCalendarConnection(connectionId: $id) {
    __typename ... on Disconnected { connectionId } ... on NotFound { message }
  }
}
"""
ALLOW_EMAIL_ACCESS = "mutation { updateUserSettings(input: {personalEmailAccess: true}) { personalEmailAccess } }"


async def owner_allowed_to_connect(server: LiveServer, *, with_page: bool = True) -> Owner:
    """An owner with personal email access on (CAL-4) and, unless told otherwise, the intro page."""
    user, token = await make_owner(server.services, f"owner-{uuid.uuid4().hex[:6]}@example.com")
    allowed = await server.graphql(ALLOW_EMAIL_ACCESS, token=token)
    assert allowed["data"]["updateUserSettings"]["personalEmailAccess"] is True, allowed
    page_id = await create_intro_page(server, token) if with_page else ""
    return Owner(user=user, token=token, page_id=page_id)


async def connections(server: LiveServer, token: str) -> list[dict[str, Any]]:
    result = await server.graphql(CONNECTIONS, token=token)
    assert "errors" not in result, result
    return list(result["data"]["me"]["connections"])


async def booking_row(server: LiveServer, booking_id: str) -> Booking:
    async with server.services.db.session() as session:
        row = await session.get(Booking, uuid.UUID(booking_id))
    assert row is not None
    return row


GOOGLE_ACCOUNT = "owner.google@example.com"
GOOGLE_TEAM = "team@group.calendar.google.com"


@contextmanager
def google_in_helsinki() -> Iterator[GoogleDouble]:
    """A Google double with the owner's account, in Helsinki."""
    with GoogleDouble() as double:
        double.add_account(GOOGLE_ACCOUNT, time_zone="Europe/Helsinki")
        yield double


@contextmanager
def google_with_team() -> Iterator[GoogleDouble]:
    """A Google double with the owner's account (in Helsinki) and a team calendar shared with it."""
    with GoogleDouble() as double:
        double.add_account(GOOGLE_ACCOUNT, time_zone="Europe/Helsinki")
        double.add_calendar(GOOGLE_ACCOUNT, GOOGLE_TEAM, summary="Team", access_role="reader")
        yield double


# Fixtures for a module whose server talks to the Google double: a module takes them up with
# ``google, clock, server = GOOGLE_FIXTURES``.


@pytest.fixture(name="google")
def _google_fixture() -> Iterator[GoogleDouble]:
    with google_in_helsinki() as double:
        yield double


@pytest.fixture(name="clock")
def _clock_fixture() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture(name="server")
async def _google_server_fixture(
    settings: Settings, google: GoogleDouble, clock: MovableClock
) -> AsyncIterator[LiveServer]:
    async with start_live_server(with_google(settings, google), clock=clock) as live:
        yield live


GOOGLE_FIXTURES = (_google_fixture, _clock_fixture, _google_server_fixture)

GOOGLE_CALLBACK = "http://127.0.0.1:8000/oauth/google/callback"


def with_google(settings: Settings, google: GoogleDouble) -> Settings:
    """The settings with the Google adapter pointed at the double (OPS-3)."""
    config = google.config_for(GOOGLE_CALLBACK)
    return settings.model_copy(
        update={
            "google_client_id": config["client_id"],
            "google_client_secret": config["client_secret"],
            "google_auth_uri": config["auth_uri"],
            "google_token_uri": config["token_uri"],
            "google_api_endpoint": config["api_endpoint"],
        }
    )


def with_microsoft(settings: Settings, microsoft: MicrosoftDouble, tls: TLSFiles) -> Settings:
    """The settings with the Microsoft adapter pointed at the double, trusting its CA (OPS-3)."""
    return settings.model_copy(
        update={
            "microsoft_client_id": CLIENT_ID,
            "microsoft_client_secret": CLIENT_SECRET,
            "microsoft_authority": microsoft.authority,
            "microsoft_graph_url": microsoft.graph_url,
            "ca_bundle": tls.ca_path,
        }
    )


def confirm_code(location: str) -> str | None:
    """The one-time ``confirm`` code the callback put on the dashboard URL, if any (SEC-3)."""
    return parse_qs(urlsplit(location).query).get("confirm", [None])[0]


async def confirm_connection(server: LiveServer, code: str, token: str) -> dict[str, Any]:
    """``confirmCalendarConnection`` with the owner's token: its result."""
    answer = await server.graphql(CONFIRM, {"code": code}, token=token)
    assert "errors" not in answer, answer
    return dict(answer["data"]["confirmCalendarConnection"])


async def confirmed(server: LiveServer, location: str, token: str) -> str:
    """The dashboard redirect of a finished consent, confirmed by the starting owner (SEC-3): the
    connection exists afterwards. Returns ``location`` unchanged; an error redirect is not confirmed."""
    code = confirm_code(location)
    if code is not None:
        result = await confirm_connection(server, code, token)
        assert result["__typename"] == "CalendarConnection", result
    return location


async def oauth_callback(server: LiveServer, redirect: str, token: str | None = None) -> str:
    """The browser following the provider's redirect to our callback: where it is sent next.

    With the starting owner's ``token`` the pending grant is confirmed as the dashboard would.
    """
    parts = urlsplit(redirect)
    response = await server.http.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 302, response.text
    location = str(response.headers["location"])
    return location if token is None else await confirmed(server, location, token)


async def connect_google(server: LiveServer, google: GoogleDouble, owner: Owner, account: str) -> str:
    """CAL-1 from the start mutation to the dashboard redirect, the owner consenting as ``account``
    and confirming the connection (SEC-3)."""
    started = await server.graphql(START, {"provider": "GOOGLE"}, token=owner.token)
    result = started["data"]["startCalendarConnection"]
    assert result["__typename"] == "AuthorizationUrl", result
    return await oauth_callback(server, google.consent(result["url"], account_email=account), owner.token)


async def connected_with_team_integrated(
    server: LiveServer, google: GoogleDouble
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An owner connected to Google whose Team calendar is integrated too: the connection and Team."""
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, GOOGLE_ACCOUNT)
    (connection,) = await connections(server, owner.token)
    team = next(calendar for calendar in connection["calendars"] if calendar["name"] == "Team")
    on = await server.graphql(SET_INTEGRATED, {"id": team["id"], "on": True}, token=owner.token)
    assert on["data"]["setCalendarIntegrated"]["integrated"] is True
    return connection, team


CALENDAR_SYNC = """
mutation($id: ID!, $on: Boolean!) {
  updateCalendarConnection(id: $id, input: {calendarSync: $on}) { ... on CalendarConnection { calendarSync } }
}
"""


async def set_calendar_sync(server: LiveServer, owner: Owner, on: bool) -> None:
    """Turn calendar sync on or off for the owner's one connection."""
    (connection,) = await connections(server, owner.token)
    result = await server.graphql(CALENDAR_SYNC, {"id": connection["id"], "on": on}, token=owner.token)
    assert "errors" not in result, result
    assert result["data"]["updateCalendarConnection"] == {"calendarSync": on}
