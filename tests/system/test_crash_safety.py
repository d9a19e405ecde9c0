"""``kill -9`` of the server in the middle of a booking loses nothing (BOOK-7, QUALITY "kill -9 … at any point").

A real ``kokous serve`` process writes bookings' events to the Google double, which runs in a
thread of this test process and so outlives the server. The server is killed with SIGKILL
while Google holds the event insert, after Google wrote the event but before the server
recorded it, and after a booking committed but before the outbox worker took it up. A server
restarted on the same port, database and environment then finishes the work: every booking is
there once, with exactly one event on the owner's calendar, and all its emails are sent once.
The outbox lease that makes this quick (10 s, renewed while a worker holds its rows) must not
hand a slow live worker's rows to another worker; the last test checks that.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.utils import parseaddr
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from sqlmodel import col, select

from db.engine import Database
from db.models import Booking, OutboxMessage
from pubsub import EventHub
from scheduling.clock import system_clock
from scheduling.crm.task_calendar import queue_owner
from scheduling.events import EventBus
from scheduling.outbox import LEASE, OutboxWorker
from scheduling.pages.links import LinkBuilder
from scheduling.users import NewUser, UserService
from tests.doubles.google import GoogleDouble
from tests.support.booking_helpers import BOOK, BOOK_RESULT, CREATE_PAGE
from tests.support.clock import MovableClock
from tests.support.connect_helpers import ALLOW_EMAIL_ACCESS, CONFIRM, START, confirm_code
from tests.support.live_server import free_port
from tests.support.polling import eventually
from tests.system.processes import ROOT, ServerProcess, spawn_server

pytestmark = pytest.mark.system

ACCOUNT = "owner.google@example.com"
INSERT = "POST /calendar/v3/calendars/"  # event inserts, and the watch channels beside them
# A planned fault for the insert alone: only an event's body carries attendees (a watch's has none).
INSERT_BODY = '"attendees"'
# Long enough that the kill always comes first; short enough that the double's shutdown, which
# waits for answers still being held, is not slowed down.
HELD = 8.0
# A killed worker's lease runs out, the restarted worker polls, starts and writes: well within this.
RECOVERY = 40.0


@pytest.fixture
def google() -> Iterator[GoogleDouble]:
    with GoogleDouble() as double:
        double.add_account(ACCOUNT)
        yield double


def server_env(database_url: str, folder: Path, port: int, google: GoogleDouble) -> dict[str, str]:
    """One environment for the first and the restarted server: same keys, so stored credentials open."""
    public_url = f"http://127.0.0.1:{port}"
    config = google.config_for(public_url + "/oauth/google/callback")
    return {
        "KOKOUS_DATABASE_URL": database_url,
        "KOKOUS_BROADCAST_URL": "memory://",
        "KOKOUS_PUBLIC_URL": public_url,
        "KOKOUS_SECRET_KEYS": "crash-safety-key-0123456789abcdef",
        "KOKOUS_DATA_DIR": str(folder / "data"),
        "KOKOUS_OUTBOX_DIR": str(folder / "mail"),
        "KOKOUS_LOG_LEVEL": "WARNING",
        "KOKOUS_GOOGLE_CLIENT_ID": config["client_id"],
        "KOKOUS_GOOGLE_CLIENT_SECRET": config["client_secret"],
        "KOKOUS_GOOGLE_AUTH_URI": config["auth_uri"],
        "KOKOUS_GOOGLE_TOKEN_URI": config["token_uri"],
        "KOKOUS_GOOGLE_API_ENDPOINT": config["api_endpoint"],
    }


@contextmanager
def kokous_serve(port: int, env: dict[str, str], log: Path) -> Iterator[ServerProcess]:
    """``kokous serve`` on a given port (a restart takes the same one), stopped at the end if still alive."""
    server = spawn_server(port, env, log, ROOT)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def kill_9(server: ServerProcess) -> None:
    server.process.kill()  # SIGKILL: no shutdown code of ours runs
    server.process.wait(timeout=10)


async def create_owner(database_url: str, email: str) -> str:
    """An owner and their bearer token, as ``kokous users create`` makes them."""
    db = Database(database_url)
    try:
        users = UserService(
            db=db,
            bus=EventBus(EventHub("memory://"), "crash"),
            links=LinkBuilder("http://127.0.0.1"),
            clock=system_clock,
            wake_outbox=lambda: None,
            on_seat_changed=queue_owner,
        )
        created = await users.create(email=email)
    finally:
        await db.dispose()
    assert isinstance(created, NewUser), created
    return created.token


@asynccontextmanager
async def booking_row_locked(database_url: str, booking_id: str) -> AsyncIterator[None]:
    """Hold the booking's row, so the worker's write of DONE waits (and dies with its process)."""
    server = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        async with server.transaction():
            await server.execute("SELECT 1 FROM bookings WHERE id = $1 FOR UPDATE", uuid.UUID(booking_id))
            yield
    finally:
        await server.close()


async def graphql(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert "errors" not in result, result
    return result["data"]


async def owner_with_google_calendar(http: httpx.AsyncClient, google: GoogleDouble, token: str) -> None:
    """Email access on, a page open every day, and Google connected the way the owner's browser does it."""
    await graphql(http, ALLOW_EMAIL_ACCESS, token=token)
    every_day = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
    page = {
        "slug": "intro",
        "name": "Intro call",
        "durations": [30],
        "timezone": "UTC",
        "weeklyHours": [{"weekday": day, "start": "00:00", "end": "24:00"} for day in every_day],
    }
    created = await graphql(http, CREATE_PAGE, {"input": page}, token=token)
    assert created["createSchedulingPage"]["__typename"] == "SchedulingPage", created
    started = await graphql(http, START, {"provider": "GOOGLE"}, token=token)
    redirect = urlsplit(google.consent(started["startCalendarConnection"]["url"], account_email=ACCOUNT))
    answer = await http.get(f"{redirect.path}?{redirect.query}")
    assert answer.status_code == 302, answer.text
    assert "?connected=google&confirm=" in answer.headers["location"], answer.headers["location"]
    code = confirm_code(answer.headers["location"])
    confirmed = await graphql(http, CONFIRM, {"code": code}, token=token)  # SEC-3: the owner confirms
    assert confirmed["confirmCalendarConnection"]["__typename"] == "CalendarConnection", confirmed


