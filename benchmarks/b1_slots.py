"""B1: ``schedulingPage{slots}`` for 30 days vs ``{__typename}`` on the same server, one worker.

The owner has 1,000 busy events over the 30-day window on 3 integrated calendars, written
straight into ``busy_intervals`` as provider sync stores them (the "warm cache": a slot query
reads only the database). One ``kokous serve`` process (one worker) answers both queries; the
load alternates between them in rounds (hello, slots, hello, slots, ...) over the same N
keep-alive connections (benchmarks/loadgen.py), so both rates come from the same minutes of a
noisy machine. The slots p95 is taken under that same load; an unloaded (one client) p95 is
reported beside it.

Then one slots request is profiled in-process (``create_app`` + ``httpx.ASGITransport``, the same
database): wall time per layer (page lookup, SQL, busy rows, slot engine, schema objects, JSON,
GraphQL completion) by wrapping those functions, and a cProfile of the main thread grouped by
package. The full profile is written to ``benchmarks/results/b1_profile_<backend>.txt``.
"""

from __future__ import annotations

import asyncio
import cProfile
import functools
import io
import json
import pstats
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
from sqlalchemy import event

from benchmarks import RESULTS_DIR, Run, benchmark
from benchmarks.loadgen import LoadResult, close_connections, exchange, open_connections, post_request, run_load
from benchmarks.seed import SLOTS, BusyOwner, seed_busy_owner, seed_settings
from benchmarks.servers import ServerProcess, on_each_database, serve, server_env
from benchmarks.stats import Summary
from db.plain import watched

WINDOW_DAYS = 30
CALENDARS = 3
BUSY_EVENTS = 1_000
CONCURRENCY = 10  # keep-alive connections for both queries
ROUNDS = 3  # hello/slots alternations
HELLO_PER_ROUND = 1_000
SLOTS_ROUND_SECONDS = 2.5  # each slots round is sized from the warm-up rate to last about this long
SERIAL_SAMPLES = 40  # one client, one request at a time: the unloaded latency
PROFILE_REQUESTS = 30
VISITOR_ZONE = "Europe/Helsinki"
TARGET_RATIO, TARGET_P95_MS = 3.0, 150.0

HELLO = {"query": "{ __typename }"}
HELLO_BODY = b'{"data":{"__typename":"Query"}}'
SLOTS_PREFIX = b'{"data":{"schedulingPage":{"slots":{"slots":['


def window_start() -> datetime:
    """Tomorrow 00:00 UTC: inside the page's horizon and past any minimum notice."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def slots_body(owner: BusyOwner, start: datetime) -> dict[str, Any]:
    variables = {
        "slug": owner.slug,
        "start": start.isoformat(),
        "end": (start + timedelta(days=WINDOW_DAYS)).isoformat(),
        "timezone": VISITOR_ZONE,
    }
    return {"query": SLOTS, "variables": variables}


def hello_ok(status: int, body: bytes) -> bool:
    return status == 200 and body == HELLO_BODY


def slots_ok(status: int, body: bytes) -> bool:
    return status == 200 and body.startswith(SLOTS_PREFIX) and b'"errors"' not in body


# -- load ------------------------------------------------------------------------------------


@dataclass
class Side:
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    first_failure: str | None = None

    def add(self, load: LoadResult) -> None:
        self.requests += len(load.latencies)
        self.seconds += load.seconds
        self.latencies.extend(load.latencies)
        self.failures += load.failures
        self.first_failure = self.first_failure or load.first_failure

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else float("nan")


@dataclass
class Comparison:
    hello: Side
    slots: Side
    serial: list[float]
    size: int
    slot_count: int


async def compare(server: ServerProcess, body: dict[str, Any]) -> Comparison:
    hello_request = post_request("127.0.0.1", server.port, "/graphql", HELLO)
    slots_request = post_request("127.0.0.1", server.port, "/graphql", body)
    (connection,) = await open_connections(server.port, 1)
    try:
        status, first, _ = await exchange(connection, slots_request)
    finally:
        await close_connections([connection])
    if not slots_ok(status, first):
        raise RuntimeError(f"the slots query failed: {status} {first[:300]!r}")
    slot_count = len(json.loads(first)["data"]["schedulingPage"]["slots"]["slots"])

    async def load(request: bytes, requests: int, check: Callable[[int, bytes], bool], concurrency: int) -> LoadResult:
        return await run_load(server.port, request, requests=requests, concurrency=concurrency, check=check)

    await load(hello_request, 300, hello_ok, CONCURRENCY)
    warm = await load(slots_request, 4 * CONCURRENCY, slots_ok, CONCURRENCY)
    per_round = max(2 * CONCURRENCY, min(2_000, int(warm.rate * SLOTS_ROUND_SECONDS)))
    serial = await load(slots_request, SERIAL_SAMPLES, slots_ok, 1)
    hello, slots = Side(), Side()
    for _ in range(ROUNDS):
        hello.add(await load(hello_request, HELLO_PER_ROUND, hello_ok, CONCURRENCY))
        slots.add(await load(slots_request, per_round, slots_ok, CONCURRENCY))
    return Comparison(hello, slots, serial.latencies, len(first), slot_count)


# -- in-process profile ----------------------------------------------------------------------


@dataclass
class Buckets:
    """Wall seconds per layer, summed over the profiled requests."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] += seconds
        self.counts[name] += 1


