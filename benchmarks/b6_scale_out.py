"""B6: live events across two ``kokous serve`` processes on Redis, then PostgreSQL, pub/sub.

Two owners each have a page with K ``slotsChanged`` subscribers: the *single-process* page is
watched on process A, the *cross-process* page on process B. Every event is raised through
process A (``updateCalendarConnection`` toggling ``schedulingPages``, which flips the page's
status ONLINE/OFFLINE), alternating between the two pages, so both are measured side by side in
one run. Latency is the time from sending the mutation to each subscriber receiving its ``next``.
Both pages' events travel through the pub/sub server; only the process of the subscribers differs.

Then the pub/sub server goes away (Redis: the private redis-server is killed and started again;
PostgreSQL: ``pg_terminate_backend`` of the ``kokous-pubsub-*`` connections of the private
database). Reported: for every subscriber the time until it got ``LIVE_UPDATES_INTERRUPTED``,
the time until each process answers ``/readyz`` 200 again, and whether every subscriber that
subscribes again gets the next event.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from benchmarks import Run, benchmark
from benchmarks.seed import SeededOwner, seed_owners
from benchmarks.servers import (
    RedisProcess,
    ServerProcess,
    postgres_admin_url,
    private_postgres_database,
    private_redis,
    serve,
    server_env,
    wait_ready,
)
from benchmarks.stats import Summary
from benchmarks.wsclient import Arrival, Subscriber, close_all, open_subscribers

SUBSCRIBERS = 50  # per page, so 2 x 50 WebSockets
EVENTS = 100  # per page
INTERVAL = 0.1  # seconds between two events (the pages alternate): ~10 events/s in all
WARM_UP = 5  # events per page before measuring
DELIVERY_TIMEOUT = 3.0
MEASURE_BUDGET = 60.0  # seconds per backend for the measured events; fewer events if it runs out
RESTART_TIMEOUT = 10.0  # give up waiting for an error / readiness after this (the target is 5 s)
REDIS_DOWN = 0.5  # seconds the private redis-server stays down before it is started again
TARGET_RATIO, TARGET_SLACK_MS, TARGET_RESTART_S = 1.5, 5.0, 5.0

Cut = Callable[[], Awaitable[tuple[str, float]]]  # cuts the pub/sub; (what was done, when it was back)

TOGGLE = """
mutation($id: ID!, $on: Boolean!) {
  updateCalendarConnection(id: $id, input: {schedulingPages: $on}) { __typename }
}
"""


@dataclass
class Side:
    """One page and its subscribers on one process."""

    label: str  # "single-process" | "cross-process"
    owner: SeededOwner
    server: ServerProcess
    subscribers: list[Subscriber] = field(default_factory=list)
    on: bool = True
    latencies: list[float] = field(default_factory=list)  # seconds
    mutation: list[float] = field(default_factory=list)  # seconds, the POST's own round trip
    missed: int = 0
    per_event: list[tuple[float, float, float]] = field(default_factory=list)  # first, last arrival; mutation
    unexpected: list[str] = field(default_factory=list)

    def variables(self) -> dict[str, Any]:
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=7)
        return {
            "slug": self.owner.slug,
            "start": start.isoformat(),
            "end": (start + timedelta(days=1)).isoformat(),
            "timezone": "UTC",
        }


@dataclass
class RestartResult:
    errors: list[float]  # seconds from the outage to each subscriber's error
    codes: dict[str, int]  # what each subscriber got: error code, "timeout", "closed", ...
    ready: dict[str, float]  # process -> seconds from the pub/sub being back to /readyz 200
    resumed: int
    subscribers: int
    detail: str


@dataclass
class Outcome:
    backend: str
    single: Side
    cross: Side
    restart: RestartResult | None
    events: int  # measured per page
    seconds: float  # how long the measured events took


# -- events ----------------------------------------------------------------------------------


async def raise_event(http: httpx.AsyncClient, side: Side) -> tuple[float, str]:
    """Toggle the page's calendar connection through process A; (send time, expected status)."""
    side.on = not side.on
    variables = {"id": str(side.owner.connection_id), "on": side.on}
    sent = time.perf_counter()
    response = await http.post(
        "/graphql",
        json={"query": TOGGLE, "variables": variables},
        headers={"authorization": f"Bearer {side.owner.token}"},
    )
    side.mutation.append(time.perf_counter() - sent)
    body = response.json()
    if body != {"data": {"updateCalendarConnection": {"__typename": "CalendarConnection"}}}:
        raise RuntimeError(f"the toggle mutation failed: {response.status_code} {body}")
    return sent, "ONLINE" if side.on else "OFFLINE"