def slot(hour: int) -> str:
    """A slot the day after tomorrow (UTC), in the page's open hours on the server's real clock."""
    day = (datetime.now(UTC) + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day + timedelta(hours=hour)).isoformat()


async def book(http: httpx.AsyncClient, start: str, email: str) -> str:
    """The visitor's booking: answered at once with the calendar write still to come."""
    data = await graphql(
        http,
        BOOK + BOOK_RESULT,
        {"input": {"slug": "intro", "start": start, "timezone": "UTC", "invitee": {"name": "Vera", "email": email}}},
    )
    booked = data["bookMeeting"]
    assert (booked["__typename"], booked["calendarWrite"]) == ("Booking", "PENDING"), booked
    return str(booked["id"])


async def bookings(database_url: str) -> list[Booking]:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return list((await session.exec(select(Booking).order_by(col(Booking.start_at)))).all())
    finally:
        await db.dispose()


async def outbox_rows(database_url: str, booking_id: str) -> list[OutboxMessage]:
    db = Database(database_url)
    try:
        async with db.session() as session:
            rows = (await session.exec(select(OutboxMessage))).all()
    finally:
        await db.dispose()
    return [row for row in rows if row.payload.get("booking_id") == uuid.UUID(booking_id).hex]


def inserts(google: GoogleDouble) -> list[str]:
    """The event ids of every insert the double received, held ones included."""
    return [str(request.json()["id"]) for request in google.requests_to(INSERT) if request.path.endswith("/events")]


def mail_to(folder: Path) -> list[str]:
    """Recipients of the emails the servers wrote (no SMTP configured: .eml files)."""
    messages = [message_from_bytes(path.read_bytes()) for path in (folder / "mail").glob("*.eml")]
    return sorted(parseaddr(str(message["To"]))[1] for message in messages)


