"""B5: 50 clients race for one slot (20 rounds); then what one booking costs.

One ``kokous serve`` process (one worker) per backend, SQLite then PostgreSQL (a private
database, dropped at the end). The page is open every day 08:00-20:00 UTC in 30-minute slots.

* **Race**: each round, 50 keep-alive connections (benchmarks/loadgen.py) send ``bookMeeting``
  for the same start at once (different invitees). Counted: ``Booking`` (the winner),
  ``SlotUnavailable``, and anything else (GraphQL errors, other results, HTTP errors).
* **Throughput** (informative): 50 connections each book a different slot at once, vs one
  connection booking 50 slots one after another, alternating ``THROUGHPUT_ROUNDS`` times. Its
  old target (concurrent >= 3x sequential) is retired: on 2 cores a CPU-bound chain cannot
  reach it, so the cost of one booking is what is held to a bar instead.
* **Cost per booking**: in-process, one booking at a time, the server's CPU from the request's
  arrival to its commit (the outbox worker's emails run after it and are not counted: after
  each booking, on both sides, the run waits until the outbox has nothing due) against
  a bare-driver booking (benchmarks/rawdb.py) doing the same work in the same minutes: read the
  page, the calendars, busy rows and bookings around the slot, then in one write transaction
  lock the owner, check for an overlapping booking, insert the contact, the booking and its
  outbox rows, commit. The SQL statements of each server booking are counted by text, those
  sent straight to the driver (``db/plain.py``) too.

At the end the confirmed bookings stored in the database are counted and compared with the
winners the clients saw.
"""

from __future__ import annotations

import asyncio
import contextvars
import cProfile
import json
import pstats
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event, func
from sqlmodel import col, select

from benchmarks import Run, benchmark
from benchmarks.b1_slots import (
    Buckets,
    InProcess,
    _timed_async,
    in_process,
    note_cprofile,
    per_unit_ms,
    profile_text,
    sql_timer,
)
from benchmarks.loadgen import Connection, close_connections, exchange, open_connections, post_request
from benchmarks.rawdb import RawDb
from benchmarks.seed import SLOTS, book_body, every_day, seed_busy_owner
from benchmarks.servers import ServerProcess, on_each_database, serve, server_env
from benchmarks.stats import Summary
from db.plain import watched

CLIENTS = 50
RACE_ROUNDS = 20
THROUGHPUT_ROUNDS = 2  # x (50 concurrent + 50 sequential) bookings
PROFILE_BOOKINGS = 20  # sequential, in-process, per pass (timed, then under cProfile)
COST_ROUNDS, COST_BATCH = 3, 10  # x (10 server bookings, 10 bare-driver bookings), alternating
OUTBOX_SETTLE = 0.15  # seconds after each profiled booking: its emails go out before the next one
AFTER_DRAIN = 0.05  # seconds for the outbox worker's last, empty claim once nothing is due
WINDOW_DAYS = 20
TARGET_COST_RATIO = 4.0  # server CPU per booking (request to commit) <= 4x the bare driver's
WORKERS = 2  # PostgreSQL runs scaled out: one worker process per core


@dataclass
class Race:
    rounds: list[Counter[str]] = field(default_factory=list)
    first_error: str | None = None
    latencies: list[float] = field(default_factory=list)


class EmailBacklog:
    """The emails the outbox has not sent yet, counted straight from the database."""

    def __init__(self, database_url: str) -> None:
        from db.engine import Database

        self._db = Database(database_url)

    async def pending(self) -> int:
        from db.models import OutboxMessage

        statement = select(func.count(col(OutboxMessage.id))).where(
            col(OutboxMessage.done_at).is_(None), col(OutboxMessage.kind).startswith("email.")
        )
        async with self._db.session() as session:
            return int((await session.exec(statement)).one())

    async def due(self) -> int:
        """Outbox rows of any kind due now and not done (the bare driver's parked rows are not due)."""
        from db.models import OutboxMessage

        statement = select(func.count(col(OutboxMessage.id))).where(
            col(OutboxMessage.done_at).is_(None), col(OutboxMessage.available_at) <= datetime.now(UTC)
        )
        async with self._db.session() as session:
            return int((await session.exec(statement)).one())

    async def settle(self) -> None:
        """The pause after each measured booking, the same on both sides: ``OUTBOX_SETTLE``, and
        longer while the outbox still works on a booking's emails and calendar write, so none of
        that work runs (and is counted) inside the next booking."""
        await asyncio.sleep(OUTBOX_SETTLE)
        for _ in range(6_000):  # at most a minute
            if not await self.due():
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(AFTER_DRAIN)

    async def drain(self, within: float = 60.0) -> float:
        """Seconds until no email is pending (polled every 20 ms); NaN after ``within``."""
        started = time.perf_counter()
        while await self.pending():
            if time.perf_counter() - started > within:
                return float("nan")
            await asyncio.sleep(0.02)
        return time.perf_counter() - started

    async def close(self) -> None:
        await self._db.dispose()