async def collect(side: Side, sent: float, expected: str, *, record: bool) -> int:
    """Wait for every subscriber's next message; returns how many got the expected one."""
    arrivals = await asyncio.gather(*(s.next_arrival(DELIVERY_TIMEOUT) for s in side.subscribers))
    good = 0
    times = [arrival.at - sent for arrival in arrivals if arrival is not None]
    if record and times:
        side.per_event.append((min(times), max(times), side.mutation[-1]))
    for arrival in arrivals:
        if arrival is None:
            if record:
                side.missed += 1
            continue
        if arrival.kind == "next" and arrival.status == expected:
            good += 1
            if record:
                side.latencies.append(arrival.at - sent)
        else:
            side.unexpected.append(f"{arrival.kind}:{arrival.status or arrival.code}")
    return good


async def subscribe_all(side: Side) -> int:
    """(Re)subscribe every subscriber and wait for the first snapshot; returns how many got it."""
    for subscriber in side.subscribers:
        subscriber.drain()
    await asyncio.gather(*(s.subscribe(side.variables()) for s in side.subscribers))
    firsts = await asyncio.gather(*(s.next_arrival(DELIVERY_TIMEOUT * 2) for s in side.subscribers))
    statuses = {arrival.status for arrival in firsts if arrival is not None and arrival.kind == "next"}
    got = sum(1 for arrival in firsts if arrival is not None and arrival.kind == "next")
    if len(statuses) == 1:
        side.on = statuses.pop() == "ONLINE"
    return got


async def measure_latency(http: httpx.AsyncClient, sides: list[Side], events: int) -> int:
    """Raise ``events`` per side (alternating, paced); returns how many per side were measured."""
    for index in range(WARM_UP * len(sides)):
        side = sides[index % len(sides)]
        sent, expected = await raise_event(http, side)
        await collect(side, sent, expected, record=False)
        await asyncio.sleep(INTERVAL)
    for side in sides:
        side.unexpected.clear()
    started = time.perf_counter()
    for index in range(events * len(sides)):
        if index % len(sides) == 0 and time.perf_counter() - started > MEASURE_BUDGET:
            return index // len(sides)
        delay = started + index * INTERVAL - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        side = sides[index % len(sides)]
        sent, expected = await raise_event(http, side)
        await collect(side, sent, expected, record=True)
    return events


# -- the pub/sub outage ----------------------------------------------------------------------


async def outage(http: httpx.AsyncClient, sides: list[Side], servers: list[ServerProcess], cut: Cut) -> RestartResult:
    """Cut the pub/sub and time the consequences; ``cut`` returns when the pub/sub is back."""
    subscribers = [subscriber for side in sides for subscriber in side.subscribers]
    for subscriber in subscribers:
        subscriber.drain()
    cut_at = time.perf_counter()
    cutting = asyncio.create_task(cut())

    async def first_error(subscriber: Subscriber) -> Arrival | None:
        deadline = cut_at + RESTART_TIMEOUT
        while (left := deadline - time.perf_counter()) > 0:
            arrival = await subscriber.next_arrival(left)
            if arrival is None or arrival.kind != "next":
                return arrival  # an error (or the end): what we wait for
        return None

    arrivals = await asyncio.gather(*(first_error(subscriber) for subscriber in subscribers))
    detail, back_at = await cutting
    readiness = await asyncio.gather(*(wait_ready(http, server, within=RESTART_TIMEOUT) for server in servers))
    ready = {name: at - back_at for name, at in zip("AB", readiness, strict=True)}

    errors, codes = [], {}
    for arrival in arrivals:
        key = "timeout" if arrival is None else (arrival.code or arrival.kind)
        codes[key] = codes.get(key, 0) + 1
        if arrival is not None and arrival.kind == "error":
            errors.append(arrival.at - cut_at)

    resumed = 0
    if not any(math.isnan(value) for value in ready.values()):
        for side in sides:
            if await subscribe_all(side) == len(side.subscribers):
                sent, expected = await raise_event(http, side)
                resumed += await collect(side, sent, expected, record=False)
    return RestartResult(errors, codes, ready, resumed, len(subscribers), detail)


def redis_cut(redis: RedisProcess) -> Cut:
    async def cut() -> tuple[str, float]:
        await asyncio.to_thread(redis.kill)
        await asyncio.sleep(REDIS_DOWN)
        await asyncio.to_thread(redis.start)
        return f"redis-server killed (SIGKILL), down {REDIS_DOWN:.1f} s, started again", time.perf_counter()

    return cut