async def assert_complete(database_url: str, google: GoogleDouble, booking_ids: list[str]) -> None:
    """Each booking once, DONE with its own event, the only events on the calendar; all its work done."""
    rows = await eventually(
        lambda: bookings(database_url),
        lambda rows: all(row.calendar_write == "DONE" for row in rows),
        "every calendar write DONE",
        RECOVERY,
        interval=0.1,
    )
    assert sorted(row.id.hex for row in rows) == sorted(uuid.UUID(booking_id).hex for booking_id in booking_ids)
    events = google.events_on(ACCOUNT)
    assert sorted(event["id"] for event in events) == sorted(str(row.calendar_event_id) for row in rows)
    for row in rows:
        (event,) = [event for event in events if event["id"] == row.calendar_event_id]
        assert [attendee["email"] for attendee in event["attendees"]] == [row.invitee_email]
    for booking_id in booking_ids:
        work = await eventually(
            partial(outbox_rows, database_url, booking_id),
            lambda found: all(message.done_at is not None for message in found),
            "the booking's emails sent",
            RECOVERY,
            interval=0.1,
        )
        assert sorted(message.kind for message in work) == [
            "calendar.create_event",
            "email.booking_confirmed",
            "email.owner_new_booking",
        ]


async def a_server_and_an_owner(
    database_url: str, tmp_path: Path, google: GoogleDouble
) -> tuple[int, dict[str, str], str, str]:
    """A port and environment for the server (kept across its restart), and a new owner: email and token."""
    port = free_port()
    owner = f"owner-{uuid.uuid4().hex[:6]}@example.com"
    return port, server_env(database_url, tmp_path, port, google), owner, await create_owner(database_url, owner)


async def test_a_kill_while_google_holds_the_event_insert_loses_nothing(
    database_url: str, google: GoogleDouble, tmp_path: Path
) -> None:
    # covers: BOOK-7, BOOK-2, BOOK-1
    port, env, owner, token = await a_server_and_an_owner(database_url, tmp_path, google)
    with kokous_serve(port, env, tmp_path / "first.log") as first:
        async with httpx.AsyncClient(base_url=first.base_url, timeout=10) as http:
            await owner_with_google_calendar(http, google, token)
            google.fail(INSERT_BODY, status=500, delay=HELD)  # Google sits on the insert; the worker waits
            booking_id = await book(http, slot(10), "vera@example.com")
        await eventually(
            lambda: inserts(google), lambda ids: len(ids) == 1, "the insert reaching Google", 10, interval=0.1
        )
        kill_9(first)

    (row,) = await bookings(database_url)
    assert (row.calendar_write, row.calendar_event_id) == ("PENDING", None)
    (claimed,) = [m for m in await outbox_rows(database_url, booking_id) if m.kind == "calendar.create_event"]
    assert (claimed.attempts, claimed.done_at, claimed.last_error) == (1, None, None)  # killed mid-call
    assert google.events_on(ACCOUNT) == []

    with kokous_serve(port, env, tmp_path / "restarted.log"):
        await assert_complete(database_url, google, [booking_id])
    first_try, retry = inserts(google)
    assert first_try == retry  # the same event id both times: Google could not have made two
    assert mail_to(tmp_path) == sorted([owner, "vera@example.com"])  # each email once


async def test_a_kill_after_google_wrote_the_event_before_it_was_recorded_makes_no_second_one(
    postgres_url: str, google: GoogleDouble, tmp_path: Path
) -> None:
    # covers: BOOK-7, BOOK-2
    # PostgreSQL only, for the module's time budget: its row lock stops the DONE write and no
    # other; the killed process's blocked UPDATE must then be rolled back, never committed.
    database_url = postgres_url
    port, env, _, token = await a_server_and_an_owner(database_url, tmp_path, google)
    with kokous_serve(port, env, tmp_path / "first.log") as first:
        async with httpx.AsyncClient(base_url=first.base_url, timeout=10) as http:
            await owner_with_google_calendar(http, google, token)
            google.latency = 1.0  # time to take the lock below before Google answers the insert
            booking_id = await book(http, slot(10), "vera@example.com")
        await eventually(
            lambda: inserts(google), lambda ids: len(ids) == 1, "the insert reaching Google", 10, interval=0.1
        )
        async with booking_row_locked(database_url, booking_id):
            await eventually(
                lambda: google.events_on(ACCOUNT),
                lambda events: len(events) == 1,
                "the event written",
                10,
                interval=0.1,
            )
            kill_9(first)
    google.latency = 0.0

    (row,) = await bookings(database_url)
    assert (row.calendar_write, row.calendar_event_id) == ("PENDING", None)  # Google has it; we do not know
    with kokous_serve(port, env, tmp_path / "restarted.log"):
        await assert_complete(database_url, google, [booking_id])
    first_try, retry = inserts(google)
    assert first_try == retry
    # The retry's 409 made the worker look the event up instead of writing a second one.
    assert google.requests_to(f"GET /calendar/v3/calendars/{ACCOUNT}/events/{first_try}")