def _timed_async(function: Callable[..., Any], buckets: Buckets, name: str, sql: Buckets | None = None) -> Any:
    @functools.wraps(function)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        sql_before = sql.seconds["sql"] if sql is not None else 0.0
        started = time.perf_counter()
        try:
            return await function(*args, **kwargs)
        finally:
            buckets.add(name, time.perf_counter() - started)
            if sql is not None:
                buckets.add(f"{name}: SQL", sql.seconds["sql"] - sql_before)

    return wrapper


def _timed(function: Callable[..., Any], buckets: Buckets, name: str) -> Any:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            buckets.add(name, time.perf_counter() - started)

    return wrapper


@contextmanager
def instrumented(app: Any, buckets: Buckets) -> Iterator[None]:
    """Wrap the layers of a slots request with wall-clock timers (this process only, undone after)."""
    import scheduling.pages.availability as availability
    from scheduling.live.feeds import LiveService
    from scheduling.pages.availability import AvailabilityService
    from scheduling.pages.service import PageService
    from schema.slot_types import SlotList
    from server.graphql_view import KokousGraphQL

    sql, remove = sql_timer(app.state.services.db.engine.sync_engine)
    originals: list[tuple[Any, str, Any]] = [
        (PageService, "public_page", PageService.__dict__["public_page"]),
        (LiveService, "query_slots", LiveService.__dict__["query_slots"]),
        (AvailabilityService, "busy_time", AvailabilityService.__dict__["busy_time"]),
        (availability, "free_slots", availability.free_slots),
        (availability, "bookable_range", availability.bookable_range),
        (SlotList, "from_domain", SlotList.__dict__["from_domain"]),
        (KokousGraphQL, "encode_json", KokousGraphQL.encode_json),
    ]
    PageService.public_page = _timed_async(PageService.public_page, buckets, "page lookup", sql)  # type: ignore[method-assign]
    LiveService.query_slots = _timed_async(LiveService.query_slots, buckets, "slots service")  # type: ignore[method-assign]
    busy_time = AvailabilityService.__dict__["busy_time"].__func__
    AvailabilityService.busy_time = staticmethod(_timed_async(busy_time, buckets, "busy time", sql))  # type: ignore[method-assign,assignment]
    availability.free_slots = _timed(availability.free_slots, buckets, "slot engine")  # type: ignore[assignment]
    availability.bookable_range = _timed(availability.bookable_range, buckets, "slot engine")  # type: ignore[assignment]
    from_domain = SlotList.__dict__["from_domain"].__func__
    SlotList.from_domain = classmethod(_timed(from_domain, buckets, "schema objects"))  # type: ignore[method-assign,assignment]
    KokousGraphQL.encode_json = _timed(KokousGraphQL.encode_json, buckets, "JSON encoding")  # type: ignore[method-assign]
    try:
        yield
    finally:
        remove()
        for owner, name, original in originals:
            setattr(owner, name, original)
        buckets.counts["sql statements"] = sql.counts["sql"]