def postgres_cut(database_url: str) -> Cut:
    import asyncpg

    name = database_url.rsplit("/", 1)[1]

    async def cut() -> tuple[str, float]:
        admin = await asyncpg.connect(postgres_admin_url(), timeout=10)
        try:
            terminated = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND application_name LIKE 'kokous-pubsub-%'",
                name,
            )
        finally:
            await admin.close()
        return f"pg_terminate_backend of {terminated} kokous-pubsub-* connections", time.perf_counter()

    return cut


# -- one backend -----------------------------------------------------------------------------


async def exercise(backend: str, servers: list[ServerProcess], owners: list[SeededOwner], cut: Cut) -> Outcome:
    a, b = servers
    single = Side("single-process", owners[0], a)
    cross = Side("cross-process", owners[1], b)
    sides = [single, cross]
    async with httpx.AsyncClient(base_url=a.base_url, timeout=10, trust_env=False) as http:
        try:
            for side in sides:
                side.subscribers = await open_subscribers(side.server.ws_url, SUBSCRIBERS)
                got = await subscribe_all(side)
                if got != SUBSCRIBERS:
                    raise RuntimeError(f"{backend}: only {got}/{SUBSCRIBERS} {side.label} subscribers got a snapshot")
            started = time.perf_counter()
            events = await measure_latency(http, sides, EVENTS)
            seconds = time.perf_counter() - started
            restart = await outage(http, sides, servers, cut)
        finally:
            for side in sides:
                await close_all(side.subscribers)
    return Outcome(backend, single, cross, restart, events, seconds)


def run_backend(backend: str, database_url: str, broadcast_url: str, cut: Cut) -> Outcome:
    owners = asyncio.run(seed_owners(database_url, 2, slug_prefix=f"b6-{backend}"))
    env = server_env(database_url, broadcast_url, prefix=f"bench{uuid.uuid4().hex[:10]}")
    with serve(2, env) as servers:
        return asyncio.run(exercise(backend, servers, owners, cut))


def measure() -> list[Outcome]:
    outcomes = []
    with private_postgres_database() as database_url:
        with private_redis() as redis:
            outcomes.append(run_backend("redis", database_url, redis.url, redis_cut(redis)))
        broadcast = database_url.replace("postgresql+asyncpg://", "postgres://", 1)
        outcomes.append(run_backend("postgres", database_url, broadcast, postgres_cut(database_url)))
    return outcomes


# -- report ----------------------------------------------------------------------------------


def record(run: Run, outcome: Outcome) -> None:
    name = outcome.backend
    single = Summary.of(outcome.single.latencies).scaled(1000)
    cross = Summary.of(outcome.cross.latencies).scaled(1000)
    limit = TARGET_RATIO * single.p99 + TARGET_SLACK_MS
    run.figure(
        f"cross-process p50 {name}",
        cross.p50,
        "ms",
        comparison=f"single-process {single.p50:.1f} ms",
        single_ms=single.p50,
    )
    run.figure(
        f"cross-process p99 {name}",
        cross.p99,
        "ms",
        comparison=f"single-process {single.p99:.1f} ms, ratio {cross.p99 / single.p99:.2f}x, limit {limit:.1f} ms",
        target=f"<= {TARGET_RATIO}x + {TARGET_SLACK_MS:.0f} ms",
        passed=cross.p99 <= limit,
        single_ms=single.p99,
        ratio=cross.p99 / single.p99,
        limit_ms=limit,
    )
    expected = outcome.events * SUBSCRIBERS * 2
    delivered = len(outcome.single.latencies) + len(outcome.cross.latencies)
    mutation = Summary.of(outcome.single.mutation + outcome.cross.mutation).scaled(1000)
    run.figure(
        f"deliveries {name}",
        delivered,
        "",
        comparison=(
            f"of {expected} ({outcome.events} events x {SUBSCRIBERS} subscribers x 2 pages in "
            f"{outcome.seconds:.1f} s), "
            f"missed {outcome.single.missed + outcome.cross.missed}, "
            f"unexpected {len(outcome.single.unexpected) + len(outcome.cross.unexpected)}; "
            f"mutation round trip p50 {mutation.p50:.1f} ms"
        ),
        target="every event to every subscriber",
        passed=delivered == expected,
        expected=expected,
        missed=outcome.single.missed + outcome.cross.missed,
        mutation_ms=mutation.as_dict(),
    )
    restart = outcome.restart
    chart: dict[str, Any] = {"single_ms": single.as_dict(), "cross_ms": cross.as_dict(), "events": outcome.events}
    if restart is not None:
        errors = Summary.of(restart.errors)
        all_errored = restart.codes.get("LIVE_UPDATES_INTERRUPTED", 0) == restart.subscribers
        run.figure(
            f"restart {name}: slowest subscriber error",
            errors.max,
            "s",
            comparison=f"p50 {errors.p50:.3f} s; outcomes {restart.codes}; {restart.detail}",
            target=f"all {restart.subscribers} LIVE_UPDATES_INTERRUPTED <= {TARGET_RESTART_S:.0f} s",
            passed=all_errored and errors.max <= TARGET_RESTART_S,
            errors_s=errors.as_dict(),
            outcomes=restart.codes,
        )
        waits = list(restart.ready.values())
        slowest = math.nan if any(math.isnan(wait) for wait in waits) else max(waits)
        run.figure(
            f"restart {name}: ready again",
            slowest,
            "s",
            comparison="after the pub/sub was back: " + ", ".join(f"{k} {v:.2f} s" for k, v in restart.ready.items()),
            target=f"<= {TARGET_RESTART_S:.0f} s",
            passed=slowest <= TARGET_RESTART_S,
            per_process_s=restart.ready,
        )
        run.figure(
            f"restart {name}: resumed",
            restart.resumed,
            "",
            comparison=f"of {restart.subscribers} subscribed again and got the next event",
            target="all",
            passed=restart.resumed == restart.subscribers,
        )
        chart["restart"] = {"errors_max_s": errors.max, "errors_p50_s": errors.p50, "ready_s": restart.ready}
    run.chart[name] = chart
    for side in (outcome.single, outcome.cross):
        note = outliers(side)
        if note:
            run.note(f"{name} {side.label}: {note}")