@dataclass
class Throughput:
    concurrent_seconds: float = 0.0
    sequential_seconds: float = 0.0
    concurrent_emails: float = 0.0  # seconds after the last answer until the side's emails were out
    sequential_emails: float = 0.0
    bookings: int = 0  # per side
    failures: int = 0
    first_failure: str | None = None
    concurrent_latencies: list[float] = field(default_factory=list)
    sequential_latencies: list[float] = field(default_factory=list)

    @property
    def concurrent_rate(self) -> float:
        return self.bookings / self.concurrent_seconds

    @property
    def with_emails_ratio(self) -> float:
        """The ratio when each side's time runs until its confirmation emails were written too."""
        concurrent = self.concurrent_seconds + self.concurrent_emails
        return (self.sequential_seconds + self.sequential_emails) / concurrent

    @property
    def sequential_rate(self) -> float:
        return self.bookings / self.sequential_seconds


@dataclass
class BookingProfile:
    wall_ms: float  # server-side wall time per booking, one at a time
    cpu_ms: float  # CPU of this process per booking, the outbox worker's emails included
    request_cpu_ms: float  # CPU while the booking request was being answered
    server: Cost  # request to commit, alternating with ``bare``
    bare: Cost  # the same booking with the bare driver
    bare_statements: int  # per bare-driver booking, BEGIN and COMMIT included
    layers_ms: dict[str, float]
    sql_statements: float
    sql_ms: float
    categories_ms: dict[str, float]
    text: str


@dataclass
class Outcome:
    backend: str
    race: Race
    throughput: Throughput
    stored: int  # confirmed bookings in the database at the end
    seen: int  # bookings the clients were told about
    profile: BookingProfile


def _defining(owner: type, name: str) -> type:
    return next(klass for klass in owner.__mro__ if name in klass.__dict__)


@contextmanager
def booking_layers(buckets: Buckets, sql: Buckets) -> Iterator[None]:
    """Wall-clock timers around the steps of ``BookingService.book`` (this process only, undone after)."""
    from scheduling.booking.book import BookingService
    from scheduling.notifications.mailer import Mailer
    from scheduling.outbox import OutboxWorker
    from scheduling.pages.service import PageService

    steps: list[tuple[Any, str, str, Buckets | None]] = [
        (PageService, "public_page", "page lookup", sql),
        (BookingService, "_has_inactive_calendar", "inactive-calendar check", sql),
        (BookingService, "_insert", "locked transaction (lock, availability, contact, insert, commit)", sql),
        (BookingService, "_announce", "publish events", None),
        (OutboxWorker, "run_once", "outbox worker after the booking", None),
        (OutboxWorker, "_claim", "outbox: claim transactions", sql),
        (OutboxWorker, "_process", "outbox: 2 emails (load, build, write, mark done)", None),
        (OutboxWorker, "_finish", "outbox: mark-done transactions", sql),
        (Mailer, "send", "outbox: email serialised and written (thread)", None),
    ]
    # A method is wrapped where it is defined (a base class, e.g. BookingChecks), and put back there.
    steps = [(_defining(owner, name), name, label, timer) for owner, name, label, timer in steps]
    originals = [(owner, name, owner.__dict__[name]) for owner, name, _, _ in steps]
    for owner, name, label, timer in steps:
        setattr(owner, name, _timed_async(getattr(owner, name), buckets, label, timer))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


