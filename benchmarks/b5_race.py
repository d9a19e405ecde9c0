"""B5: 50 clients race for one slot (20 rounds), then 50 clients on 50 different slots.

One ``kokous serve`` process (one worker) per backend, SQLite then PostgreSQL (a private
database, dropped at the end). The page is open every day 08:00-20:00 UTC in 30-minute slots.

* **Race**: each round, 50 keep-alive connections (benchmarks/loadgen.py) send ``bookMeeting``
  for the same start at once (different invitees). Counted: ``Booking`` (the winner),
  ``SlotUnavailable``, and anything else (GraphQL errors, other results, HTTP errors).
* **Throughput**: 50 connections each book a different slot at once, vs one connection booking
  50 slots one after another; the two alternate ``THROUGHPUT_ROUNDS`` times so both come from
  the same minutes. Ratio = concurrent bookings/s / sequential bookings/s.

At the end the confirmed bookings stored in the database are counted and compared with the
winners the clients saw.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from benchmarks import Run, benchmark
from benchmarks.b1_slots import Buckets, _timed_async, in_process, per_unit_ms, profile_text, sql_timer, write_profile
from benchmarks.loadgen import Connection, close_connections, exchange, open_connections, post_request
from benchmarks.seed import SLOTS, book_body, every_day, seed_busy_owner
from benchmarks.servers import ServerProcess, on_each_database, serve, server_env
from benchmarks.stats import Summary

CLIENTS = 50
RACE_ROUNDS = 20
THROUGHPUT_ROUNDS = 2  # x (50 concurrent + 50 sequential) bookings
PROFILE_BOOKINGS = 20  # sequential, in-process, per pass (timed, then under cProfile)
OUTBOX_SETTLE = 0.1  # seconds after each profiled booking: its emails go out before the next one
WINDOW_DAYS = 20
TARGETS = {"sqlite": 0.8, "postgres": 3.0}  # concurrent / sequential throughput
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
    originals = [(owner, name, owner.__dict__[name]) for owner, name, _, _ in steps]
    for owner, name, label, timer in steps:
        setattr(owner, name, _timed_async(getattr(owner, name), buckets, label, timer))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


async def profile_bookings(database_url: str, slug: str, starts: list[str]) -> BookingProfile:
    """Sequential bookings in-process: wall per step, CPU per booking, then a cProfile pass."""
    if len(starts) < 2 * PROFILE_BOOKINGS + 5:
        raise RuntimeError("not enough free slots left to profile bookings")
    async with in_process(database_url) as server:
        backlog = EmailBacklog(database_url)
        try:
            await backlog.drain()  # whatever the server process left is sent before measuring
        finally:
            await backlog.close()
        for index, start in enumerate(starts[:5]):
            await server.post(book_body(slug, start, f"warm-{index}@example.com"))
        await asyncio.sleep(OUTBOX_SETTLE)
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
        profiler = cProfile.Profile()
        profiler.enable()
        for index, start in enumerate(starts[5 + PROFILE_BOOKINGS : 5 + 2 * PROFILE_BOOKINGS]):
            await server.post(book_body(slug, start, f"cprofile-{index}@example.com"))
            await asyncio.sleep(OUTBOX_SETTLE)
        profiler.disable()
    stats = pstats.Stats(profiler)
    header = f"cProfile of {PROFILE_BOOKINGS} sequential bookings in-process (main thread), outbox worker included"
    return BookingProfile(
        wall_ms=wall / PROFILE_BOOKINGS * 1000,
        cpu_ms=cpu / PROFILE_BOOKINGS * 1000,
        request_cpu_ms=request_cpu / PROFILE_BOOKINGS * 1000,
        layers_ms={name: value / PROFILE_BOOKINGS * 1000 for name, value in layers.seconds.items()},
        sql_statements=sql.counts["sql"] / PROFILE_BOOKINGS,
        sql_ms=sql.seconds["sql"] / PROFILE_BOOKINGS * 1000,
        categories_ms=per_unit_ms(stats, PROFILE_BOOKINGS),
        text=profile_text(profiler, header),
    )


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
    target = TARGETS[name]
    run.figure(
        f"{name} throughput ratio concurrent / sequential",
        ratio,
        "x",
        comparison=(
            f"failed bookings {measured.failures}"
            + (f": {measured.first_failure}" if measured.first_failure else "")
            + f"; {measured.with_emails_ratio:.2f}x if each side also waits for its emails to be written "
            f"({measured.concurrent_emails:.1f} s after the concurrent bursts, {measured.sequential_emails:.1f} s "
            "after the sequential runs)"
        ),
        target=f">= {target}x",
        passed=ratio >= target and measured.failures == 0,
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
    capacity = 1000 / profile.request_cpu_ms
    run.figure(
        f"{name} server CPU per booking request",
        profile.request_cpu_ms,
        "ms",
        comparison=(
            f"in-process, one at a time, wall {profile.wall_ms:.1f} ms; {profile.cpu_ms:.1f} ms with the "
            f"outbox worker's 2 emails; one process answers at most ~{capacity:.0f} bookings/s = "
            f"{capacity / measured.sequential_rate:.1f}x the sequential client"
        ),
    )
    steps = ", ".join(f"{key} {value:.2f}" for key, value in profile.layers_ms.items() if not key.endswith(": SQL"))
    sqls = ", ".join(f"{key} {value:.2f}" for key, value in profile.layers_ms.items() if key.endswith(": SQL"))
    run.note(
        f"{name} profile, wall ms per booking: {steps}; SQL inside: {sqls}; "
        f"{profile.sql_statements:.0f} SQL statements, {profile.sql_ms:.1f} ms SQL wall per booking"
    )
    categories = ", ".join(f"{key} {value:.2f}" for key, value in profile.categories_ms.items() if value >= 0.1)
    run.note(f"{name} cProfile own time per booking by package (main thread, ms): {categories}")
    path = write_profile(f"b5_profile_{name}.txt", profile.text)
    run.note(f"{name} full cProfile of {PROFILE_BOOKINGS} bookings: {path}")
    run.chart[name] = {
        "cpu_ms": profile.cpu_ms,
        "wall_ms": profile.wall_ms,
        "winners": winners,
        "losers": losers,
        "errors": errors,
        "concurrent_rps": measured.concurrent_rate,
        "sequential_rps": measured.sequential_rate,
        "ratio": ratio,
        "target": target,
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
            f"{name}: ratio {chart['ratio']:.2f}x (target >= {chart['target']}x)\n"
            f"race: {ones}/{len(chart['winners'])} rounds with 1 winner, {chart['errors']} errors"
        )
    ax.set_xticks(list(positions), labels, fontsize=8)
    ax.set_ylabel("bookings per second")
    ax.set_title(f"B5 booking races ({CLIENTS} clients x {RACE_ROUNDS} rounds) and throughput")
    ax.legend(loc="upper left", fontsize=8)


@benchmark("B5", "50 clients race for one slot (20 rounds); 50 clients on different slots vs one", plot=plot)
def b5(run: Run) -> None:
    for outcome in measure(run):
        record(run, outcome)
    run.note(
        f"SQLite: one kokous serve worker; PostgreSQL: kokous serve --workers {WORKERS} with PostgreSQL pub/sub; "
        f"{CLIENTS} keep-alive connections; throughput alternates "
        f"{THROUGHPUT_ROUNDS} x ({CLIENTS} concurrent, {CLIENTS} sequential) bookings of distinct slots"
    )