def outliers(side: Side) -> str | None:
    """The events whose last delivery took over 3x the median: p99 of 50 x 100 samples is the worst event."""
    if not side.per_event:
        return None
    typical = Summary.of([last for _, last, _ in side.per_event]).p50
    slow = sorted((event for event in side.per_event if event[1] > 3 * typical), key=lambda event: -event[1])
    if not slow:
        return None
    described = "; ".join(
        f"last delivery {last * 1000:.0f} ms (first {first * 1000:.0f} ms, mutation round trip {mutation * 1000:.0f} ms)"
        for first, last, mutation in slow[:3]
    )
    return f"{len(slow)} of {len(side.per_event)} events over 3x the median {typical * 1000:.0f} ms: {described}"


def plot(ax: Any, run: Run) -> None:
    backends = [name for name in ("redis", "postgres") if name in run.chart]
    labels, singles, crosses, limits = [], [], [], []
    for name in backends:
        for q in ("p50", "p99"):
            labels.append(f"{name} {q}")
            singles.append(run.chart[name]["single_ms"][q])
            crosses.append(run.chart[name]["cross_ms"][q])
            limits.append(TARGET_RATIO * run.chart[name]["single_ms"]["p99"] + TARGET_SLACK_MS if q == "p99" else None)
    positions = range(len(labels))
    width = 0.38
    bars = ax.bar([p - width / 2 for p in positions], singles, width, label="single-process", color="#4c72b0")
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    bars = ax.bar([p + width / 2 for p in positions], crosses, width, label="cross-process", color="#dd8452")
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    for position, limit in zip(positions, limits, strict=True):
        if limit is not None:
            ax.hlines(limit, position - 0.45, position + 0.45, colors="#c44e52", linestyles="dashed")
    ax.plot([], [], color="#c44e52", linestyle="dashed", label="target (1.5x single p99 + 5 ms)")
    ax.set_xticks(list(positions), labels)
    ax.set_ylabel("delivery latency (ms)")
    heights = [value for value in (*singles, *crosses, *limits) if value is not None and math.isfinite(value)]
    if heights:
        ax.set_ylim(0, max(heights) * 1.3)
    events = ", ".join(f"{name} {run.chart[name]['events']}" for name in backends)
    ax.set_title(f"B6 live events over pub/sub: {SUBSCRIBERS} subscribers per page, events per page: {events}")
    restarts = [
        f"{name} restart: errors max {run.chart[name]['restart']['errors_max_s']:.2f} s, ready "
        + ", ".join(f"{k} {v:.2f} s" for k, v in run.chart[name]["restart"]["ready_s"].items())
        for name in backends
        if "restart" in run.chart[name]
    ]
    if restarts:
        ax.set_xlabel("\n".join(restarts), fontsize=8, family="monospace")
    ax.legend(loc="upper left", fontsize=8, ncols=3)


@benchmark("B6", "two server processes on Redis, then PostgreSQL, pub/sub; pub/sub restarted", plot=plot)
def b6(run: Run) -> None:
    for outcome in measure():
        record(run, outcome)
    run.note(
        f"{SUBSCRIBERS} graphql-transport-ws subscribers per page, events alternate between the pages every "
        f"{INTERVAL * 1000:.0f} ms, all raised through process A; latency = mutation sent -> next received"
    )
