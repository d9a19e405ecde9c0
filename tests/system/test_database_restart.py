"""PostgreSQL restarted, then stopped and started, under a steady stream of bookings.

A private cluster (the shared test server must not be restarted) is migrated, a server runs
on it, and concurrent visitors book over real HTTP, each with an idempotency key and a time of
their own. PostgreSQL restarts (``pg_ctl restart -m fast``), then stops long enough for
requests to meet refused connections, then starts again. Every answer must be a booking or a
typed 503 that says to try again (never a masked error, never a 500); a visitor told to try
again sends the same request again. Counted in the database afterwards: each booking stored
exactly once, under the id its visitor was given.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from db.migrate import migrate
from server.settings import Settings
from tests.support.booking_helpers import BOOK, BOOK_RESULT, booking_input, booking_server, owner_with_page, slots
from tests.support.live_server import LiveServer
from tests.support.polling import eventually
from tests.support.private_postgres import PrivatePostgres, private_postgres

pytestmark = pytest.mark.system

CLIENTS = 8
STEP = 10  # bookings the stream must make between two steps of the test
UNAVAILABLE = "The service is briefly unavailable; try again in a few seconds."
EVERY_DAY = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
PAGE: dict[str, Any] = {
    "durations": [15],
    "startIncrement": 15,
    "bookingHorizonDays": 14,
    "weeklyHours": [{"weekday": day, "start": "00:00", "end": "23:45"} for day in EVERY_DAY],
}


@dataclass
class Told:
    key: str
    status: int
    retry_after: str | None
    body: dict[str, Any]
    text: str


@dataclass
class Stream:
    """Visitors booking one free time after another until told to stop."""

    server: LiveServer
    starts: list[str]
    answers: list[Told] = field(default_factory=list)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    taken: int = 0

    @property
    def booked(self) -> int:
        return sum(answer.status == 200 for answer in self.answers)

    def unavailable_since(self, index: int) -> int:
        return sum(answer.status == 503 for answer in self.answers[index:])

    async def send(self, key: str, start: str) -> Told:
        variables = {"input": booking_input(start, idempotencyKey=key)}
        response = await self.server.http.post("/graphql", json={"query": BOOK + BOOK_RESULT, "variables": variables})
        json = response.headers.get("content-type", "").startswith("application/json")
        body = response.json() if json else {}
        answer = Told(key, response.status_code, response.headers.get("retry-after"), body, response.text)
        self.answers.append(answer)
        return answer

    async def visitor(self) -> None:
        while not self.stopped.is_set() and self.taken < len(self.starts):
            index, self.taken = self.taken, self.taken + 1
            await self.send(f"visitor-{index}", self.starts[index])


@pytest.fixture
async def cluster() -> AsyncIterator[PrivatePostgres]:
    async with private_postgres() as running:
        await migrate(running.url)
        yield running


@pytest.fixture
async def server(cluster: PrivatePostgres, tmp_path: Path) -> AsyncIterator[LiveServer]:
    settings = Settings(
        database_url=cluster.url,
        broadcast_url="memory://",
        data_dir=tmp_path / "data",
        outbox_dir=tmp_path / "outbox",
    )
    async for live in booking_server(settings):
        yield live


def assert_clear(answer: Told) -> None:
    """A booking, or a typed 503 with Retry-After: nothing else, and never a masked error."""
    assert "Unexpected error." not in answer.text, answer
    if answer.status == 503:
        assert answer.retry_after is not None, answer
        assert int(answer.retry_after) > 0
        assert [(e["message"], e["extensions"]["code"]) for e in answer.body["errors"]] == [
            (UNAVAILABLE, "SERVICE_UNAVAILABLE")
        ], answer
        return
    assert answer.status == 200, answer
    assert "errors" not in answer.body, answer
    assert answer.body["data"]["bookMeeting"]["__typename"] == "Booking", answer


async def readiness(server: LiveServer) -> int:
    return (await server.http.get("/readyz")).status_code


async def stored(cluster: PrivatePostgres) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Straight from the database: (idempotency key, booking id) of every booking, and
    (booking id, kind) of every queued email or calendar write."""
    connection = await asyncpg.connect(cluster.url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        bookings = await connection.fetch("SELECT idempotency_key, id FROM bookings")
        queued = await connection.fetch("SELECT payload->>'booking_id' AS booking, kind FROM outbox")
    finally:
        await connection.close()
    return (
        [(row["idempotency_key"], str(row["id"])) for row in bookings],
        [(row["booking"], row["kind"]) for row in queued],
    )


async def test_a_database_restart_loses_nothing_doubles_nothing_and_answers_clearly(
    cluster: PrivatePostgres, server: LiveServer
) -> None:
    # covers: OPS-4, BOOK-3, BOOK-4
    await owner_with_page(server, **PAGE)
    starts = await slots(server, "2026-11-30T00:00:00+02:00", "2026-12-07T00:00:00+02:00", duration=15)
    stream = Stream(server, starts)
    visitors = [asyncio.create_task(stream.visitor()) for _ in range(CLIENTS)]
    try:
        await eventually(lambda: stream.booked, lambda n: n >= STEP, "bookings before the restart")
        await cluster.restart()
        after_restart = stream.booked
        await eventually(lambda: stream.booked, lambda n: n >= after_restart + STEP, "bookings after the restart")

        await cluster.stop()
        stopped_at = len(stream.answers)
        await eventually(lambda: stream.unavailable_since(stopped_at), lambda n: n >= CLIENTS, "503s while down")
        await eventually(lambda: readiness(server), lambda status: status == 503, "not ready while down")
        await cluster.start()
        after_start = stream.booked
        await eventually(lambda: stream.booked, lambda n: n >= after_start + STEP, "bookings once it is back")
        await eventually(lambda: readiness(server), lambda status: status == 200, "ready once it is back")
    finally:
        stream.stopped.set()
        await asyncio.gather(*visitors)
    assert stream.taken < len(starts), "the stream ran out of free times before the test was done"

    for answer in stream.answers:
        assert_clear(answer)
    # Visitors told to try again do, with the same key: now each of them gets a booking.
    told: dict[str, set[str]] = {}
    for answer in stream.answers:
        told.setdefault(answer.key, set())
        if answer.status == 200:
            told[answer.key].add(answer.body["data"]["bookMeeting"]["id"])
    start_of = {f"visitor-{index}": start for index, start in enumerate(starts)}
    for key in [key for key, ids in told.items() if not ids]:
        again = await stream.send(key, start_of[key])
        assert_clear(again)
        assert again.status == 200, again
        told[key].add(again.body["data"]["bookMeeting"]["id"])

    rows, queued = await stored(cluster)
    keys = [key for key, _ in rows]
    assert len(keys) == len(set(keys)), "a booking was stored twice"
    assert len(queued) == len(set(queued)), "an email or calendar write was queued twice"
    assert {uuid.UUID(booking) for booking, _ in queued} == {uuid.UUID(booking) for _, booking in rows}
    assert sorted(keys) == sorted(told), "stored bookings differ from the bookings visitors were given"
    stored_id = dict(rows)
    for key, ids in told.items():
        assert ids == {stored_id[key]}, (key, ids, stored_id[key])  # one booking per key, the stored one
