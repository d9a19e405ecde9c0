"""A reschedule issues a new manage link and retires the old one; a moved request is no invitation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.settings import Settings
from tests.api.test_booking_email import wait_for_mail
from tests.support.booking_helpers import NOW, book, booking_server, change, manage_token_of, owner_with_page
from tests.support.live_server import LiveServer, start_live_server
from tests.support.settings import sqlite_settings
from tests.support.smtp_sink import smtp_sink

BY_TOKEN = "query($t: String!) { booking(token: $t) { id start } }"
MOVE_BY_LINK = """
mutation($t: String!, $s: DateTime!) {
  rescheduleBookingByToken(token: $t, start: $s) {
    __typename
    ... on BookingFields { id start manageToken }
    ... on NotFound { message }
  }
}
"""


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    async for live in booking_server(settings):
        yield live


async def booking_of(server: LiveServer, token: str) -> dict[str, Any] | None:
    result = await server.graphql(BY_TOKEN, {"t": token})
    assert "errors" not in result, result
    return result["data"]["booking"]  # type: ignore[no-any-return]


async def test_a_reschedule_by_the_owner_retires_the_old_link(server: LiveServer) -> None:
    # covers: SEC-3
    owner = await owner_with_page(server)
    booked = await book(server, "2026-12-01T10:00:00+02:00")
    old = booked["manageToken"]
    assert (await booking_of(server, old)) == {"id": booked["id"], "start": "2026-12-01T10:00:00+02:00"}

    moved = await change(server, "rescheduleBooking", owner.token, id=booked["id"], start="2026-12-01T14:00:00+02:00")
    assert moved["__typename"] == "Booking"
    new = await manage_token_of(server, owner.token, booked["id"])
    assert new != old
    assert await booking_of(server, old) is None
    for mutation, extra in (
        ("rescheduleBookingByToken", {"start": "2026-12-01T15:00:00+02:00"}),
        ("cancelBookingByToken", {}),
    ):
        refused = await change(server, mutation, token=old, **extra)
        assert refused["__typename"] == "NotFound", (mutation, refused)
    assert (await booking_of(server, new)) == {"id": booked["id"], "start": "2026-12-01T14:00:00+02:00"}
    cancelled = await change(server, "cancelBookingByToken", token=new)
    assert (cancelled["__typename"], cancelled["status"]) == ("Booking", "CANCELLED")


async def test_a_reschedule_by_link_answers_the_new_link(server: LiveServer) -> None:
    # covers: SEC-3
    await owner_with_page(server)
    booked = await book(server, "2026-12-01T10:00:00+02:00")
    old = booked["manageToken"]
    result = await server.graphql(MOVE_BY_LINK, {"t": old, "s": "2026-12-01T14:00:00+02:00"})
    moved = result["data"]["rescheduleBookingByToken"]
    assert (moved["__typename"], moved["start"]) == ("Booking", "2026-12-01T14:00:00+02:00")
    assert moved["manageToken"] != old
    assert await booking_of(server, old) is None
    again = await server.graphql(MOVE_BY_LINK, {"t": old, "s": "2026-12-01T15:00:00+02:00"})
    assert again["data"]["rescheduleBookingByToken"]["__typename"] == "NotFound"
    second = await server.graphql(MOVE_BY_LINK, {"t": moved["manageToken"], "s": "2026-12-01T15:00:00+02:00"})
    assert second["data"]["rescheduleBookingByToken"]["__typename"] == "Booking"


async def test_concurrent_moves_by_one_link_change_the_booking_once(server: LiveServer) -> None:
    # covers: SEC-3
    await owner_with_page(server)
    booked = await book(server, "2026-12-01T10:00:00+02:00")
    answers = await asyncio.gather(
        *(
            server.graphql(MOVE_BY_LINK, {"t": booked["manageToken"], "s": start})
            for start in ("2026-12-01T14:00:00+02:00", "2026-12-01T15:00:00+02:00")
        )
    )
    kinds = sorted(answer["data"]["rescheduleBookingByToken"]["__typename"] for answer in answers)
    assert kinds == ["Booking", "NotFound"]


async def test_a_moved_request_mails_no_confirmed_invitation(sqlite_url: str, tmp_path: Path) -> None:
    # covers: SEC-3
    with smtp_sink() as sink:
        settings = sqlite_settings(sqlite_url, tmp_path, smtp_url=sink.url)
        async with start_live_server(settings, clock=lambda: NOW) as server:
            owner = await owner_with_page(server, online=False)
            requested = await book(server, "2026-12-01T10:00:00+02:00", email="vera@example.com")
            assert requested["__typename"] == "BookingRequest"
            await wait_for_mail(sink, 2)  # the invitee's "Requested" and the owner's notice
            by_owner = await change(
                server, "rescheduleBooking", owner.token, id=requested["id"], start="2026-12-01T11:00:00+02:00"
            )
            assert (by_owner["__typename"], by_owner["status"]) == ("BookingRequest", "REQUESTED")
            await wait_for_mail(sink, 3)
            token = await manage_token_of(server, owner.token, requested["id"])
            by_link = await server.graphql(MOVE_BY_LINK, {"t": token, "s": "2026-12-01T13:00:00+02:00"})
            assert by_link["data"]["rescheduleBookingByToken"]["__typename"] == "BookingRequest"
            await wait_for_mail(sink, 4)
            await asyncio.sleep(0.3)  # nothing else follows
    to_invitee = [mail.message for mail in sink.messages if mail.rcpt_tos == ["vera@example.com"]]
    subjects = [str(message["Subject"]) for message in to_invitee]
    assert [subject.split(":")[0] for subject in subjects] == ["Requested", "Request moved", "Request moved"], subjects
    for message in to_invitee:
        assert not any(part.get_content_type() == "text/calendar" for part in message.walk()), message["Subject"]
    assert len(sink.messages) == 4