async def profile_bookings(database_url: str, slug: str, starts: list[str]) -> BookingProfile:
    """Sequential bookings in-process: the cost against the bare driver, then wall per step and
    CPU per booking, then a cProfile pass."""
    costed = COST_ROUNDS * COST_BATCH
    if len(starts) < 2 * PROFILE_BOOKINGS + 5 + 2 * costed + 4:
        raise RuntimeError("not enough free slots left to profile bookings")
    starts, for_cost = starts[: 2 * PROFILE_BOOKINGS + 5], starts[2 * PROFILE_BOOKINGS + 5 :]
    async with in_process(database_url) as server:
        backlog = EmailBacklog(database_url)
        try:
            await backlog.drain()  # whatever the server process left is sent before measuring
            for index, start in enumerate(starts[:5]):
                await server.post(book_body(slug, start, f"warm-{index}@example.com"))
            await backlog.settle()
            ours, bare, bare_statements = await booking_cost(
                server, database_url, slug, for_cost[0::2][:costed], for_cost[1::2][: costed + 2]
            )
            server.requests.seconds.clear()
            layers = Buckets()
            sql, remove = sql_timer(server.app.state.services.db.engine.sync_engine)
            cpu, request_cpu = time.process_time(), 0.0
            try:
                with booking_layers(layers, sql):
                    for index, start in enumerate(starts[5 : 5 + PROFILE_BOOKINGS]):
                        before = time.process_time()
                        answer = await server.post(book_body(slug, start, f"profile-{index}@example.com"))
                        request_cpu += time.process_time() - before
                        if answer["data"]["bookMeeting"]["__typename"] != "Booking":
                            raise RuntimeError(f"profiled booking failed: {answer}")
                        await asyncio.sleep(OUTBOX_SETTLE)  # the steps (and their SQL) never overlap
            finally:
                remove()
            cpu = time.process_time() - cpu
            wall = server.requests.seconds["request"]
            # Only while each request is answered: the emails the outbox worker sends after it are apart.
            profiler = cProfile.Profile()
            for index, start in enumerate(starts[5 + PROFILE_BOOKINGS : 5 + 2 * PROFILE_BOOKINGS]):
                profiler.enable()
                await server.post(book_body(slug, start, f"cprofile-{index}@example.com"))
                profiler.disable()
                await backlog.settle()
        finally:
            await backlog.close()
    stats = pstats.Stats(profiler)
    header = f"cProfile of {PROFILE_BOOKINGS} sequential booking requests in-process (main thread), emails apart"
    return BookingProfile(
        wall_ms=wall / PROFILE_BOOKINGS * 1000,
        cpu_ms=cpu / PROFILE_BOOKINGS * 1000,
        request_cpu_ms=request_cpu / PROFILE_BOOKINGS * 1000,
        server=ours,
        bare=bare,
        bare_statements=bare_statements,
        layers_ms={name: value / PROFILE_BOOKINGS * 1000 for name, value in layers.seconds.items()},
        sql_statements=sql.counts["sql"] / PROFILE_BOOKINGS,
        sql_ms=sql.seconds["sql"] / PROFILE_BOOKINGS * 1000,
        categories_ms=per_unit_ms(stats, PROFILE_BOOKINGS),
        text=profile_text(profiler, header),
    )


# -- cost per booking: the server against a bare-driver booking ------------------------------

IN_BOOKING: contextvars.ContextVar[bool] = contextvars.ContextVar("in_booking", default=False)


@dataclass
class Cost:
    """Sums over the measured bookings of one side."""

    bookings: int = 0
    commit_cpu: float = 0.0  # seconds of process CPU, request arrival to commit
    request_cpu: float = 0.0  # the same to the last byte of the answer
    wall: float = 0.0
    statements: Counter[str] = field(default_factory=Counter)

    def per_booking_ms(self, seconds: float) -> float:
        return seconds / self.bookings * 1000 if self.bookings else float("nan")


@contextmanager
def statement_counter(engine: Any, counts: Counter[str]) -> Iterator[None]:
    """Counts, by text, the statements run for a booking request (``IN_BOOKING`` set in its
    context), and the transaction round trips the driver makes without a cursor."""
    postgres = engine.dialect.name == "postgresql"  # SQLite's BEGIN is a statement the server runs

    def statement(_conn: Any, _cursor: Any, text: str, *_: Any) -> None:
        if IN_BOOKING.get():
            counts[" ".join(text.split())] += 1

    def marker(label: str) -> Callable[..., None]:
        def count(*_: Any) -> None:
            if IN_BOOKING.get():
                counts[label] += 1

        return count

    listeners: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", statement),
        ("commit", marker("COMMIT (driver)")),
        ("rollback", marker("ROLLBACK (driver)")),
    ]
    if postgres:
        listeners.append(("begin", marker("BEGIN (driver)")))
    for name, listener in listeners:
        event.listen(engine, name, listener)

    def on_the_driver(text: str, _seconds: float) -> None:
        statement(None, None, text)

    try:
        with watched(on_the_driver):
            yield
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)