CATEGORIES = [  # (substring of a profiled function's file:name, category); first match wins
    ("scheduling/engine/interval.py", "kokous: busy rows -> Intervals"),
    ("scheduling/availability.py:<listcomp>", "kokous: busy rows -> Intervals"),
    ("scheduling/engine", "slot engine"),
    ("httpx", "benchmark client (httpx)"),
    ("db/columns", "SQL: row types (UTCDateTime)"),
    ("sqlalchemy", "SQL: SQLAlchemy"),
    ("sqlmodel", "SQL: SQLAlchemy"),
    ("aiosqlite", "SQL: driver"),
    ("asyncpg", "SQL: driver"),
    ("sqlite3", "SQL: driver"),
    ("greenlet", "SQL: SQLAlchemy"),
    ("db/", "SQL: SQLAlchemy"),
    ("graphql/", "GraphQL (graphql-core)"),
    ("strawberry", "GraphQL (strawberry)"),
    ("json", "JSON"),
    ("websockets", "WebSocket frames (websockets)"),
    ("uvicorn", "HTTP server (uvicorn)"),
    ("h11", "HTTP server (uvicorn)"),
    ("httptools", "HTTP server (uvicorn)"),
    ("starlette", "HTTP (starlette/ASGI)"),
    ("anyio", "HTTP (starlette/ASGI)"),
    ("prometheus", "HTTP (starlette/ASGI)"),
    ("server/", "HTTP (starlette/ASGI)"),
    ("scheduling/notifications", "emails and outbox worker"),
    ("scheduling/outbox", "emails and outbox worker"),
    ("/email/", "emails and outbox worker"),
    ("zoneinfo", "datetimes (zone, isoformat)"),
    ("epoll", "waiting (event loop idle)"),
    ("asyncio", "event loop"),
    ("selectors", "event loop"),
    ("scheduling/pubsub", "pub/sub hub"),
    ("broadcaster", "pub/sub hub"),
    ("redis", "pub/sub hub"),
    ("scheduling/", "kokous domain"),
    ("resolvers/", "kokous resolvers/schema"),
    ("schema/", "kokous resolvers/schema"),
]


def _category(key: tuple[str, int, str]) -> str | None:
    where = f"{key[0]}:{key[2]}"
    return next((label for part, label in CATEGORIES if part in where), None)


def categorise(stats: pstats.Stats) -> dict[str, float]:
    """Own (tottime) seconds per category. A built-in (``datetime.replace``, ``isinstance``...) is
    charged to the categories of its callers, in proportion to the time it spent for each."""
    totals: dict[str, float] = defaultdict(float)
    for key, row in stats.stats.items():  # type: ignore[attr-defined]
        own, callers = row[2], row[4]
        builtin = key[0] == "~" and "epoll" not in key[2]
        spent = sum(value[2] for value in callers.values()) if builtin else 0.0
        if spent > 0:
            for caller, value in callers.items():
                totals[_category(caller) or "other"] += own * value[2] / spent
        else:
            totals[_category(key) or "other"] += own
    return dict(totals)


def per_unit_ms(stats: pstats.Stats, units: float) -> dict[str, float]:
    """Categories in ms per unit (request, booking, message), largest first."""
    totals = categorise(stats)
    return {name: seconds / units * 1000 for name, seconds in sorted(totals.items(), key=lambda item: -item[1])}


def profile_text(profiler: cProfile.Profile, header: str) -> str:
    buffer = io.StringIO()
    buffer.write(header + "\n")
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("tottime").print_stats(35)
    stats.sort_stats("cumulative").print_stats(45)
    return buffer.getvalue()


def note_cprofile(
    run: Run,
    name: str,
    categories_ms: dict[str, float],
    *,
    per: str,
    file: str,
    text: str,
    of: str,
    least: float = 0.05,
) -> None:
    """The profile's own time by package (per request or booking) as a note, and the whole
    profile written beside the results."""
    categories = ", ".join(f"{key} {value:.2f}" for key, value in categories_ms.items() if value >= least)
    run.note(f"{name} cProfile own time per {per} by package (main thread, ms): {categories}")
    run.note(f"{name} full cProfile of {of}: {write_profile(file, text)}")


