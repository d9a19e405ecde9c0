"""B4: 1,000 ``slotsChanged`` subscribers vs 1,000 raw pub/sub listeners on the same channel.

One ``kokous serve`` process (one worker, SQLite) on a private redis-server. Two listener
processes run side by side, each with 1,000 subscriptions:

* **slotsChanged**: ``MULTIPLEX`` subscriptions per WebSocket (the server's cap is raised to
  that through ``KOKOUS_MAX_SUBSCRIPTIONS_PER_CONNECTION``), all on the same page, window
  (``WINDOW_DAYS`` days from tomorrow) and duration, so the server shares one slot feed;
* **raw**: ``pubsub.EventHub`` subscriptions on the page owner's channel of the same
  Redis, in their own process: the broadcaster floor the GraphQL layer is compared with.

Every ``INTERVAL`` s the driver (this process) changes the page's slots through the server:
``bookMeeting`` on one of two free slots, then ``cancelBookingByToken`` of it, then the other
slot, ``BOOKINGS`` times. Each change publishes one ``availability_changed`` event after commit.
Latency is from the mutation being sent to each subscription's message (``time.monotonic``,
one clock for all processes on Linux); every subscription must get one message per change.
Server memory per idle subscriber is the RSS of the server process after the 1,000
subscriptions got their first snapshot minus its RSS before the sockets were opened, / 1,000.

``python -m benchmarks.b4_fanout ws|raw ...`` is the listener process (see :func:`child`).
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import json
import math
import os
import pstats
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from benchmarks import Run, benchmark
from benchmarks.b1_slots import Buckets, _timed, _timed_async, per_unit_ms, profile_text, write_profile
from benchmarks.seed import CANCEL_BY_TOKEN, SLOTS, book_body, seed_busy_owner, seed_settings
from benchmarks.servers import ServerProcess, private_redis, rss_bytes, serve, server_env, sqlite_database
from benchmarks.stats import Summary, percentile

SUBSCRIBERS = 1_000
MULTIPLEX = 20  # subscriptions per WebSocket: 50 sockets (the server's default cap is 20)
WINDOW_DAYS = 7  # a week view
BOOKINGS = 20  # each followed by its cancellation: 2 x BOOKINGS changes
INTERVAL = 0.25  # seconds between two changes
DRAIN = 5.0  # seconds to wait for late messages after the last change
READY_WITHIN = 120.0  # for 1,000 subscriptions to get their first snapshot
PROFILE_CHANGES = 8  # changes in the in-process profiling run
SETTLE = 1.0  # seconds before reading the server's RSS
TARGET_RATIO, TARGET_P99_MS, TARGET_KB = 2.0, 250.0, 100.0
ROOT = Path(__file__).resolve().parents[1]


# -- the listener processes ------------------------------------------------------------------


async def _read_line() -> str:
    return (await asyncio.to_thread(sys.stdin.readline)).strip()


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _quiet_gc() -> None:
    """The listeners are the measuring instrument: a collector pause in them (their arrival
    records grow to 40,000 objects) would be counted as delivery latency of the server. Both
    kinds stop collecting once set up; a run lasts seconds."""
    gc.collect()
    gc.freeze()
    gc.disable()


async def ws_listener(url: str, variables: dict[str, Any], count: int, per_socket: int) -> None:
    """Open the sockets, say CONNECTED, wait for GO, subscribe, say READY after every snapshot."""
    from benchmarks.wsclient import Multiplexed

    sockets = math.ceil(count / per_socket)
    gate = asyncio.Semaphore(10)
    opened: list[Multiplexed] = []
    arrived = asyncio.Event()

    async def one() -> None:
        async with gate:
            opened.append(await Multiplexed.open(url, notify=arrived))

    try:
        await asyncio.gather(*(one() for _ in range(sockets)))
        _say("CONNECTED")
        if await _read_line() != "GO":
            return
        started = time.monotonic()
        for index, socket in enumerate(opened):
            await socket.subscribe(min(per_socket, count - index * per_socket), variables)
        streams = [marks for socket in opened for marks in socket.marks.values()]
        deadline = started + READY_WITHIN
        while not all(streams) and (left := deadline - time.monotonic()) > 0:
            arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), left)
        _quiet_gc()
        _say(f"READY {sum(1 for item in streams if item)} {time.monotonic() - started:.3f}")
        await _read_line()  # STOP
        result = {
            "arrivals": [[[mark.at, mark.size, mark.kind] for mark in item] for item in streams],
            "closed": sum(1 for socket in opened if socket.closed),
            "other": [text for socket in opened for text in socket.other][:5],
        }
        _say(json.dumps(result))
    finally:
        await asyncio.gather(*(socket.close() for socket in opened), return_exceptions=True)


async def raw_listener(url: str, channel: str, count: int) -> None:
    """``count`` EventHub subscriptions on one channel; say READY, record until STOP."""
    from pubsub import EventHub

    hub = EventHub(url)
    await hub.connect()
    arrivals: list[list[list[Any]]] = [[] for _ in range(count)]

    async def listen(index: int, messages: Any) -> None:
        async for message in messages:
            at = time.monotonic()
            if '"availability_changed"' in message:
                arrivals[index].append(
                    [at, len(message), "booking_changed" if "booking_changed" in message else "booking"]
                )

    try:
        async with AsyncExitStack() as stack:
            subscriptions = [await stack.enter_async_context(hub.subscribe(channel)) for _ in range(count)]
            tasks = [asyncio.create_task(listen(index, item)) for index, item in enumerate(subscriptions)]
            _quiet_gc()
            _say(f"READY {count} 0")
            await _read_line()  # STOP
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        _say(json.dumps({"arrivals": arrivals, "closed": 0, "other": []}))
    finally:
        await hub.disconnect()


def child(argv: list[str]) -> None:
    kind = argv[0]
    if kind == "ws":
        asyncio.run(ws_listener(argv[1], json.loads(argv[2]), int(argv[3]), int(argv[4])))
    elif kind == "raw":
        asyncio.run(raw_listener(argv[1], argv[2], int(argv[3])))
    else:
        raise SystemExit(f"unknown listener kind {kind!r}")


class Listener:
    """A listener process, driven over its stdin/stdout, killed by its handle at the end."""

    def __init__(self, process: asyncio.subprocess.Process, label: str) -> None:
        self.process = process
        self.label = label

    @classmethod
    async def start(cls, label: str, args: list[str], log: Path) -> Listener:
        with log.open("wb") as handle:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "benchmarks.b4_fanout",
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=handle,
                cwd=ROOT,
                limit=64 * 1024 * 1024,
            )
        return cls(process, label)

    async def expect(self, word: str, within: float) -> list[str]:
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(within):
                line = (await self.process.stdout.readline()).decode().split()
        except TimeoutError:
            raise RuntimeError(f"{self.label} listener did not say {word} within {within:.0f} s") from None
        if not line or line[0] != word:
            raise RuntimeError(f"{self.label} listener said {line[:5]!r}, expected {word}")
        return line[1:]

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def result(self, within: float = 30.0) -> dict[str, Any]:
        await self.send("STOP")
        assert self.process.stdout is not None
        async with asyncio.timeout(within):
            line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.label} listener ended without a result")
        return json.loads(line)

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.process.wait(), 10)


# -- the driver ------------------------------------------------------------------------------


@dataclass
class Change:
    sent: float
    kind: str  # "booking" | "booking_changed"
    mutation: float  # the mutation's round trip, seconds


@dataclass
class Delivery:
    """One listener kind's view of the changes."""

    latencies: list[float] = field(default_factory=list)  # seconds
    delivered: int = 0
    missing: int = 0
    wrong: int = 0  # a message that does not fit the change it was matched with
    errors: int = 0
    closed: int = 0
    ready: int = 0
    ready_seconds: float = 0.0
    other: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    ws: Delivery
    raw: Delivery
    changes: list[Change]
    rss_before: int
    rss_connected: int
    rss_idle: int
    sockets: int
    slot_count: int
    variables: dict[str, Any]
    booked: list[str]  # the two slots the changes book and cancel
    spreads: list[float] = field(default_factory=list)  # per change: last - first slotsChanged delivery, s
    after_publish: list[float] = field(default_factory=list)  # slotsChanged delivery - first raw delivery, s
    profile: FanoutProfile | None = None


