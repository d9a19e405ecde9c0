"""The public booking API against abuse: limits per client address and page, expiring requests,
a daily cap on emails to one address (SEC-2)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from server.settings import Settings
from tests.support.booking_helpers import BOOK_RESULT, NOW, REQUEST, booking_input, owner_with_page, slots
from tests.support.clock import MovableClock
from tests.support.live_server import LiveServer, start_live_server
from tests.support.settings import sqlite_settings
from tests.support.smtp_sink import SmtpSink, smtp_sink

# The production defaults (the tests' environment raises them for every other test).
LIMIT_FIELDS = (
    "rate_limit_client_per_minute",
    "rate_limit_client_per_hour",
    "rate_limit_page_per_minute",
    "rate_limit_bookings_per_day",
    "rate_limit_emails_per_day",
)
DEFAULT_LIMITS: dict[str, Any] = {name: Settings.model_fields[name].default for name in LIMIT_FIELDS}
# Tuesday 1 December 2026 in Helsinki: seven half-hour times, 09:00 to 12:00.
SEVEN_TIMES = {
    "weeklyHours": [{"weekday": "TUESDAY", "start": "09:00", "end": "12:30"}],
    "bookingHorizonDays": 2,
}
TUESDAY = [f"2026-12-01T{hour:02d}:{minute:02d}:00+02:00" for hour in range(9, 13) for minute in (0, 30)][:7]
RESULT = BOOK_RESULT.replace(
    "... on InvalidInput { message field }",
    "... on InvalidInput { message field }\n  ... on RateLimited { message retryAfterSeconds }",
)
CHANGE = """
  __typename
  ... on BookingFields { id status start manageToken }
  ... on NotFound { message }
  ... on InvalidInput { message field }
  ... on RateLimited { message retryAfterSeconds }
"""
CANCEL = f"mutation($token: String!) {{ cancelBookingByToken(token: $token) {{ {CHANGE} }} }}"
RESCHEDULE = f"mutation($token: String!, $start: DateTime!) {{ rescheduleBookingByToken(token: $token, start: $start) {{ {CHANGE} }} }}"
ACCEPT = f"mutation($id: ID!) {{ acceptBookingRequest(id: $id) {{ {CHANGE} }} }}"


async def post(server: LiveServer, client: str, query: str, variables: dict[str, Any], key: str) -> dict[str, Any]:
    """A GraphQL call from ``client`` (uvicorn trusts X-Forwarded-For from loopback, as from a proxy)."""
    response = await server.http.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"x-forwarded-for": client}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return dict(body["data"][key])


async def request(server: LiveServer, client: str, start: str, email: str = "visitor@example.com") -> dict[str, Any]:
    document = REQUEST + RESULT
    return await post(server, client, document, {"input": booking_input(start, email=email)}, "requestMeeting")


def limited_settings(url: str, tmp_path: Path, **overrides: Any) -> Settings:
    return sqlite_settings(url, tmp_path, **{**DEFAULT_LIMITS, **overrides})


async def test_one_address_cannot_take_every_time_of_a_page(sqlite_url: str, tmp_path: Path) -> None:
    # covers: SEC-2
    async with start_live_server(limited_settings(sqlite_url, tmp_path), clock=lambda: NOW) as server:
        await owner_with_page(server, online=False, durations=[30], **SEVEN_TIMES)
        assert await slots(server, "2026-12-01T00:00:00+02:00", "2026-12-02T00:00:00+02:00") == TUESDAY
        answers = [await request(server, "203.0.113.7", start) for start in TUESDAY]
        taken = [answer for answer in answers if answer["__typename"] == "BookingRequest"]
        refused = [answer for answer in answers if answer["__typename"] == "RateLimited"]
        assert len(taken) == DEFAULT_LIMITS["rate_limit_bookings_per_day"] < len(TUESDAY)
        assert len(refused) == len(TUESDAY) - len(taken)
        assert all(0 < answer["retryAfterSeconds"] <= 86_400 for answer in refused)
        free = await slots(server, "2026-12-01T00:00:00+02:00", "2026-12-02T00:00:00+02:00")
        assert free == TUESDAY[len(taken) :]
        # Someone else still gets a time.
        other = await request(server, "198.51.100.2", free[0])
        assert other["__typename"] == "BookingRequest"


async def wait_until_quiet(sink: SmtpSink, at_least: int, quiet: float = 1.0, timeout: float = 20.0) -> None:
    """Until ``at_least`` emails arrived and then none for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        if len(sink.messages) != seen:
            seen, since = len(sink.messages), time.monotonic()
        elif seen >= at_least and time.monotonic() - since >= quiet:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(sink.messages)} emails, expected at least {at_least}")


async def test_request_cancel_reschedule_loops_mail_one_address_at_most_the_cap(
    sqlite_url: str, tmp_path: Path
) -> None:
    # covers: SEC-2
    victim = "victim@example.com"
    with smtp_sink() as sink:
        settings = limited_settings(sqlite_url, tmp_path, smtp_url=sink.url)
        async with start_live_server(settings, clock=lambda: NOW) as server:
            owner = await owner_with_page(server, online=False, durations=[30], **SEVEN_TIMES)
            calls = 0
            for round_ in range(7):  # each round from a fresh address: the per-address limits do not stop it
                client = f"203.0.113.{round_ + 10}"
                requested = await request(server, client, TUESDAY[0], email=victim)
                assert requested["__typename"] == "BookingRequest", requested
                token = requested["manageToken"]
                moved = await post(
                    server, client, RESCHEDULE, {"token": token, "start": TUESDAY[1]}, "rescheduleBookingByToken"
                )
                assert moved["__typename"] == "BookingRequest", moved
                token = moved["manageToken"]  # a reschedule retires the old link
                cancelled = await post(server, client, CANCEL, {"token": token}, "cancelBookingByToken")
                assert cancelled["status"] == "CANCELLED", cancelled
                calls += 3
            assert calls == 21
            cap = DEFAULT_LIMITS["rate_limit_emails_per_day"]
            await wait_until_quiet(sink, at_least=cap + 7)  # the owner hears of each of the seven requests
    to_victim = [mail for mail in sink.messages if victim in mail.rcpt_tos]
    to_owner = [mail for mail in sink.messages if owner.user.email in mail.rcpt_tos]
    assert len(to_victim) == cap < 21
    assert len(to_owner) == 7