def write_profile(name: str, text: str) -> str:
    """Into benchmarks/results/; returns the path relative to the repository."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / name
    path.write_text(text)
    return str(path.relative_to(RESULTS_DIR.parent.parent))


def sql_timer(engine: Any) -> tuple[Buckets, Callable[[], None]]:
    """Wall time of every SQL statement (``sql``) on a sync engine and on the driver connections
    of its pool (``db/plain.py``); returns (buckets, remove)."""
    sql = Buckets()
    started: list[float] = []

    def before(*_: Any) -> None:
        started.append(time.perf_counter())

    def after(*_: Any) -> None:
        if started:  # a statement already running when the timer was attached has no start
            sql.add("sql", time.perf_counter() - started.pop())

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    on_the_driver = watched(lambda _text, seconds: sql.add("sql", seconds))
    on_the_driver.__enter__()

    def remove() -> None:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
        on_the_driver.__exit__(None, None, None)

    return sql, remove


@dataclass
class Profile:
    per_request_ms: dict[str, float]  # wall ms per layer, per request
    hello_ms: float  # the same in-process stack answering {__typename}
    categories_ms: dict[str, float]  # cProfile own time per category, per request
    sql_statements: float  # per request
    top: str  # the profile text


@dataclass
class InProcess:
    """An app in this process behind ``httpx.ASGITransport``; ``requests`` sums server-side wall time."""

    app: Any
    client: httpx.AsyncClient
    requests: Buckets

    async def post(self, document: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post("/graphql", json=document)
        answer = cast(dict[str, Any], response.json())
        if response.status_code != 200 or "errors" in answer:
            raise RuntimeError(f"in-process request failed: {response.text[:300]}")
        return answer


@asynccontextmanager
async def in_process(database_url: str) -> AsyncIterator[InProcess]:
    """``create_app`` on the database (memory pub/sub), its lifespan running, and a client for it.

    Finished answers are not kept, so every request computes its answer: that is what is profiled.
    """
    from server.app import create_app

    with tempfile.TemporaryDirectory(prefix="kokous-bench-profile-") as folder:
        app = create_app(seed_settings(database_url, Path(folder), answer_cache_entries=0))
        async with app.router.lifespan_context(app):
            requests = Buckets()

            async def timed_app(scope: Any, receive: Any, send: Any) -> None:
                started = time.perf_counter()
                try:
                    await app(scope, receive, send)
                finally:
                    requests.add("request", time.perf_counter() - started)

            transport = httpx.ASGITransport(app=timed_app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                yield InProcess(app, client, requests)


async def profile_in_process(
    database_url: str, body: dict[str, Any] | Callable[[], dict[str, Any]], what: str = "warm slots requests"
) -> Profile:
    """``body``: the slots request, or a function giving each request its own (B7's new windows)."""
    next_body = body if callable(body) else lambda: body
    async with in_process(database_url) as server:
        app, requests, post = server.app, server.requests, server.post
        for _ in range(10):
            await post(next_body())
            await post(HELLO)
        requests.seconds.clear()
        requests.counts.clear()
        for _ in range(PROFILE_REQUESTS):
            await post(HELLO)
        hello = requests.seconds["request"] / PROFILE_REQUESTS
        requests.seconds.clear()
        layers = Buckets()
        with instrumented(app, layers):
            for _ in range(PROFILE_REQUESTS):
                await post(next_body())
        total = requests.seconds["request"] / PROFILE_REQUESTS

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(PROFILE_REQUESTS):
            await post(next_body())
        profiler.disable()

    per = {name: seconds / PROFILE_REQUESTS * 1000 for name, seconds in layers.seconds.items()}
    page, page_sql = per.get("page lookup", 0.0), per.get("page lookup: SQL", 0.0)
    busy, busy_sql = per.get("busy time", 0.0), per.get("busy time: SQL", 0.0)
    engine, objects, encode = per.get("slot engine", 0.0), per.get("schema objects", 0.0), per.get("JSON encoding", 0.0)
    inside = per.get("slots service", 0.0) - busy - engine
    per_request = {
        "request (server side, in-process)": total * 1000,
        "same stack for {__typename}": hello * 1000,
        "page lookup: SQL": page_sql,
        "page lookup: session, ORM, Python": page - page_sql,
        "busy time: SQL": busy_sql,
        "busy time: rows to Intervals": busy - busy_sql,
        "slot engine": engine,
        "slots service, rest (session, rules)": inside,
        "schema objects (SlotList.from_domain)": objects,
        "JSON encoding": encode,
    }
    accounted = hello * 1000 + page + busy + engine + inside + objects + encode
    per_request["GraphQL completion of the result (rest)"] = total * 1000 - accounted

    stats = pstats.Stats(profiler)
    header = f"cProfile of {PROFILE_REQUESTS} {what} in-process (main thread)"
    return Profile(
        per_request_ms=per_request,
        hello_ms=hello * 1000,
        categories_ms=per_unit_ms(stats, PROFILE_REQUESTS),
        sql_statements=layers.counts.get("sql statements", 0) / PROFILE_REQUESTS,
        top=profile_text(profiler, header),
    )


# -- one backend -----------------------------------------------------------------------------


@dataclass
class Outcome:
    backend: str
    comparison: Comparison  # the server as shipped: repeated public answers are kept
    computed: Comparison  # the same with KOKOUS_ANSWER_CACHE_ENTRIES=0: every answer computed
    profile: Profile


async def seed_b1_owner(database_url: str, slug_prefix: str, start: datetime) -> BusyOwner:
    """B1's owner: ``CALENDARS`` calendars holding ``BUSY_EVENTS`` busy events over the window."""
    return await seed_busy_owner(
        database_url, slug_prefix=slug_prefix, calendars=CALENDARS, busy=BUSY_EVENTS, start=start, days=WINDOW_DAYS
    )


def run_backend(backend: str, database_url: str) -> Outcome:
    start = window_start()
    owner = asyncio.run(seed_b1_owner(database_url, f"b1-{backend}", start))
    body = slots_body(owner, start)
    with serve(1, server_env(database_url)) as (server,):
        comparison = asyncio.run(compare(server, body))
    with serve(1, {**server_env(database_url), "KOKOUS_ANSWER_CACHE_ENTRIES": "0"}) as (server,):
        computed = asyncio.run(compare(server, body))
    profile = asyncio.run(profile_in_process(database_url, body))
    return Outcome(backend, comparison, computed, profile)


def measure(run: Run) -> list[Outcome]:
    return on_each_database(run, run_backend)


# -- report ----------------------------------------------------------------------------------


def record(run: Run, outcome: Outcome) -> None:
    name, result, profile = outcome.backend, outcome.comparison, outcome.profile
    ratio = result.hello.rate / result.slots.rate
    loaded = Summary.of(result.slots.latencies).scaled(1000)
    serial = Summary.of(result.serial).scaled(1000)
    hello = Summary.of(result.hello.latencies).scaled(1000)
    run.figure(
        f"{name} hello-world throughput",
        result.hello.rate,
        "req/s",
        comparison=f"{result.hello.requests:,} requests, {CONCURRENCY} concurrent, p95 {hello.p95:.1f} ms",
    )
    run.figure(
        f"{name} slots throughput",
        result.slots.rate,
        "req/s",
        comparison=f"{result.slots.requests:,} requests, {CONCURRENCY} concurrent, rounds alternating with hello",
    )
    run.figure(
        f"{name} ratio hello / slots",
        ratio,
        "x",
        target=f"<= {TARGET_RATIO:.0f}x",
        passed=ratio <= TARGET_RATIO,
    )
    run.figure(
        f"{name} slots p95 under load",
        loaded.p95,
        "ms",
        comparison=f"{CONCURRENCY} concurrent; p50 {loaded.p50:.1f} ms, p99 {loaded.p99:.1f} ms",
        target=f"<= {TARGET_P95_MS:.0f} ms",
        passed=loaded.p95 <= TARGET_P95_MS,
    )
    run.figure(
        f"{name} slots p95 one client",
        serial.p95,
        "ms",
        comparison=f"unloaded, {len(result.serial)} requests one at a time; p50 {serial.p50:.1f} ms",
    )
    failures = result.hello.failures + result.slots.failures
    run.figure(
        f"{name} failed requests",
        failures,
        "",
        comparison=result.slots.first_failure or result.hello.first_failure,
        target="0",
        passed=failures == 0,
    )
    run.figure(f"{name} response size", result.size, "bytes", comparison=f"{result.slot_count} slots in 30 days")
    computed = outcome.computed
    computed_loaded = Summary.of(computed.slots.latencies).scaled(1000)
    run.figure(
        f"{name} computed slots throughput",
        computed.slots.rate,
        "req/s",
        comparison=f"answer cache off: every answer computed; hello {computed.hello.rate:,.0f} req/s",
    )
    run.figure(f"{name} computed ratio hello / slots", computed.hello.rate / computed.slots.rate, "x")
    run.figure(
        f"{name} computed slots p95 under load",
        computed_loaded.p95,
        "ms",
        comparison=f"{CONCURRENCY} concurrent; p50 {computed_loaded.p50:.1f} ms, one client p95 "
        f"{Summary.of(computed.serial).scaled(1000).p95:.1f} ms",
    )
    breakdown = ", ".join(f"{key} {value:.2f}" for key, value in profile.per_request_ms.items())
    run.note(
        f"{name} profile of computed answers, wall ms per slots request ({profile.sql_statements:.0f} SQL statements): {breakdown}"
    )
    note_cprofile(
        run,
        name,
        profile.categories_ms,
        per="request",
        file=f"b1_profile_{name}.txt",
        text=profile.top,
        of=f"{PROFILE_REQUESTS} slots requests",
    )
    run.chart[name] = {
        "hello_rps": result.hello.rate,
        "slots_rps": result.slots.rate,
        "computed_rps": computed.slots.rate,
        "ratio": ratio,
        "slots_ms": loaded.as_dict(),
        "serial_ms": serial.as_dict(),
        "size_bytes": result.size,
        "slot_count": result.slot_count,
        "profile_ms": profile.per_request_ms,
        "categories_ms": profile.categories_ms,
    }


def plot(ax: Any, run: Run) -> None:
    """Stacked bars: where one slots request's wall time goes, per backend."""
    backends = [name for name in ("sqlite", "postgres") if name in run.chart]
    layers = [
        ("same stack for {__typename}", "#8c8c8c"),
        ("page lookup: SQL", "#2a4d8f"),
        ("page lookup: session, ORM, Python", "#7fa2d9"),
        ("busy time: SQL", "#b35a1f"),
        ("busy time: rows to Intervals", "#f0a868"),
        ("slot engine", "#55a868"),
        ("slots service, rest (session, rules)", "#937860"),
        ("schema objects (SlotList.from_domain)", "#da8bc3"),
        ("GraphQL completion of the result (rest)", "#c44e52"),
        ("JSON encoding", "#8172b3"),
    ]
    for index, name in enumerate(backends):
        profile = cast(dict[str, float], run.chart[name]["profile_ms"])
        left = 0.0
        for layer, colour in layers:
            value = max(profile.get(layer, 0.0), 0.0)
            ax.barh(index, value, left=left, color=colour, label=layer if index == 0 else None)
            left += value
        chart = run.chart[name]
        ax.text(
            left,
            index,
            f"  kept answers {chart['slots_rps']:,.0f} vs hello {chart['hello_rps']:,.0f} req/s "
            f"({chart['ratio']:.2f}x, p95 {chart['slots_ms']['p95']:.1f} ms); computed {chart['computed_rps']:,.0f} req/s",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(range(len(backends)), backends)
    left_most = max(
        (sum(max(v, 0.0) for k, v in run.chart[n]["profile_ms"].items() if "request" not in k) for n in backends),
        default=1.0,
    )
    ax.set_xlim(0, left_most * 1.5)
    ax.set_xlabel("wall ms per computed slots request (in-process profile)")
    ax.set_title(f"B1 slots for {WINDOW_DAYS} days, {BUSY_EVENTS:,} busy events on {CALENDARS} calendars")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=6, ncols=4)


@benchmark("B1", "schedulingPage{slots} (30 days, 1,000 busy events, 3 calendars) vs {__typename}", plot=plot)
def b1(run: Run) -> None:
    for outcome in measure(run):
        record(run, outcome)
    run.note(
        f"one kokous serve process per backend; load alternates {ROUNDS} rounds hello/slots on {CONCURRENCY} "
        f"keep-alive connections; visitor zone {VISITOR_ZONE}; window from tomorrow 00:00 UTC"
    )
