"""A server with a fixed clock, an owner with a page, and GraphQL documents for booking."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from db.models import User
from server.settings import Settings
from tests.support.calendar_rows import connect_calendar
from tests.support.live_server import LiveServer, start_live_server
from tests.support.owners import make_owner

# Monday 30 November 2026, 06:00 UTC (08:00 in Helsinki): the tests' "now".
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)

BOOK = """
mutation($input: BookMeetingInput!) {
  bookMeeting(input: $input) { ...BookResult }
}
"""
REQUEST = """
mutation($input: BookMeetingInput!) {
  requestMeeting(input: $input) { ...BookResult }
}
"""
BOOK_RESULT = """
fragment BookResult on BookMeetingResult {
  __typename
  ... on BookingFields { id start end status inviteeEmail inviteeName calendarWrite manageToken source }
  ... on SlotUnavailable { message alternatives { start end } }
  ... on CalendarInactive { message }
  ... on PageNotFound { message }
  ... on InvalidInput { message field }
}
"""
CHANGE_RESULT = """
  __typename
  ... on BookingFields { id start end status calendarWrite }
  ... on SlotUnavailable { message alternatives { start end } }
  ... on NotFound { message }
  ... on InvalidInput { message field }
"""
SLOTS = """
query($slug: String!, $start: DateTime!, $end: DateTime!, $timezone: String!, $duration: Int) {
  schedulingPage(slug: $slug) {
    status
    slots(start: $start, end: $end, timezone: $timezone, duration: $duration) { slots { start end } asOf status }
  }
}
"""
CREATE_PAGE = """
mutation($input: SchedulingPageInput!) {
  createSchedulingPage(input: $input) { __typename ... on SchedulingPage { id } ... on InvalidInput { message } }
}
"""


@dataclass
class Owner:
    user: User
    token: str
    page_id: str


def booking_input(start: str, *, email: str = "visitor@example.com", **extra: Any) -> dict[str, Any]:
    return {
        "slug": "intro",
        "start": start,
        "timezone": "Europe/Helsinki",
        "invitee": {"name": "Vera Visitor", "email": email},
        **extra,
    }


async def book(server: LiveServer, start: str, *, request: bool = False, **extra: Any) -> dict[str, Any]:
    document = (REQUEST if request else BOOK) + BOOK_RESULT
    result = await server.graphql(document, {"input": booking_input(start, **extra)})
    assert "errors" not in result, result
    key = "requestMeeting" if request else "bookMeeting"
    return dict(result["data"][key])


async def slots(server: LiveServer, start: str, end: str, timezone: str = "Europe/Helsinki", **extra: Any) -> list[str]:
    result = await server.graphql(SLOTS, {"slug": "intro", "start": start, "end": end, "timezone": timezone, **extra})
    assert "errors" not in result, result
    return [slot["start"] for slot in result["data"]["schedulingPage"]["slots"]["slots"]]


async def change(server: LiveServer, mutation: str, auth: str | None = None, **variables: Any) -> dict[str, Any]:
    arguments = ", ".join(f"{name}: ${name}" for name in variables)
    declared = ", ".join(f"${name}: {_type(name)}" for name in variables)
    document = f"mutation({declared}) {{ {mutation}({arguments}) {{ {CHANGE_RESULT} }} }}"
    result = await server.graphql(document, variables, token=auth)
    assert "errors" not in result, result
    return dict(result["data"][mutation])


async def manage_token_of(server: LiveServer, owner_token: str, booking_id: str) -> str:
    """The booking's current manage token, as the owner's list shows it (a reschedule issues a new one)."""
    result = await server.graphql("{ me { bookings { id manageToken } } }", token=owner_token)
    assert "errors" not in result, result
    (token,) = [row["manageToken"] for row in result["data"]["me"]["bookings"] if row["id"] == booking_id]
    return str(token)


def _type(name: str) -> str:
    return {"id": "ID!", "start": "DateTime!", "token": "String!"}[name]


async def create_intro_page(server: LiveServer, token: str, **fields: Any) -> str:
    page = {
        "slug": "intro",
        "name": "Intro call",
        "durations": [30, 60],
        "timezone": "Europe/Helsinki",
        "startIncrement": 30,
        "weeklyHours": [{"weekday": day, "start": "09:00", "end": "17:00"} for day in ("MONDAY", "TUESDAY")],
        **fields,
    }
    result = await server.graphql(CREATE_PAGE, {"input": page}, token=token)
    assert result["data"]["createSchedulingPage"]["__typename"] == "SchedulingPage", result
    return str(result["data"]["createSchedulingPage"]["id"])


async def booking_server(settings: Settings) -> AsyncIterator[LiveServer]:
    async with start_live_server(settings, clock=lambda: NOW) as live:
        yield live


async def owner_with_page(server: LiveServer, *, online: bool = True, **page_fields: Any) -> Owner:
    user, token = await make_owner(server.services, f"owner-{uuid.uuid4().hex[:6]}@example.com")
    page_id = await create_intro_page(server, token, **page_fields)
    if online:
        await connect_calendar(server.services, user)
    return Owner(user=user, token=token, page_id=page_id)
