"""B7: ``schedulingPage{slots}`` computed every time: B1's page, a new window on every request.

B1 measures the page as visitors mostly see it, served from kept answers. A visitor who pages
to another month, or any window nobody asked for yet, gets a computed answer: that path is what
this measures. Every slots request asks a window never asked before (its start moves by one
second per request), so the kept-answer cache, which is on as shipped, can never serve it; the
server's ``/metrics`` hit counter is checked to be 0 afterwards.

* (a) Throughput: one ``kokous serve`` process answers ``{__typename}`` and computed slots in
  alternating rounds over the same keep-alive connections (as B1), so both rates share the same
  minutes. Target: computed slots at least 1/8 of hello-world.
* (b) One client, one request at a time: each slots request is followed, in this process, by
  the floor for the same window: the slot engine alone (bookable range, free slots, stability)
  on busy rows read by ONE query of the bare driver (aiosqlite / asyncpg, no ORM). Target: the
  requests' p95 at most 4x that floor's median.

Then the same requests are profiled in-process (B1's layer timers and cProfile categories).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx

from benchmarks import Run, benchmark
from benchmarks.b1_slots import (
    BUSY_EVENTS,
    HELLO,
    PROFILE_REQUESTS,
    VISITOR_ZONE,
    WINDOW_DAYS,
    Profile,
    hello_ok,
    note_cprofile,
    profile_in_process,
    seed_b1_owner,
    slots_body,
    slots_ok,
    window_start,
)
from benchmarks.loadgen import LoadResult, close_connections, exchange, open_connections, post_request, run_load
from benchmarks.rawdb import RawDb
from benchmarks.seed import BusyOwner
from benchmarks.servers import ServerProcess, on_each_database, serve, server_env
from benchmarks.stats import Summary

CONCURRENCY = 10
ROUNDS = 3
HELLO_PER_ROUND = 1_000
SLOTS_ROUND_SECONDS = 2.5
SERIAL_SAMPLES = 60
TARGET_SHARE = 8.0  # computed slots req/s >= hello req/s / 8
TARGET_FLOOR_RATIO = 4.0  # one-client p95 <= 4x (engine + one raw read)


class Windows:
    """Request bodies for windows never asked before: the start moves one second each time."""

    def __init__(self, owner: BusyOwner, start: datetime) -> None:
        self.owner = owner
        self.start = start
        self._offsets = itertools.count()

    def next_window(self) -> tuple[datetime, datetime]:
        start = self.start + timedelta(seconds=next(self._offsets))
        return start, start + timedelta(days=WINDOW_DAYS)

    def body(self, window: tuple[datetime, datetime]) -> dict[str, Any]:
        return slots_body(self.owner, window[0])

    def next_body(self) -> dict[str, Any]:
        return self.body(self.next_window())


async def run_distinct(
    port: int, requests: list[bytes], concurrency: int, check: Callable[[int, bytes], bool]
) -> LoadResult:
    """Like ``loadgen.run_load``, but every request is different: the workers share one queue."""
    queue = deque(requests)
    result = LoadResult(seconds=0.0)
    connections = await open_connections(port, concurrency)

    async def worker(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        while queue:
            status, body, seconds = await exchange(connection, queue.popleft())
            result.latencies.append(seconds)
            if not check(status, body):
                result.failures += 1
                result.first_failure = result.first_failure or f"{status} {body[:200]!r}"

    started = time.perf_counter()
    try:
        async with asyncio.timeout(max(60.0, len(requests) * 0.05)):
            await asyncio.gather(*(worker(connection) for connection in connections))
    finally:
        result.seconds = time.perf_counter() - started
        await close_connections(connections)
    return result


# -- the floor: engine alone plus one raw read ---------------------------------------------


@dataclass
class Floor:
    """The page's rules (read once through the ORM, untimed) and a bare driver connection."""

    raw: RawDb
    calendar_ids: list[uuid.UUID]
    rules: Any
    slot_rules: Any
    margin: timedelta
    read_ms: list[float] = field(default_factory=list)
    engine_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    rows: int = 0

    async def busy_rows(self, start: datetime, end: datetime) -> list[Any]:
        raw = self.raw
        if raw.sqlite:
            marks = ", ".join("?" for _ in self.calendar_ids)
            statement = f"SELECT start_at, end_at FROM busy_intervals WHERE calendar_id IN ({marks}) AND start_at < ? AND end_at > ?"
            return await raw.fetch(statement, *(raw.id(i) for i in self.calendar_ids), raw.time(end), raw.time(start))
        statement = (
            "SELECT start_at, end_at FROM busy_intervals WHERE calendar_id = ANY(?) AND start_at < ? AND end_at > ?"
        )
        return await raw.fetch(statement, self.calendar_ids, end, start)

    async def measure(self, start: datetime, end: datetime) -> int:
        """One window as the server computes it, minus everything but the engine and one read."""
        from scheduling.engine import Interval, bookable_range, free_slots, stable_until

        began = time.perf_counter()
        now = datetime.now(UTC)
        bookable = bookable_range(self.rules, self.slot_rules, now)
        if bookable is None:
            raise RuntimeError("the page has no bookable range")
        first, last = max(start, bookable.start) - self.margin, min(end, bookable.end) + self.margin
        engine = time.perf_counter() - began
        read = time.perf_counter()
        rows = await self.busy_rows(first, last)
        to_time = self.raw.read_time
        busy = [Interval(to_time(row[0]), to_time(row[1])) for row in rows]
        read = time.perf_counter() - read
        computing = time.perf_counter()
        slots = free_slots(self.rules, self.slot_rules, busy, start, end, now)
        stable_until(self.rules, self.slot_rules, now, slots)
        engine += time.perf_counter() - computing
        self.read_ms.append(read * 1000)
        self.engine_ms.append(engine * 1000)
        self.total_ms.append((time.perf_counter() - began) * 1000)
        self.rows = len(rows)
        return len(slots)