async def test_a_kill_after_the_commit_before_the_worker_took_the_booking_loses_nothing(
    database_url: str, google: GoogleDouble, tmp_path: Path
) -> None:
    # covers: BOOK-7, BOOK-2, BOOK-1
    port, env, owner, token = await a_server_and_an_owner(database_url, tmp_path, google)
    with kokous_serve(port, env, tmp_path / "first.log") as first:
        async with httpx.AsyncClient(base_url=first.base_url, timeout=10) as http:
            await owner_with_google_calendar(http, google, token)
            # The worker gets stuck on an earlier booking's insert, so the next booking commits
            # and is answered while nobody has taken up its calendar write yet.
            google.fail(INSERT_BODY, status=500, delay=HELD)
            earlier = await book(http, slot(9), "early@example.com")
            await eventually(lambda: inserts(google), lambda ids: len(ids) == 1, "the earlier insert", 10, interval=0.1)
            booking_id = await book(http, slot(11), "vera@example.com")
        kill_9(first)

    assert [row.id.hex for row in await bookings(database_url)] == [uuid.UUID(earlier).hex, uuid.UUID(booking_id).hex]
    untouched = await outbox_rows(database_url, booking_id)
    assert len(untouched) == 3
    assert all((message.attempts, message.done_at) == (0, None) for message in untouched)
    assert len(inserts(google)) == 1  # Google never heard of this booking

    with kokous_serve(port, env, tmp_path / "restarted.log"):
        await assert_complete(database_url, google, [earlier, booking_id])
    assert mail_to(tmp_path) == sorted([owner, owner, "early@example.com", "vera@example.com"])


async def test_a_live_worker_keeps_its_rows_past_the_lease(database_url: str) -> None:
    # covers: BOOK-7
    """The short lease that frees a killed worker's rows must not free a slow live worker's rows."""
    clock = MovableClock(datetime(2026, 11, 30, 6, 0, tzinfo=UTC))
    db = Database(database_url)
    started, release = asyncio.Event(), asyncio.Event()
    calls: list[dict[str, Any]] = []

    async def slow_provider(payload: dict[str, Any]) -> None:
        calls.append(payload)
        started.set()
        if len(calls) == 1:
            await release.wait()

    handlers = {"test.slow_provider": slow_provider}
    try:
        async with db.transaction() as session:
            row = OutboxMessage(kind="test.slow_provider", payload={"booking_id": "slow"}, available_at=clock())
            session.add(row)
        claimed_until = clock() + LEASE
        running = asyncio.create_task(OutboxWorker(db=db, handlers=handlers, clock=clock).run_once())
        try:
            await asyncio.wait_for(started.wait(), 10)
            clock.now += LEASE - timedelta(seconds=1)
            await eventually(
                partial(_available_at, db, row.id), lambda at: at > claimed_until, "the lease renewed", 10, interval=0.1
            )
            clock.now += LEASE - timedelta(seconds=1)  # past the claim's lease, within the renewed one
            assert await OutboxWorker(db=db, handlers=handlers, clock=clock).run_once() == 0
        finally:
            release.set()
            assert await running == 1
        async with db.session() as session:
            done = await session.get(OutboxMessage, row.id)
    finally:
        await db.dispose()
    assert done is not None
    assert (done.attempts, done.done_at is not None, len(calls)) == (1, True, 1)


async def _available_at(db: Database, row_id: uuid.UUID) -> datetime:
    async with db.session() as session:
        row = await session.get(OutboxMessage, row_id)
    assert row is not None
    return row.available_at