@contextmanager
def commit_marks(marks: list[float]) -> Iterator[None]:
    """Process CPU time when ``BookingService._insert`` returns: its transaction has committed."""
    from scheduling.booking.book import BookingService

    original = BookingService.__dict__["_insert"]

    async def insert(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        finally:
            marks.append(time.process_time())

    BookingService._insert = insert  # type: ignore[method-assign]
    try:
        yield
    finally:
        BookingService._insert = original  # type: ignore[method-assign]


class RawBooking:
    """The same booking with the bare driver: the reads the server makes to decide, then the
    locked write transaction. Its outbox rows are parked (available in a year), so the
    in-process outbox worker leaves them alone."""

    def __init__(self, raw: RawDb, slug: str) -> None:
        from scheduling import outbox

        self.raw = raw
        self.slug = slug
        self.kinds = outbox.kinds_for_new_booking(confirmed=True)
        self.statements = 0

    async def book(self, start: datetime, end: datetime, email: str) -> None:
        raw = self.raw
        run: list[int] = [0]

        async def fetch(statement: str, *args: Any) -> list[Any]:
            run[0] += 1
            return await raw.fetch(statement, *args)

        async def execute(statement: str, *args: Any) -> None:
            run[0] += 1
            await raw.execute(statement, *args)

        now = datetime.now(UTC)
        ((page_id, owner_id, buffer),) = await fetch(
            "SELECT id, owner_id, buffer_minutes FROM scheduling_pages WHERE slug = ?", self.slug
        )
        around = timedelta(minutes=buffer)
        first, last = raw.time(start - around), raw.time(end + around)
        calendars = await fetch(
            "SELECT calendars.id, calendars.status FROM calendars JOIN calendar_connections "
            "ON calendars.connection_id = calendar_connections.id "
            "WHERE calendar_connections.user_id = ? AND calendars.integrated",
            owner_id,
        )
        if any(status != "ACTIVE" for _, status in calendars):
            raise RuntimeError("an inactive calendar")
        ids = [row[0] for row in calendars]
        if raw.sqlite:
            marks = ", ".join("?" for _ in ids) or "NULL"
            busy_sql = f"SELECT start_at, end_at FROM busy_intervals WHERE calendar_id IN ({marks})"
            busy = await fetch(f"{busy_sql} AND start_at < ? AND end_at > ?", *ids, last, first)
        else:
            busy_sql = "SELECT start_at, end_at FROM busy_intervals WHERE calendar_id = ANY(?)"
            busy = await fetch(f"{busy_sql} AND start_at < ? AND end_at > ?", ids, last, first)
        overlapping = "SELECT id FROM bookings WHERE owner_id = ? AND status = 'CONFIRMED' AND start_at < ? AND end_at > ? LIMIT 1"
        if busy or await fetch(overlapping, owner_id, last, first):
            raise RuntimeError("the bare-driver booking found its slot taken")
        async with raw.write_transaction():
            run[0] += 2  # BEGIN and COMMIT
            if not raw.sqlite:  # SQLite's BEGIN IMMEDIATE already serialises writers
                await fetch("SELECT id FROM users WHERE id = ? FOR UPDATE", owner_id)
            if await fetch(overlapping, owner_id, last, first):
                raise RuntimeError("the bare-driver booking found its slot taken")
            contact_id, booking_id, stamp = uuid.uuid4(), uuid.uuid4(), raw.time(now)
            await execute(
                "INSERT INTO contacts (id, owner_id, email, name, properties, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                raw.id(contact_id),
                owner_id,
                email,
                "Bench Visitor",
                raw.json({}),
                stamp,
                stamp,
            )
            await execute(
                "INSERT INTO bookings (id, owner_id, page_id, contact_id, start_at, end_at, status, source, "
                "invitee_name, invitee_email, invitee_timezone, answers, calendar_write, manage_version, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'CONFIRMED', 'PAGE', ?, ?, 'UTC', ?, 'PENDING', 0, ?)",
                raw.id(booking_id),
                owner_id,
                page_id,
                raw.id(contact_id),
                raw.time(start),
                raw.time(end),
                "Bench Visitor",
                email,
                raw.json({}),
                stamp,
            )
            parked = raw.time(now + timedelta(days=365))
            payload = raw.json({"booking_id": booking_id.hex})
            run[0] += 1
            await raw.execute_many(
                "INSERT INTO outbox (id, kind, payload, attempts, available_at, created_at) VALUES (?, ?, ?, 0, ?, ?)",
                [(raw.id(uuid.uuid4()), kind, payload, parked, stamp) for kind in self.kinds],
            )
        self.statements = run[0]


async def booking_cost(
    server: InProcess, database_url: str, slug: str, server_starts: list[str], raw_starts: list[str]
) -> tuple[Cost, Cost, int]:
    """Alternating batches of server and bare-driver bookings, one at a time; returns
    (server, bare driver, the bare driver's statements per booking)."""
    marks: list[float] = []
    arrived: list[float] = []
    answered: list[float] = []

    async def marked_app(scope: Any, receive: Any, send: Any) -> None:
        arrived.append(time.process_time())
        try:
            await server.app(scope, receive, send)
        finally:
            answered.append(time.process_time())

    ours, bare = Cost(), Cost()

    async def server_booking(client: httpx.AsyncClient, start: str, email: str) -> None:
        for moments in (marks, arrived, answered):
            moments.clear()
        token = IN_BOOKING.set(True)
        began = time.perf_counter()
        try:
            response = await client.post("/graphql", json=book_body(slug, start, email))
        finally:
            IN_BOOKING.reset(token)
        ours.wall += time.perf_counter() - began
        kind = response.json().get("data", {}).get("bookMeeting", {}).get("__typename")
        if response.status_code != 200 or kind != "Booking" or not (marks and arrived and answered):
            raise RuntimeError(f"a measured booking failed: {response.text[:300]}")
        ours.commit_cpu += marks[-1] - arrived[0]
        ours.request_cpu += answered[-1] - arrived[0]
        ours.bookings += 1

    async def bare_booking(booker: RawBooking, start: str, email: str) -> None:
        begins = datetime.fromisoformat(start)
        began, cpu = time.perf_counter(), time.process_time()
        await booker.book(begins, begins + timedelta(minutes=30), email)
        bare.commit_cpu += time.process_time() - cpu
        bare.request_cpu = bare.commit_cpu
        bare.wall += time.perf_counter() - began
        bare.bookings += 1

    raw = RawDb(database_url)
    await raw.open()
    backlog = EmailBacklog(database_url)
    try:
        booker = RawBooking(raw, slug)
        for index, start in enumerate(raw_starts[:2]):  # warm-up: the driver's statement caches
            await bare_booking(booker, start, f"raw-warm-{index}@example.com")
        bare.commit_cpu = bare.request_cpu = bare.wall = 0.0
        bare.bookings = 0
        raw_queue, server_queue = iter(raw_starts[2:]), iter(server_starts)
        engine = server.app.state.services.db.engine.sync_engine
        transport = httpx.ASGITransport(app=marked_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            with statement_counter(engine, ours.statements), commit_marks(marks):
                for number in range(COST_ROUNDS):
                    for index in range(COST_BATCH):
                        await server_booking(client, next(server_queue), f"cost-{number}-{index}@example.com")
                        await backlog.settle()  # its emails go out before the next one
                    for index in range(COST_BATCH):
                        await bare_booking(booker, next(raw_queue), f"raw-{number}-{index}@example.com")
                        await backlog.settle()  # the same pauses on both sides
        return ours, bare, booker.statements
    finally:
        await backlog.close()
        await raw.close()


def short_sql(text: str, width: int = 150) -> str:
    """A statement as one short line: long column lists become their count, so the tables and
    conditions that tell statements apart stay visible."""

    def columns(found: re.Match[str]) -> str:
        listed = found.group(2).split(", ")
        return f"{found.group(1)}<{len(listed)} columns>{found.group(3)}" if len(listed) > 3 else found.group(0)

    text = re.sub(r"^(SELECT )(.*?)( FROM )", columns, text)
    text = re.sub(r"^(INSERT INTO \w+ \()(.*?)(\) VALUES).*$", columns, text)
    text = re.sub(r"::(?:TIMESTAMP WITH TIME ZONE|[A-Z]+(?:\[\])?)", "", text)  # PostgreSQL's parameter casts
    return text if len(text) <= width else text[: width - 3] + "..."


def classify(status: int, body: bytes) -> tuple[str, str | None]:
    """("Booking" | "SlotUnavailable" | "error", what the error was)."""
    if status != 200:
        return "error", f"HTTP {status} {body[:200]!r}"
    try:
        document = json.loads(body)
    except ValueError:
        return "error", f"not JSON: {body[:200]!r}"
    if document.get("errors"):
        return "error", json.dumps(document["errors"])[:300]
    result = (document.get("data") or {}).get("bookMeeting") or {}
    kind = result.get("__typename")
    if kind in ("Booking", "SlotUnavailable"):
        return kind, None
    return "error", json.dumps(result)[:300]


async def race(connections: list[Connection], port: int, slug: str, starts: list[str]) -> Race:
    outcome = Race()
    for number, start in enumerate(starts):
        requests = [
            post_request("127.0.0.1", port, "/graphql", book_body(slug, start, f"race-{number}-{index}@example.com"))
            for index in range(len(connections))
        ]
        answers = await asyncio.gather(*(exchange(c, r) for c, r in zip(connections, requests, strict=True)))
        kinds: Counter[str] = Counter()
        for status, body, seconds in answers:
            kind, problem = classify(status, body)
            kinds[kind] += 1
            outcome.latencies.append(seconds)
            outcome.first_error = outcome.first_error or problem
        outcome.rounds.append(kinds)
    return outcome


async def throughput(port: int, slug: str, starts: list[str], backlog: EmailBacklog) -> Throughput:
    """Each side starts with no email pending (an untimed wait, after which fresh keep-alive
    connections are opened: the server closes idle ones after 5 s), so neither pays for the other."""
    outcome = Throughput()
    batches = [starts[index : index + CLIENTS] for index in range(0, len(starts), CLIENTS)]

    def requests(batch: list[str], tag: str) -> list[bytes]:
        return [
            post_request("127.0.0.1", port, "/graphql", book_body(slug, start, f"{tag}-{index}@example.com"))
            for index, start in enumerate(batch)
        ]

    def check(answers: list[tuple[int, bytes, float]], latencies: list[float]) -> None:
        for status, body, seconds in answers:
            kind, problem = classify(status, body)
            latencies.append(seconds)
            if kind != "Booking":
                outcome.failures += 1
                outcome.first_failure = outcome.first_failure or problem or kind

    for number in range(THROUGHPUT_ROUNDS):
        concurrent, sequential = batches[2 * number], batches[2 * number + 1]
        await backlog.drain()
        connections = await open_connections(port, CLIENTS)
        try:
            started = time.perf_counter()
            answers = await asyncio.gather(
                *(exchange(c, r) for c, r in zip(connections, requests(concurrent, f"c{number}"), strict=True))
            )
            outcome.concurrent_seconds += time.perf_counter() - started
        finally:
            await close_connections(connections)
        outcome.concurrent_emails += await backlog.drain()
        check(list(answers), outcome.concurrent_latencies)
        connections = await open_connections(port, 1)
        try:
            started = time.perf_counter()
            answers = [await exchange(connections[0], request) for request in requests(sequential, f"s{number}")]
            outcome.sequential_seconds += time.perf_counter() - started
        finally:
            await close_connections(connections)
        outcome.sequential_emails += await backlog.drain()
        check(answers, outcome.sequential_latencies)
        outcome.bookings += len(concurrent)
    return outcome


async def free_starts(server: ServerProcess, slug: str, start: datetime) -> list[str]:
    body = {
        "query": SLOTS,
        "variables": {
            "slug": slug,
            "start": start.isoformat(),
            "end": (start + timedelta(days=WINDOW_DAYS)).isoformat(),
            "timezone": "UTC",
        },
    }
    (connection,) = await open_connections(server.port, 1)
    try:
        status, answer, _ = await exchange(connection, post_request("127.0.0.1", server.port, "/graphql", body))
    finally:
        await close_connections([connection])
    if status != 200:
        raise RuntimeError(f"the slots query failed: {status} {answer[:300]!r}")
    return [slot["start"] for slot in json.loads(answer)["data"]["schedulingPage"]["slots"]["slots"]]


async def exercise(
    server: ServerProcess, database_url: str, slug: str, start: datetime
) -> tuple[Race, Throughput, list[str]]:
    """The race and the throughput rounds; returns the free starts left over."""
    starts = await free_starts(server, slug, start)
    needed = RACE_ROUNDS + 2 * THROUGHPUT_ROUNDS * CLIENTS
    if len(starts) < needed:
        raise RuntimeError(f"only {len(starts)} free slots; need {needed}")
    race_starts = starts[:: max(1, len(starts) // RACE_ROUNDS)][:RACE_ROUNDS]
    raced_set = set(race_starts)
    rest = [value for value in starts if value not in raced_set]
    used = 2 * THROUGHPUT_ROUNDS * CLIENTS
    connections = await open_connections(server.port, CLIENTS)
    try:
        # Warm-up: every connection answers once (the HTTP stack, query caches).
        warm = post_request("127.0.0.1", server.port, "/graphql", {"query": "{ __typename }"})
        await asyncio.gather(*(exchange(connection, warm) for connection in connections))
        raced = await race(connections, server.port, slug, race_starts)
    finally:
        await close_connections(connections)
    backlog = EmailBacklog(database_url)
    try:
        measured = await throughput(server.port, slug, rest[:used], backlog)
    finally:
        await backlog.close()
    return raced, measured, rest[used:]


async def stored_bookings(database_url: str) -> int:
    from common.values import BookingStatus
    from db.engine import Database
    from db.models import Booking

    database = Database(database_url)
    try:
        async with database.session() as session:
            statement = select(func.count(col(Booking.id))).where(col(Booking.status) == BookingStatus.CONFIRMED)
            return int((await session.exec(statement)).one())
    finally:
        await database.dispose()


def run_backend(backend: str, database_url: str) -> Outcome:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    owner = asyncio.run(
        seed_busy_owner(
            database_url,
            slug_prefix=f"b5-{backend}",
            calendars=1,
            busy=0,
            start=start,
            days=WINDOW_DAYS,
            start_increment=30,
            weekly_hours=every_day("08:00", "20:00"),
        )
    )
    if backend == "postgres":  # the scaled-out setup: a worker per core, pub/sub on PostgreSQL
        broadcast = "postgres://" + database_url.split("://", 1)[1]
        env, workers = server_env(database_url, broadcast), WORKERS
    else:  # SQLite is the embedded, one-process setup
        env, workers = server_env(database_url), 1
    with serve(1, env, workers=workers) as (server,):
        raced, measured, left = asyncio.run(exercise(server, database_url, owner.slug, start))
    seen = sum(kinds["Booking"] for kinds in raced.rounds) + 2 * measured.bookings - measured.failures
    stored = asyncio.run(stored_bookings(database_url))
    profile = asyncio.run(profile_bookings(database_url, owner.slug, left))
    return Outcome(backend, raced, measured, stored, seen, profile)


def measure(run: Run) -> list[Outcome]:
    return on_each_database(run, run_backend)


def record(run: Run, outcome: Outcome) -> None:
    name, raced, measured = outcome.backend, outcome.race, outcome.throughput
    winners = [kinds["Booking"] for kinds in raced.rounds]
    losers = [kinds["SlotUnavailable"] for kinds in raced.rounds]
    errors = sum(kinds["error"] for kinds in raced.rounds)
    exact = sum(1 for count in winners if count == 1)
    run.figure(
        f"{name} rounds with exactly one winner",
        exact,
        "",
        comparison=f"of {len(raced.rounds)}; winners per round {sorted(Counter(winners).items())}",
        target=f"all {RACE_ROUNDS}",
        passed=exact == RACE_ROUNDS,
    )
    run.figure(
        f"{name} SlotUnavailable per round",
        min(losers) if losers else float("nan"),
        "",
        comparison=f"min; max {max(losers) if losers else 'n/a'}, {sum(losers)} in all",
        target=f"{CLIENTS - 1} every round",
        passed=all(count == CLIENTS - 1 for count in losers),
    )
    latency = Summary.of(raced.latencies).scaled(1000)
    run.figure(
        f"{name} race errors",
        errors,
        "",
        comparison=raced.first_error or f"race answer p50 {latency.p50:.0f} ms, p99 {latency.p99:.0f} ms",
        target="0",
        passed=errors == 0,
    )
    ratio = measured.concurrent_rate / measured.sequential_rate
    concurrent = Summary.of(measured.concurrent_latencies).scaled(1000)
    sequential = Summary.of(measured.sequential_latencies).scaled(1000)
    run.figure(
        f"{name} concurrent bookings",
        measured.concurrent_rate,
        "req/s",
        comparison=(f"{CLIENTS} clients, {measured.bookings} different slots; answer p50 {concurrent.p50:.0f} ms"),
    )
    run.figure(
        f"{name} sequential bookings",
        measured.sequential_rate,
        "req/s",
        comparison=(f"one client, {measured.bookings} slots; answer p50 {sequential.p50:.1f} ms"),
    )
    run.figure(
        f"{name} throughput ratio concurrent / sequential",
        ratio,
        "x",
        comparison=(
            "informative: the concurrent >= 3x sequential target is retired (on 2 cores a CPU-bound chain "
            "cannot reach it; the cost per booking below is the bar now); "
            f"{measured.with_emails_ratio:.2f}x if each side also waits for its emails to be written "
            f"({measured.concurrent_emails:.1f} s after the concurrent bursts, {measured.sequential_emails:.1f} s "
            "after the sequential runs)"
        ),
    )
    run.figure(
        f"{name} failed throughput bookings",
        measured.failures,
        "",
        comparison=measured.first_failure,
        target="0",
        passed=measured.failures == 0,
    )
    run.figure(
        f"{name} confirmed bookings stored",
        outcome.stored,
        "",
        comparison=f"clients were told {outcome.seen}",
        target="as many as the clients were told",
        passed=outcome.stored == outcome.seen,
    )
    profile = outcome.profile
    ours, bare = profile.server, profile.bare
    server_ms, bare_ms = ours.per_booking_ms(ours.commit_cpu), bare.per_booking_ms(bare.commit_cpu)
    cost_ratio = server_ms / bare_ms
    run.figure(
        f"{name} server CPU per booking, request to commit",
        server_ms,
        "ms",
        comparison=(
            f"in-process, one at a time, {ours.bookings} bookings; to the last byte of the answer "
            f"{ours.per_booking_ms(ours.request_cpu):.1f} ms, wall {ours.per_booking_ms(ours.wall):.1f} ms; "
            "emails apart"
        ),
    )
    run.figure(
        f"{name} bare-driver booking CPU",
        bare_ms,
        "ms",
        comparison=(
            f"{bare.bookings} bookings alternating with the server's, wall {bare.per_booking_ms(bare.wall):.1f} ms, "
            f"{profile.bare_statements} statements: page, calendars, busy rows, bookings; "
            f"{'BEGIN IMMEDIATE' if name == 'sqlite' else 'BEGIN, lock owner FOR UPDATE'}, overlap check, "
            "contact, booking, outbox rows (one executemany), COMMIT"
        ),
    )
    run.figure(
        f"{name} booking CPU server / bare driver",
        cost_ratio,
        "x",
        target=f"<= {TARGET_COST_RATIO:.0f}x",
        passed=cost_ratio <= TARGET_COST_RATIO,
    )
    statements = sum(ours.statements.values()) / ours.bookings
    run.figure(
        f"{name} SQL statements per booking",
        statements,
        "",
        comparison=(
            f"server, request to answer, transaction round trips included; bare driver {profile.bare_statements}"
        ),
    )
    repeated = "; ".join(
        f"{count / ours.bookings:g}x {short_sql(text)}" for text, count in ours.statements.most_common()
    )
    run.note(f"{name} statements per server booking, by text (most frequent first): {repeated}")
    capacity = 1000 / profile.request_cpu_ms
    run.note(
        f"{name} CPU per booking request with the step timers on {profile.request_cpu_ms:.1f} ms (client included), "
        f"wall {profile.wall_ms:.1f} ms; {profile.cpu_ms:.1f} ms with the outbox worker's emails; one process "
        f"answers at most ~{capacity:.0f} bookings/s = {capacity / measured.sequential_rate:.1f}x the sequential client"
    )
    steps = ", ".join(f"{key} {value:.2f}" for key, value in profile.layers_ms.items() if not key.endswith(": SQL"))
    sqls = ", ".join(f"{key} {value:.2f}" for key, value in profile.layers_ms.items() if key.endswith(": SQL"))
    run.note(
        f"{name} profile, wall ms per booking: {steps}; SQL inside: {sqls}; "
        f"{profile.sql_statements:.0f} SQL statements, {profile.sql_ms:.1f} ms SQL wall per booking"
    )
    note_cprofile(
        run,
        name,
        profile.categories_ms,
        per="booking request, emails apart",
        file=f"b5_profile_{name}.txt",
        text=profile.text,
        of=f"{PROFILE_BOOKINGS} bookings",
        least=0.1,
    )
    run.chart[name] = {
        "cpu_ms": profile.cpu_ms,
        "wall_ms": profile.wall_ms,
        "commit_cpu_ms": server_ms,
        "bare_cpu_ms": bare_ms,
        "cost_ratio": cost_ratio,
        "statements": statements,
        "statement_counts": {text: count / ours.bookings for text, count in ours.statements.most_common()},
        "winners": winners,
        "losers": losers,
        "errors": errors,
        "concurrent_rps": measured.concurrent_rate,
        "sequential_rps": measured.sequential_rate,
        "ratio": ratio,
        "race_ms": latency.as_dict(),
    }


def plot(ax: Any, run: Run) -> None:
    """Bookings/s, concurrent vs sequential, per backend; race verdicts in the labels."""
    backends = [name for name in ("sqlite", "postgres") if name in run.chart]
    positions = range(len(backends))
    width = 0.38
    sequential = [run.chart[name]["sequential_rps"] for name in backends]
    concurrent = [run.chart[name]["concurrent_rps"] for name in backends]
    bars = ax.bar([p - width / 2 for p in positions], sequential, width, label="1 sequential client", color="#4c72b0")
    ax.bar_label(bars, fmt="%.0f/s", fontsize=8)
    bars = ax.bar(
        [p + width / 2 for p in positions], concurrent, width, label=f"{CLIENTS} concurrent clients", color="#dd8452"
    )
    ax.bar_label(bars, fmt="%.0f/s", fontsize=8)
    labels = []
    for name in backends:
        chart = run.chart[name]
        ones = sum(1 for count in chart["winners"] if count == 1)
        labels.append(
            f"{name}: ratio {chart['ratio']:.2f}x (target retired)\n"
            f"CPU/booking {chart['commit_cpu_ms']:.1f} ms, bare driver {chart['bare_cpu_ms']:.1f} ms "
            f"({chart['cost_ratio']:.1f}x)\n"
            f"race: {ones}/{len(chart['winners'])} rounds with 1 winner, {chart['errors']} errors"
        )
    ax.set_xticks(list(positions), labels, fontsize=8)
    ax.set_ylabel("bookings per second")
    ax.set_title(f"B5 booking races ({CLIENTS} clients x {RACE_ROUNDS} rounds), throughput and cost per booking")
    ax.legend(loc="upper left", fontsize=8)


@benchmark("B5", "50 clients race for one slot (20 rounds); cost per booking vs the bare driver", plot=plot)
def b5(run: Run) -> None:
    for outcome in measure(run):
        record(run, outcome)
    run.note(
        f"SQLite: one kokous serve worker; PostgreSQL: kokous serve --workers {WORKERS} with PostgreSQL pub/sub; "
        f"{CLIENTS} keep-alive connections; throughput alternates "
        f"{THROUGHPUT_ROUNDS} x ({CLIENTS} concurrent, {CLIENTS} sequential) bookings of distinct slots; cost per "
        f"booking in-process: {COST_ROUNDS} x ({COST_BATCH} server, {COST_BATCH} bare-driver) bookings alternating, "
        "process CPU (the driver threads included)"
    )