@dataclass
class FanoutProfile:
    messages: int  # slotsChanged messages delivered while profiled
    changes: int
    cpu_us: float  # server process CPU per message (the driver's own requests included)
    layers_us: dict[str, float]  # wall per message
    refreshes: int  # shared feed recomputations
    categories_us: dict[str, float]
    text: str


def match(arrivals: list[list[Any]], changes: list[Change], *, snapshot: bool, into: Delivery) -> None:
    """The n-th message after the snapshot belongs to the n-th change; check it fits."""
    base = 0
    if snapshot:
        if not arrivals or arrivals[0][2] != "next":
            into.errors += 1 if arrivals else 0
            into.missing += len(changes)
            return
        base = arrivals[0][1]
    messages = arrivals[1:] if snapshot else arrivals
    for index, change in enumerate(changes):
        if index >= len(messages):
            into.missing += 1
            continue
        at, size, kind = messages[index]
        if kind == "error":
            into.errors += 1
            continue
        fits = (size < base) == (change.kind == "booking") if snapshot else kind == change.kind
        if not fits:
            into.wrong += 1
        into.delivered += 1
        into.latencies.append(at - change.sent)


async def drive(http: httpx.AsyncClient, slug: str, slots: list[str], count: int = 2 * BOOKINGS) -> list[Change]:
    """``count`` changes, one every INTERVAL: book a slot, cancel it, book the other, ..."""
    changes: list[Change] = []
    started = time.monotonic()
    for index in range(count):
        delay = started + index * INTERVAL - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sent = time.monotonic()
        if index % 2 == 0:
            start = slots[(index // 2) % 2]
            body = book_body(slug, start, f"b4-{index}@example.com")
            response = (await http.post("/graphql", json=body)).json()
            result = response.get("data", {}).get("bookMeeting") or {}
            if result.get("__typename") != "Booking":
                raise RuntimeError(f"booking {start} failed: {response}")
            token = result["manageToken"]
            changes.append(Change(sent, "booking", time.monotonic() - sent))
        else:
            body = {"query": CANCEL_BY_TOKEN, "variables": {"token": token}}
            response = (await http.post("/graphql", json=body)).json()
            result = response.get("data", {}).get("cancelBookingByToken") or {}
            if result.get("status") != "CANCELLED":
                raise RuntimeError(f"cancelling failed: {response}")
            changes.append(Change(sent, "booking_changed", time.monotonic() - sent))
    return changes


async def exercise(server: ServerProcess, redis_url: str, prefix: str, owner_id: uuid.UUID, slug: str) -> Outcome:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    variables = {
        "slug": slug,
        "start": start.isoformat(),
        "end": (start + timedelta(days=WINDOW_DAYS)).isoformat(),
        "timezone": "UTC",
    }
    channel = f"{prefix}_owner_{owner_id.hex}"  # scheduling.events: EventBus.channel(owner_channel_key)
    sockets = math.ceil(SUBSCRIBERS / MULTIPLEX)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, trust_env=False) as http:
        answer = (await http.post("/graphql", json={"query": SLOTS, "variables": variables})).json()
        free = [slot["start"] for slot in answer["data"]["schedulingPage"]["slots"]["slots"]]
        if len(free) < 2:
            raise RuntimeError(f"the page has {len(free)} free slots; need 2")
        for _ in range(20):  # warm the server: the HTTP stack and the slot query
            await http.post("/graphql", json={"query": SLOTS, "variables": variables})
        await asyncio.sleep(SETTLE)
        pid = server.process.pid
        rss_before = rss_bytes(pid)
        with tempfile.TemporaryDirectory(prefix="kokous-bench-b4-") as folder:
            listeners: list[Listener] = []
            try:
                ws = await Listener.start(
                    "slotsChanged",
                    ["ws", server.ws_url, json.dumps(variables), str(SUBSCRIBERS), str(MULTIPLEX)],
                    Path(folder) / "ws.log",
                )
                listeners.append(ws)
                await ws.expect("CONNECTED", 60)
                await asyncio.sleep(SETTLE)
                rss_connected = rss_bytes(pid)
                await ws.send("GO")
                ready_ws = await ws.expect("READY", READY_WITHIN + 10)
                await asyncio.sleep(SETTLE)
                rss_idle = rss_bytes(pid)
                raw = await Listener.start(
                    "raw", ["raw", redis_url, channel, str(SUBSCRIBERS)], Path(folder) / "raw.log"
                )
                listeners.append(raw)
                ready_raw = await raw.expect("READY", 60)
                await asyncio.sleep(SETTLE)
                changes = await drive(http, slug, free[:2])
                await asyncio.sleep(DRAIN)
                ws_result, raw_result = await ws.result(), await raw.result()
            finally:
                for listener in listeners:
                    await listener.stop()
    outcome = Outcome(
        Delivery(), Delivery(), changes, rss_before, rss_connected, rss_idle, sockets, len(free), variables, free[:2]
    )
    for delivery, result, ready, snapshot in (
        (outcome.ws, ws_result, ready_ws, True),
        (outcome.raw, raw_result, ready_raw, False),
    ):
        delivery.ready, delivery.ready_seconds = int(ready[0]), float(ready[1])
        delivery.closed, delivery.other = result["closed"], result["other"]
        for arrivals in result["arrivals"]:
            match(arrivals, changes, snapshot=snapshot, into=delivery)
    outcome.spreads = spreads(ws_result["arrivals"], len(changes))
    outcome.after_publish = after_publish(ws_result["arrivals"], raw_result["arrivals"], len(changes))
    return outcome


def after_publish(ws: list[list[list[Any]]], raw: list[list[list[Any]]], changes: int) -> list[float]:
    """slotsChanged deliveries measured from the first raw listener's copy of the same change: the
    event's arrival on the pub/sub (+ one Redis hop), so the booking's own time is left out."""
    result = []
    for index in range(changes):
        firsts = [item[index][0] for item in raw if len(item) > index]
        if not firsts:
            continue
        reference = min(firsts)
        result.extend(item[index + 1][0] - reference for item in ws if len(item) > index + 1)
    return result


def spreads(arrivals: list[list[list[Any]]], changes: int) -> list[float]:
    """Per change, the time from its first to its last slotsChanged delivery (the server's fan-out)."""
    result = []
    for index in range(1, changes + 1):
        times = [item[index][0] for item in arrivals if len(item) > index]
        if times:
            result.append(max(times) - min(times))
    return result


@contextlib.contextmanager
def fanout_layers(buckets: Buckets) -> Any:
    """Wall-clock timers on the fan-out path (this process only, undone after)."""
    from scheduling.live.feeds import SlotFeed
    from schema.slot_types import SlotList
    from server.graphql_view import KokousGraphQL

    originals = [
        (SlotFeed, "_refresh", SlotFeed.__dict__["_refresh"]),
        (SlotList, "from_domain", SlotList.__dict__["from_domain"]),
        (KokousGraphQL, "encode_json", KokousGraphQL.__dict__.get("encode_json", KokousGraphQL.encode_json)),
    ]
    SlotFeed._refresh = _timed_async(SlotFeed._refresh, buckets, "shared feed recompute")  # type: ignore[method-assign]
    from_domain = SlotList.__dict__["from_domain"].__func__
    SlotList.from_domain = classmethod(_timed(from_domain, buckets, "SlotList.from_domain per subscriber"))  # type: ignore[method-assign,assignment]
    KokousGraphQL.encode_json = _timed(KokousGraphQL.encode_json, buckets, "JSON encoding per message")  # type: ignore[method-assign]
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


async def profile_fanout(database_url: str, slug: str, variables: dict[str, Any], slots: list[str]) -> FanoutProfile:
    """The server in this process (uvicorn, memory pub/sub) under cProfile while it fans out changes."""
    from tests.support.live_server import start_live_server

    with tempfile.TemporaryDirectory(prefix="kokous-bench-b4-profile-") as folder:
        settings = seed_settings(database_url, Path(folder))
        async with start_live_server(settings) as live:
            ws = await Listener.start(
                "slotsChanged",
                ["ws", live.ws_url, json.dumps(variables), str(SUBSCRIBERS), str(MULTIPLEX)],
                Path(folder) / "ws.log",
            )
            try:
                await ws.expect("CONNECTED", 60)
                await ws.send("GO")
                await ws.expect("READY", READY_WITHIN + 10)
                layers = Buckets()
                profiler = cProfile.Profile()
                with fanout_layers(layers):
                    cpu = time.process_time()
                    profiler.enable()
                    changes = await drive(live.http, slug, slots, PROFILE_CHANGES)
                    await asyncio.sleep(DRAIN)
                    profiler.disable()
                    cpu = time.process_time() - cpu
                result = await ws.result()
            finally:
                await ws.stop()
    messages = sum(max(len(item) - 1, 0) for item in result["arrivals"])
    per = max(messages, 1)
    stats = pstats.Stats(profiler)
    header = f"cProfile of the server (in-process) fanning out {len(changes)} changes to {SUBSCRIBERS} subscribers"
    return FanoutProfile(
        messages=messages,
        changes=len(changes),
        cpu_us=cpu / per * 1e6,
        layers_us={name: value / per * 1e6 for name, value in layers.seconds.items()},
        refreshes=layers.counts.get("shared feed recompute", 0),
        categories_us={name: value * 1000 for name, value in per_unit_ms(stats, per).items()},
        text=profile_text(profiler, header),
    )


def measure() -> Outcome:
    with sqlite_database() as url, private_redis() as redis:
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        owner = asyncio.run(seed_busy_owner(url, slug_prefix="b4", calendars=1, busy=20, start=start, days=WINDOW_DAYS))
        prefix = f"bench{uuid.uuid4().hex[:10]}"
        env = {**server_env(url, redis.url, prefix=prefix), "KOKOUS_MAX_SUBSCRIPTIONS_PER_CONNECTION": str(MULTIPLEX)}
        with serve(1, env) as (server,):
            outcome = asyncio.run(exercise(server, redis.url, prefix, owner.owner_id, owner.slug))
        outcome.profile = asyncio.run(profile_fanout(url, owner.slug, outcome.variables, outcome.booked))
        return outcome


# -- report ----------------------------------------------------------------------------------


def record(run: Run, outcome: Outcome) -> None:
    ws = Summary.of(outcome.ws.latencies).scaled(1000)
    raw = Summary.of(outcome.raw.latencies).scaled(1000)
    ratio = ws.p99 / raw.p99
    expected = SUBSCRIBERS * len(outcome.changes)
    run.figure(
        "slotsChanged p99 delivery",
        ws.p99,
        "ms",
        comparison=f"p50 {ws.p50:.1f} ms, max {ws.max:.1f} ms",
        target=f"<= {TARGET_P99_MS:.0f} ms",
        passed=ws.p99 <= TARGET_P99_MS,
    )
    run.figure("raw listener p99 delivery", raw.p99, "ms", comparison=f"p50 {raw.p50:.1f} ms, max {raw.max:.1f} ms")
    run.figure(
        "ratio slotsChanged / raw p99",
        ratio,
        "x",
        target=f"<= {TARGET_RATIO:.0f}x",
        passed=ratio <= TARGET_RATIO,
    )
    for label, delivery in (("slotsChanged", outcome.ws), ("raw", outcome.raw)):
        run.figure(
            f"{label} messages delivered",
            delivery.delivered,
            "",
            comparison=(
                f"of {expected:,} ({SUBSCRIBERS:,} subscribers x {len(outcome.changes)} changes); missing "
                f"{delivery.missing}, errors {delivery.errors}, out of order {delivery.wrong}, "
                f"sockets closed {delivery.closed}"
            ),
            target="every message",
            passed=delivery.delivered == expected and delivery.wrong == 0 and delivery.errors == 0,
        )
    per_subscriber = (outcome.rss_idle - outcome.rss_before) / SUBSCRIBERS / 1024
    per_socket = (outcome.rss_connected - outcome.rss_before) / outcome.sockets / 1024
    run.figure(
        "server memory per idle subscriber",
        per_subscriber,
        "KB",
        comparison=(
            f"RSS {outcome.rss_before / 2**20:.1f} -> {outcome.rss_connected / 2**20:.1f} MB with {outcome.sockets} "
            f"sockets ({per_socket:.0f} KB each) -> {outcome.rss_idle / 2**20:.1f} MB with {SUBSCRIBERS:,} "
            f"subscriptions"
        ),
        target=f"<= {TARGET_KB:.0f} KB",
        passed=per_subscriber <= TARGET_KB,
    )
    published = Summary.of(outcome.after_publish).scaled(1000)
    run.figure(
        "slotsChanged p99 after the event reached the pub/sub",
        published.p99,
        "ms",
        comparison=f"p50 {published.p50:.1f} ms; from the first raw listener's copy of each change (recompute + fan-out)",
    )
    spread = Summary.of(outcome.spreads).scaled(1000)
    run.figure(
        "server fan-out per change",
        spread.p50,
        "ms",
        comparison=(
            f"median first -> last slotsChanged delivery of one change to {SUBSCRIBERS:,} subscribers "
            f"(max {spread.max:.0f} ms), {spread.p50 * 1000 / SUBSCRIBERS:.0f} us per subscriber"
        ),
    )
    profile = outcome.profile
    if profile is not None:
        layers = ", ".join(f"{key} {value:.0f}" for key, value in profile.layers_us.items())
        run.note(
            f"profile (server in-process under cProfile, {profile.changes} changes, {profile.messages:,} messages, "
            f"{profile.refreshes} shared recomputes): server CPU {profile.cpu_us:.0f} us per message; wall us per "
            f"message: {layers}"
        )
        categories = ", ".join(
            f"{key} {value:.0f}" for key, value in profile.categories_us.items() if value >= 5 and "waiting" not in key
        )
        run.note(f"cProfile own time per message by package (us): {categories}")
        run.note(f"full cProfile of the fan-out: {write_profile('b4_profile.txt', profile.text)}")
    mutation = Summary.of([change.mutation for change in outcome.changes]).scaled(1000)
    run.figure(
        "first snapshots",
        outcome.ws.ready_seconds,
        "s",
        comparison=f"for {outcome.ws.ready:,} of {SUBSCRIBERS:,} subscriptions to get their first slot list",
    )
    run.note(
        f"{len(outcome.changes)} changes (bookMeeting / cancelBookingByToken alternating on 2 slots) every "
        f"{INTERVAL * 1000:.0f} ms; mutation round trip p50 {mutation.p50:.1f} ms, max {mutation.max:.1f} ms; "
        f"{WINDOW_DAYS}-day window with {outcome.slot_count} slots; {MULTIPLEX} subscriptions per WebSocket; "
        "raw = EventHub subscriptions on the same Redis channel in a separate process"
    )
    if outcome.ws.other or outcome.raw.other:
        run.note(f"unexpected frames: {(outcome.ws.other + outcome.raw.other)[:3]}")
    run.chart.update(
        {
            "ws_ms": ws.as_dict(),
            "raw_ms": raw.as_dict(),
            "ws_cdf_ms": cdf(outcome.ws.latencies),
            "raw_cdf_ms": cdf(outcome.raw.latencies),
            "per_subscriber_kb": per_subscriber,
        }
    )


def cdf(latencies: list[float]) -> list[float]:
    """Milliseconds at the 0, 0.5, 1, ... 100th percentiles (a compact distribution for the chart)."""
    return [percentile(latencies, step / 2) * 1000 for step in range(201)] if latencies else []


def plot(ax: Any, run: Run) -> None:
    """Delivery latency distributions (CDF) of both listener kinds."""
    fractions = [step / 200 for step in range(201)]
    for prefix, label, colour in (("ws", "slotsChanged", "#c44e52"), ("raw", "raw", "#4c72b0")):
        values = run.chart.get(f"{prefix}_cdf_ms") or []
        if values:
            p99 = run.chart[f"{prefix}_ms"]["p99"]
            ax.plot(values, fractions, label=f"{label} (p99 {p99:.0f} ms)", color=colour)
    ax.axvline(TARGET_P99_MS, color="#8c8c8c", linestyle="dashed", label=f"target p99 {TARGET_P99_MS:.0f} ms")
    ax.set_xscale("log")
    ax.set_xlabel("delivery latency after the mutation was sent (ms, log)")
    ax.set_ylabel("fraction of messages")
    ax.set_title(
        f"B4 {SUBSCRIBERS:,} slotsChanged subscribers vs {SUBSCRIBERS:,} raw listeners, one change / {INTERVAL * 1000:.0f} ms"
    )
    ax.legend(loc="lower right", fontsize=8)


@benchmark("B4", "1,000 slotsChanged subscribers vs 1,000 raw pub/sub listeners, a change every 250 ms", plot=plot)
def b4(run: Run) -> None:
    record(run, measure())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    child(sys.argv[1:])