async def open_floor(database_url: str, owner: BusyOwner) -> Floor:
    from sqlmodel import select

    from db.engine import Database
    from db.models import SchedulingPage
    from scheduling.pages.availability import slot_rules, weekly_rules

    database = Database(database_url)
    try:
        async with database.session() as session:
            page = (await session.exec(select(SchedulingPage).where(SchedulingPage.slug == owner.slug))).one()
    finally:
        await database.dispose()
    raw = RawDb(database_url)
    await raw.open()
    duration = page.durations[0]
    return Floor(
        raw=raw,
        calendar_ids=owner.calendar_ids,
        rules=weekly_rules(page),
        slot_rules=slot_rules(page, duration),
        margin=timedelta(minutes=duration + page.buffer_minutes),
    )


# -- one server ------------------------------------------------------------------------------


@dataclass
class Measured:
    hello: LoadResult
    slots: LoadResult
    serial_ms: list[float]
    floor: Floor
    slot_counts: set[tuple[int, int]]  # (server's slots, floor's slots) per serial sample
    cache_hits: float
    cache_misses: float


def _merge(results: list[LoadResult]) -> LoadResult:
    merged = LoadResult(seconds=sum(result.seconds for result in results))
    for result in results:
        merged.latencies.extend(result.latencies)
        merged.failures += result.failures
        merged.first_failure = merged.first_failure or result.first_failure
    return merged