async def test_rate_limited_carries_retry_after_and_changes_nothing(sqlite_url: str, tmp_path: Path) -> None:
    # covers: SEC-2
    async with start_live_server(limited_settings(sqlite_url, tmp_path), clock=lambda: NOW) as server:
        owner = await owner_with_page(server, online=False, durations=[30], **SEVEN_TIMES)
        requested = await request(server, "203.0.113.9", TUESDAY[0])
        assert requested["__typename"] == "BookingRequest"
        per_minute = DEFAULT_LIMITS["rate_limit_client_per_minute"]
        for _ in range(per_minute - 1):
            missing = await post(server, "203.0.113.9", CANCEL, {"token": "forged"}, "cancelBookingByToken")
            assert missing["__typename"] == "NotFound"
        cancel = await post(server, "203.0.113.9", CANCEL, {"token": requested["manageToken"]}, "cancelBookingByToken")
        again = await request(server, "203.0.113.9", TUESDAY[1])
        for answer in (cancel, again):
            assert answer["__typename"] == "RateLimited", answer
            assert 1 <= answer["retryAfterSeconds"] <= 60
            assert answer["message"]
        listed = await server.graphql("{ me { bookings(status: REQUESTED) { id status start } } }", token=owner.token)
        assert [row["id"] for row in listed["data"]["me"]["bookings"]] == [requested["id"]]
        assert await slots(server, "2026-12-01T00:00:00+02:00", "2026-12-02T00:00:00+02:00") == TUESDAY[1:]


async def test_an_expired_request_frees_its_time_and_cannot_be_accepted(database_url: str, tmp_path: Path) -> None:
    # covers: SEC-2
    clock = MovableClock(NOW)
    settings = limited_settings(database_url, tmp_path)  # PostgreSQL too: its exclusion constraint
    assert settings.request_ttl_days == 7
    wanted = "2026-12-15T09:00:00+02:00"
    window = ("2026-12-15T00:00:00+02:00", "2026-12-16T00:00:00+02:00")
    async with start_live_server(settings, clock=clock) as server:
        owner = await owner_with_page(
            server, online=False, durations=[30], weeklyHours=[{"weekday": "TUESDAY", "start": "09:00", "end": "10:00"}]
        )
        requested = await request(server, "203.0.113.20", wanted)
        assert requested["__typename"] == "BookingRequest"
        assert wanted not in await slots(server, *window)
        clock.advance(6 * 86_400)
        assert wanted not in await slots(server, *window)  # six days on, it still holds its time
        clock.advance(86_400 + 60)
        assert wanted in await slots(server, *window)
        accepted = await server.graphql(ACCEPT, {"id": requested["id"]}, token=owner.token)
        answer = accepted["data"]["acceptBookingRequest"]
        assert answer["__typename"] == "InvalidInput", answer
        assert "expired" in answer["message"]
        moved = await post(
            server,
            "203.0.113.20",
            RESCHEDULE,
            {"token": requested["manageToken"], "start": "2026-12-15T09:30:00+02:00"},
            "rescheduleBookingByToken",
        )
        assert moved["__typename"] == "InvalidInput", moved
        assert "expired" in moved["message"]
        # Another visitor takes the time; the expired request is declined, without an email.
        other = await request(server, "198.51.100.3", wanted, email="other@example.com")
        assert other["__typename"] == "BookingRequest", other
        assert wanted not in await slots(server, *window)
        declined = await server.graphql("{ me { bookings(status: DECLINED) { id } } }", token=owner.token)
        assert [row["id"] for row in declined["data"]["me"]["bookings"]] == [requested["id"]]


async def test_limits_hold_across_two_servers_sharing_redis(
    sqlite_url: str, tmp_path: Path, redis_url: str, channel_prefix: str
) -> None:
    # covers: SEC-2
    settings = limited_settings(sqlite_url, tmp_path, broadcast_url=redis_url, broadcast_channel_prefix=channel_prefix)
    per_minute = DEFAULT_LIMITS["rate_limit_client_per_minute"]
    async with (
        start_live_server(settings, clock=lambda: NOW) as first,
        start_live_server(settings, clock=lambda: NOW) as second,
    ):
        for index in range(per_minute):
            server = first if index % 2 == 0 else second
            answer = await post(server, "203.0.113.30", CANCEL, {"token": "forged"}, "cancelBookingByToken")
            assert answer["__typename"] == "NotFound", (index, answer)
        for server in (first, second):
            answer = await post(server, "203.0.113.30", CANCEL, {"token": "forged"}, "cancelBookingByToken")
            assert answer["__typename"] == "RateLimited", answer
            assert 1 <= answer["retryAfterSeconds"] <= 60
        other = await post(second, "198.51.100.4", CANCEL, {"token": "forged"}, "cancelBookingByToken")
        assert other["__typename"] == "NotFound"