async def cache_counts(server: ServerProcess) -> tuple[float, float]:
    """(hits, misses) of the server's kept-answer cache, from its ``/metrics``."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{server.base_url}/metrics", timeout=10)).text

    def count(outcome: str) -> float:
        found = re.search(rf'^kokous_answer_cache_total\{{outcome="{outcome}"\}} (\S+)$', text, re.MULTILINE)
        return float(found.group(1)) if found else float("nan")

    return count("hit"), count("miss")


async def measure_server(server: ServerProcess, windows: Windows, floor: Floor) -> Measured:
    port = server.port

    def slot_requests(count: int) -> list[bytes]:
        return [post_request("127.0.0.1", port, "/graphql", windows.next_body()) for _ in range(count)]

    hello_request = post_request("127.0.0.1", port, "/graphql", HELLO)
    await run_load(port, hello_request, requests=300, concurrency=CONCURRENCY, check=hello_ok)
    warm = await run_distinct(port, slot_requests(4 * CONCURRENCY), CONCURRENCY, slots_ok)
    if warm.failures:
        raise RuntimeError(f"the slots query failed: {warm.first_failure}")
    per_round = max(2 * CONCURRENCY, min(2_000, int(warm.rate * SLOTS_ROUND_SECONDS)))

    serial_ms: list[float] = []
    counts: set[tuple[int, int]] = set()
    (connection,) = await open_connections(port, 1)
    try:
        for _ in range(SERIAL_SAMPLES):
            window = windows.next_window()
            request = post_request("127.0.0.1", port, "/graphql", windows.body(window))
            status, body, seconds = await exchange(connection, request)
            if not slots_ok(status, body):
                raise RuntimeError(f"the slots query failed: {status} {body[:300]!r}")
            serial_ms.append(seconds * 1000)
            counts.add((body.count(b'"start"'), await floor.measure(*window)))
    finally:
        await close_connections([connection])

    hellos, slots = [], []
    for _ in range(ROUNDS):
        hellos.append(
            await run_load(port, hello_request, requests=HELLO_PER_ROUND, concurrency=CONCURRENCY, check=hello_ok)
        )
        slots.append(await run_distinct(port, slot_requests(per_round), CONCURRENCY, slots_ok))
    hits, misses = await cache_counts(server)
    return Measured(_merge(hellos), _merge(slots), serial_ms, floor, counts, hits, misses)


@dataclass
class Outcome:
    backend: str
    measured: Measured
    profile: Profile


def run_backend(backend: str, database_url: str) -> Outcome:
    start = window_start()
    owner = asyncio.run(seed_b1_owner(database_url, f"b7-{backend}", start))
    windows = Windows(owner, start)

    async def served(server: ServerProcess) -> Measured:
        floor = await open_floor(database_url, owner)
        try:
            return await measure_server(server, windows, floor)
        finally:
            await floor.raw.close()

    with serve(1, server_env(database_url)) as (server,):
        measured = asyncio.run(served(server))
    profile = asyncio.run(
        profile_in_process(database_url, windows.next_body, "computed slots requests, a new window each")
    )
    return Outcome(backend, measured, profile)


# -- report ----------------------------------------------------------------------------------


def record(run: Run, outcome: Outcome) -> None:
    name, measured, profile = outcome.backend, outcome.measured, outcome.profile
    hello, slots = measured.hello, measured.slots
    share = hello.rate / slots.rate
    run.figure(
        f"{name} hello-world throughput",
        hello.rate,
        "req/s",
        comparison=f"{len(hello.latencies):,} requests, {CONCURRENCY} concurrent",
    )
    run.figure(
        f"{name} computed slots throughput",
        slots.rate,
        "req/s",
        comparison=f"{len(slots.latencies):,} requests, each a new window, {CONCURRENCY} concurrent, rounds alternating with hello",
    )
    run.figure(
        f"{name} ratio hello / computed slots",
        share,
        "x",
        comparison=f"computed slots = 1/{share:.0f} of hello-world",
        target=f"<= {TARGET_SHARE:.0f}x (slots >= 1/{TARGET_SHARE:.0f} of hello)",
        passed=share <= TARGET_SHARE,
    )
    loaded = Summary.of(slots.latencies).scaled(1000)
    run.figure(
        f"{name} computed slots p95 under load",
        loaded.p95,
        "ms",
        comparison=f"{CONCURRENCY} concurrent; p50 {loaded.p50:.1f} ms, p99 {loaded.p99:.1f} ms",
    )
    serial = Summary.of(measured.serial_ms)
    floor = measured.floor
    total, read, engine = Summary.of(floor.total_ms), Summary.of(floor.read_ms), Summary.of(floor.engine_ms)
    run.figure(
        f"{name} engine + one raw read",
        total.p50,
        "ms",
        comparison=(
            f"median of {total.count} windows: raw read of {floor.rows:,} busy rows {read.p50:.2f} ms + engine "
            f"{engine.p50:.2f} ms; p95 {total.p95:.2f} ms"
        ),
    )
    ratio = serial.p95 / total.p50
    run.figure(
        f"{name} computed slots p95 one client",
        serial.p95,
        "ms",
        comparison=f"{ratio:.1f}x the floor's median; {serial.count} requests one at a time, p50 {serial.p50:.1f} ms",
        target=f"<= {TARGET_FLOOR_RATIO:.0f}x engine + one raw read ({TARGET_FLOOR_RATIO * total.p50:.1f} ms)",
        passed=ratio <= TARGET_FLOOR_RATIO,
    )
    same = all(server == alone for server, alone in measured.slot_counts)
    failures = hello.failures + slots.failures
    run.figure(
        f"{name} failed requests",
        failures,
        "",
        comparison=slots.first_failure or hello.first_failure,
        target="0",
        passed=failures == 0,
    )
    run.figure(
        f"{name} kept answers served",
        measured.cache_hits,
        "",
        comparison=f"server's answer cache: {measured.cache_misses:,.0f} misses; every slots answer computed",
        target="0",
        passed=measured.cache_hits == 0,
    )
    if not same:
        run.note(f"{name} the floor found a different number of slots than the server: {sorted(measured.slot_counts)}")
    breakdown = ", ".join(f"{key} {value:.2f}" for key, value in profile.per_request_ms.items())
    run.note(
        f"{name} profile of computed answers (new window each), wall ms per slots request "
        f"({profile.sql_statements:.0f} SQL statements): {breakdown}"
    )
    note_cprofile(
        run,
        name,
        profile.categories_ms,
        per="request",
        file=f"b7_profile_{name}.txt",
        text=profile.top,
        of=f"{PROFILE_REQUESTS} computed slots requests",
    )
    run.chart[name] = {
        "hello_rps": hello.rate,
        "slots_rps": slots.rate,
        "ratio": share,
        "slots_ms": loaded.as_dict(),
        "serial_ms": serial.as_dict(),
        "floor_ms": total.as_dict(),
        "floor_read_ms": read.as_dict(),
        "floor_engine_ms": engine.as_dict(),
        "cache_hits": measured.cache_hits,
        "profile_ms": profile.per_request_ms,
        "categories_ms": profile.categories_ms,
    }


def plot(ax: Any, run: Run) -> None:
    """Per backend: where a computed request's time goes, against 4x the floor."""
    backends = [name for name in ("sqlite", "postgres") if name in run.chart]
    for index, name in enumerate(backends):
        chart = run.chart[name]
        profile = cast(dict[str, float], chart["profile_ms"])
        left = 0.0
        for layer, value in profile.items():
            if layer.startswith("request") or value <= 0:
                continue
            ax.barh(index, value, left=left, label=layer if index == 0 else None)
            left += value
        limit = TARGET_FLOOR_RATIO * chart["floor_ms"]["p50"]
        ax.plot([limit, limit], [index - 0.4, index + 0.4], color="black", linewidth=2)
        ax.text(
            left,
            index,
            f"  one client p95 {chart['serial_ms']['p95']:.1f} ms (limit {limit:.1f}); "
            f"{chart['slots_rps']:,.0f} vs hello {chart['hello_rps']:,.0f} req/s ({chart['ratio']:.0f}x)",
            va="center",
            fontsize=7,
        )
    ax.set_yticks(range(len(backends)), backends)
    widest = max(
        (sum(max(v, 0.0) for k, v in run.chart[n]["profile_ms"].items() if "request" not in k) for n in backends),
        default=1.0,
    )
    ax.set_xlim(0, widest * 2.2)  # room for the labels
    ax.set_xlabel("wall ms per computed slots request (in-process profile); black: 4x engine + one raw read")
    ax.set_title(f"B7 computed slots, a new {WINDOW_DAYS}-day window each request, {BUSY_EVENTS:,} busy events")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=6, ncols=4)


def measure(run: Run) -> list[Outcome]:
    return on_each_database(run, run_backend)


@benchmark("B7", "schedulingPage{slots} computed every time (a new window each request) vs {__typename}", plot=plot)
def b7(run: Run) -> None:
    for outcome in measure(run):
        record(run, outcome)
    run.note(
        f"one kokous serve process per backend, answer cache on as shipped; {ROUNDS} rounds hello/slots on "
        f"{CONCURRENCY} keep-alive connections; the floor runs in the benchmark process, interleaved with the "
        f"one-client requests; visitor zone {VISITOR_ZONE}"
    )
