"""B8: a calendar change reaches a widget through the provider's change notification; what idling costs.

Google (``tests/doubles/google.py``: ``events.list`` with sync tokens, watch channels) and Microsoft
365 (``tests/doubles/microsoft.py``: ``calendarView/delta`` with delta links, Graph subscriptions
validated against our webhook, over HTTPS from the run's own CA) are measured by the same
machinery; what differs between them is a *side* (``benchmarks/b8_sides.py``, ``b8_google.py``,
``b8_graph.py``): how to connect, how the owner changes the calendar, when the double's notifier
started posting, how requests are named. Each double posts its notifications from a background
thread to the channel's (subscription's) address. Four parts for each:

* **change -> widget**: one ``kokous serve`` process per database (SQLite, then PostgreSQL when
  reachable) whose ``KOKOUS_WEBHOOK_URL`` is its own address. An owner connects the provider
  through the real OAuth flow (startCalendarConnection, the double's consent, the server's
  callback), which syncs the primary calendar and opens its watch channel (Graph subscription,
  after Graph's validation request to the server's webhook). A few WebSocket listeners watch
  ``slotsChanged`` on a 7-day window. The double then answers every request ``LATENCY`` late (the
  provider's own answer time) and the owner makes ``CHANGES`` changes, one every ``SPACING`` s,
  alternately adding an event on a free slot and moving the event just added to another free
  slot. Each slot list received is mapped to the change it reflects (the set of slots taken away
  is different after every change), and a change's latency is from the moment the double's
  notifier started posting its notification to the first message of each listener that reflects
  it (or a later change).
* **change -> meeting on the contact**: with the same server, after the listeners closed (its
  polling would weigh on their latency), calendar sync as connecting leaves it (on). Before the
  changes the owner made a contact through the API; now the owner adds ``MEETINGS`` events on
  slots the changes above left free, one at a time, each with that contact as a guest, and the
  contact's meetings are read through the API every ``MEETING_POLL`` s until the event's meeting
  is there; from the moment the double's notifier started posting the event's notification.
* **idle hour**: in-process services on a movable clock; the background pass is run as
  ``BusySync.run`` does (``claim_due`` then ``refresh`` of what was claimed) every 15 simulated
  seconds (the loop's own wait, ``BusySync.pass_pause``), over simulated idle hours, once with
  a push address (channels live; for Graph an address that answers its validation request) and
  once built with ``push_address=None`` (polling), one connection with one integrated calendar
  each, on SQLite. Every request the double receives is counted; sign-in requests (token
  refreshes, Graph's OpenID configuration) are added by computation (google-auth and msal check
  expiry against the wall clock). Graph is simulated past its subscription's renewal in place.
* **one change vs a full round**: in-process services, a calendar with ``EVENTS`` events in the
  window; ``BusySync.refresh`` timed after 1, 10 and 100 changes (incremental rounds: Google's
  sync token, Graph's delta link) and after the calendar's ``sync_token`` was cleared (full rounds:
  Google's plain list, Graph's first delta call and its pages), with requests and listed events
  counted, at the double's latency and at none; the double's own answer times are measured apart.
  The doubles run in threads of this process, so their JSON work shares the GIL with the server's.

Exchange and CalDAV calendars that are not pushed (``benchmarks/b8_polled.py``: the EWS double and
a real Radicale, with no push address) are asked what changed every minute, when their adapters
can say (``IncrementalSync``; otherwise that part is skipped with a note). For each, on SQLite:
calls per idle hour with that one-minute poll (simulated as above), and one idle incremental round
(nothing changed) against one full refetch of a window of ``EVENTS`` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import tempfile
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from sqlalchemy import update
from sqlmodel import col
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from benchmarks import Run, benchmark
from benchmarks.b8_google import GoogleSide
from benchmarks.b8_graph import GraphSide
from benchmarks.b8_polled import CalDAVSide, ExchangeSide, PolledSide
from benchmarks.b8_sides import PushSide, Sent, Side, wait_for
from benchmarks.seed import every_day, seed_settings
from benchmarks.servers import BENCH_SECRET_KEY, on_each_database, server_env, sqlite_database
from benchmarks.stats import Summary
from benchmarks.wsclient import SLOTS_CHANGED, handshake
from db.engine import Database
from db.migrate import ensure_migrated
from db.models import Calendar, CalendarConnection
from providers.base import IncrementalSync
from pubsub import EventHub
from scheduling.calendars.vault import CredentialVault
from scheduling.concurrency import run_all
from scheduling.pages.service import PageDraft, PageView
from scheduling.services import Services
from scheduling.users import NewUser
from server.providers import provider_settings
from server.wiring import abuse_limits, mailer_for
from tests.doubles.server import make_tls_files
from tests.support.clock import MovableClock
from tests.support.connect_helpers import ALLOW_EMAIL_ACCESS, CONFIRM, START, confirm_code
from tests.support.live_server import free_port
from tests.system.processes import spawn_server

LATENCY = 0.10  # seconds the double waits before every answer: the provider's own answer time
CHANGES = 50
SPACING = 0.30  # seconds between two changes in the provider
LISTENERS = 5
WINDOW_DAYS = 7
BACKGROUND_EVENTS = 200  # beyond the watched window, so the calendar is not empty
DELIVERY_TIMEOUT = 10.0
TARGET_P99_MS = 1000.0
TARGET_SLACK_MS = 200.0  # on top of twice the provider's answer time
MEETINGS = 30  # events with the contact as a guest, one at a time
MEETING_POLL = 0.02  # seconds between two reads of the contact's meetings
CONTACT = "b8.contact@example.org"
CREATE_CONTACT = """
mutation($email: String!) { createContact(input: {email: $email, name: "Bench contact"}) {
  __typename ... on Contact { id } } }
"""
CONTACT_MEETINGS = "query($email: String!) { me { contact(email: $email) { meetings { start source } } } }"

LOOP_STEP = timedelta(seconds=15)  # BusySync.pass_pause with the default intervals: the wait between passes
POLL_INTERVAL_MINUTES = 5
INCREMENTAL_POLL_MINUTES = 1  # Exchange and CalDAV: BusySync's incremental interval
POLLED_IDLE_HOURS = 2
TARGET_IDLE_CALLS = 2.0

EVENTS = 2000
INCREMENTAL_CHANGES = (1, 10, 100)
ROUNDS = 5  # of each kind, the median reported
POLLED_FULL_ROUNDS = 3  # Exchange and CalDAV full refetches (a CalDAV one takes seconds)

SideOpener = Callable[[], AbstractContextManager[PushSide]]
SHORT_NAMES = {"google": "Google", "microsoft": "Graph", "exchange": "EWS", "caldav": "CalDAV"}


def tomorrow() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def describe(requests: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(requests.items())) or "none"


# -- part 1: a change in the provider -> slotsChanged -----------------------------------------------


class SlotListener:
    """One WebSocket with one ``slotsChanged`` subscription; each slot list kept with its arrival time."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self.lists: list[tuple[float, frozenset[datetime]]] = []
        self.problems: list[str] = []
        self.updated = asyncio.Event()
        self._reader = asyncio.create_task(self._read(), name="b8-listener")

    @classmethod
    async def open(cls, url: str, variables: dict[str, Any]) -> SlotListener:
        listener = cls(await handshake(url))
        message = {"id": "1", "type": "subscribe", "payload": {"query": SLOTS_CHANGED, "variables": variables}}
        await listener._connection.send(json.dumps(message))
        return listener

    async def _read(self) -> None:
        try:
            async for raw in self._connection:
                at = time.perf_counter()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await self._connection.send(json.dumps({"type": "pong"}))
                    continue
                payload = message.get("payload") or {}
                data = (payload.get("data") or {}).get("slotsChanged") if isinstance(payload, dict) else None
                if kind == "next" and data and not payload.get("errors"):
                    starts = frozenset(datetime.fromisoformat(slot["start"]) for slot in data["slots"])
                    self.lists.append((at, starts))
                    self.updated.set()
                elif len(self.problems) < 5:
                    self.problems.append(str(raw)[:300])
        except ConnectionClosed:
            self.problems.append("closed")

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self._connection.close()


@dataclass
class Delivery:
    after_notification: list[float]  # seconds, one per (change, listener)
    after_change: list[float]  # from the call that changed the event in the double
    webhook_answers: list[float]  # seconds the server took to answer a notification
    provider_answer: float  # seconds: a measured incremental request to the double
    missing: int  # (change, listener) pairs never delivered
    unmatched: int  # slot lists that fit no state of the calendar
    notifications: int
    notification_statuses: dict[str, int]
    requests: dict[str, int]  # the server's requests to the double while the changes were made
    metrics: dict[str, float]
    coalesced: int  # changes whose state no listener ever saw on its own (a later one came first)
    listener_problems: list[str] = field(default_factory=list)


async def graphql(http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    answer = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"authorization": f"Bearer {token}"}
    )
    answer.raise_for_status()
    return cast(dict[str, Any], answer.json())


async def connect(http: httpx.AsyncClient, side: PushSide, token: str) -> None:
    """CAL-1 as an owner does it: the start mutation, the provider's consent, the server's callback,
    and the owner's confirmation (SEC-3)."""
    allowed = await graphql(http, ALLOW_EMAIL_ACCESS, {}, token)
    if not allowed["data"]["updateUserSettings"]["personalEmailAccess"]:
        raise RuntimeError(f"personal email access not turned on: {allowed}")
    started = (await graphql(http, START, {"provider": side.start_name}, token))["data"]["startCalendarConnection"]
    if started["__typename"] != "AuthorizationUrl":
        raise RuntimeError(f"cannot start connecting {side.title}: {started}")
    redirect = urlsplit(side.consent(started["url"]))
    callback = await http.get(f"{redirect.path}?{redirect.query}")
    if callback.status_code != 302:
        raise RuntimeError(f"the OAuth callback answered {callback.status_code}: {callback.text[:300]}")
    if "error=" in callback.headers.get("location", ""):
        raise RuntimeError(f"connecting {side.title} failed: {callback.headers['location']}")
    code = confirm_code(callback.headers.get("location", ""))
    if code is None:
        raise RuntimeError(f"no confirmation code in {callback.headers.get('location')!r}")
    confirmed = (await graphql(http, CONFIRM, {"code": code}, token))["data"]["confirmCalendarConnection"]
    if confirmed["__typename"] != "CalendarConnection":
        raise RuntimeError(f"confirming {side.title} failed: {confirmed}")


async def seed_page_owner(database_url: str, folder: Path) -> tuple[str, str]:
    """An owner (token) with a page (slug) open every day 09-17 UTC, 30-minute slots every 30 minutes."""
    from server.app import create_app

    app = create_app(seed_settings(database_url, folder / "seed"))
    async with app.router.lifespan_context(app):
        services = cast(Services, app.state.services)
        tag = uuid.uuid4().hex[:8]
        created = await services.users.create(email=f"b8-{tag}@example.com", name="Bench push")
        if not isinstance(created, NewUser):
            raise RuntimeError(f"cannot create a benchmark owner: {created}")
        slug = f"b8-{tag}"
        draft = PageDraft(
            slug=slug,
            name="Bench call",
            durations=[30],
            start_increment=30,
            timezone="UTC",
            weekly_hours=every_day("09:00", "17:00"),
        )
        page = await services.pages.create(created.user.id, draft)
        if not isinstance(page, PageView):
            raise RuntimeError(f"cannot create a benchmark page: {page}")
        return created.token, slug


async def read_metrics(http: httpx.AsyncClient) -> dict[str, float]:
    wanted = (
        'kokous_push_notifications_total{outcome="synced"}',
        'kokous_push_notifications_total{outcome="ignored"}',
        "kokous_push_syncs_total",
        "kokous_push_sync_seconds_p99",
    )
    found: dict[str, float] = {}
    for line in (await http.get("/metrics")).text.splitlines():
        for name in wanted:
            if line.startswith(name + " "):
                found[name] = float(line.rsplit(" ", 1)[1])
    return found


def window_slots() -> list[datetime]:
    """Every 30-minute slot start inside the watched window and the page's hours."""
    first = tomorrow()
    return [
        first + timedelta(days=day, hours=9, minutes=30 * half)
        for day in range(WINDOW_DAYS)
        for half in range(16)  # 09:00 .. 16:30
    ]


def free_positions(count: int, rng: random.Random) -> list[datetime]:
    """Distinct slot starts inside the watched window and the page's hours."""
    return rng.sample(window_slots(), count)


async def drive_changes(base_url: str, side: PushSide, token: str, slug: str) -> tuple[Delivery, Meetings]:
    rng = random.Random(8)
    double = side.double
    async with httpx.AsyncClient(base_url=base_url, timeout=30, trust_env=False) as http:
        made = (await graphql(http, CREATE_CONTACT, {"email": CONTACT}, token))["data"]["createContact"]
        if made["__typename"] != "Contact":
            raise RuntimeError(f"cannot create the benchmark contact: {made}")
        await connect(http, side, token)
        await side.watching()
        start = tomorrow()
        variables = {
            "slug": slug,
            "start": start.isoformat(),
            "end": (start + timedelta(days=WINDOW_DAYS)).isoformat(),
            "timezone": "UTC",
        }
        ws_url = base_url.replace("http://", "ws://", 1) + "/graphql"
        listeners = [await SlotListener.open(ws_url, variables) for _ in range(LISTENERS)]
        try:
            await wait_for(lambda: all(listener.lists for listener in listeners), "the first slot lists")
            initial = listeners[0].lists[0][1]
            positions = free_positions(CHANGES, rng)
            if not all(position in initial for position in positions):
                raise RuntimeError("the chosen positions are not all free slots before the changes")

            # The changes: add an event on a new free slot, then move it to another one, and so on.
            states: dict[frozenset[datetime], int] = {frozenset(): -1}
            taken: list[datetime] = []
            last_event: str | None = None
            changed_at: list[float] = []
            sends = side.record_sends()
            double.latency = LATENCY
            double.clear_requests()
            began = time.perf_counter()
            for index, position in enumerate(positions):
                pause = began + index * SPACING - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
                changed_at.append(time.perf_counter())
                if index % 2 == 0 or last_event is None:
                    last_event = side.add_event(position, position + timedelta(minutes=30))
                    taken.append(position)
                else:
                    side.move_event(last_event, position, position + timedelta(minutes=30))
                    taken[-1] = position
                states[frozenset(taken)] = index

            watched = set(positions)

            def reached_final() -> bool:
                return all(
                    listener.lists and states.get(missing_of(listener.lists[-1][1], watched)) == CHANGES - 1
                    for listener in listeners
                )

            with contextlib.suppress(RuntimeError):
                await wait_for(reached_final, "every listener to see the last change", DELIVERY_TIMEOUT)
            await wait_for(lambda: len([s for s in sends if s.change]) >= CHANGES, "every notification")
            requests = side.kinds(double.requests)
            answer_time = await side.answer_time()  # still answering LATENCY late
            double.latency = 0.0
            metrics = await read_metrics(http)
        finally:
            for listener in listeners:
                await listener.close()
        # Before the meeting events' notifications join ``sends``.
        delivery = delivery_of(listeners, states, watched, changed_at, sends, answer_time, requests, metrics)
        free = rng.sample([slot for slot in window_slots() if slot not in watched], MEETINGS)
        meetings = await drive_meetings(http, side, token, free, sends)
    return delivery, meetings


@dataclass
class Meetings:
    after_notification: list[float]  # seconds, one per event with the contact as a guest
    after_change: list[float]
    missing: int  # events whose meeting never showed, or whose notification never came


async def drive_meetings(
    http: httpx.AsyncClient, side: PushSide, token: str, free: list[datetime], sends: list[Sent]
) -> Meetings:
    """One event at a time with the contact as a guest; its meeting read back through the API."""

    async def shown(start: datetime) -> bool:
        answer = await graphql(http, CONTACT_MEETINGS, {"email": CONTACT}, token)
        meetings = answer["data"]["me"]["contact"]["meetings"]
        return any(
            meeting["source"] == "CALENDAR_SYNC" and datetime.fromisoformat(meeting["start"]) == start
            for meeting in meetings
        )

    async def one(position: datetime) -> tuple[float, float] | None:
        """Seconds from the notification and from the change to the read that shows the meeting."""
        before = len(sends)
        changed = time.perf_counter()
        side.add_event(position, position + timedelta(minutes=30), guests=[CONTACT])
        deadline = changed + DELIVERY_TIMEOUT
        while not await shown(position):
            if time.perf_counter() > deadline:
                return None
            await asyncio.sleep(MEETING_POLL)
        seen = time.perf_counter()
        try:  # a notification is kept once its webhook answered, which may come after the meeting
            notified = await wait_for(lambda: [sent for sent in sends[before:] if sent.change], "its notification")
        except RuntimeError:
            return None
        return seen - notified[0].started, seen - changed

    after_notification, after_change = [], []
    missing = 0
    side.double.latency = LATENCY
    for position in free:
        await asyncio.sleep(SPACING)
        timed = await one(position)
        if timed is None:
            missing += 1
            continue
        after_notification.append(timed[0])
        after_change.append(timed[1])
    side.double.latency = 0.0
    return Meetings(after_notification, after_change, missing)


def delivery_of(
    listeners: list[SlotListener],
    states: dict[frozenset[datetime], int],
    watched: set[datetime],
    changed_at: list[float],
    sends: list[Sent],
    answer_time: float,
    requests: dict[str, int],
    metrics: dict[str, float],
) -> Delivery:
    """Each listener's slot lists mapped to the changes they reflect, timed from the notifications."""
    changes = [sent for sent in sends if sent.change]
    after_notification, after_change = [], []
    missing = unmatched = 0
    seen_alone: set[int] = set()
    for listener in listeners:
        indexes: list[tuple[float, int]] = []
        for at, starts in listener.lists[1:]:
            state = states.get(missing_of(starts, watched))
            if state is None:
                unmatched += 1
                continue
            indexes.append((at, state))
            seen_alone.add(state)
        for change in range(CHANGES):
            arrival = next((at for at, state in indexes if state >= change), None)
            if arrival is None:
                missing += 1
                continue
            after_notification.append(arrival - changes[change].started)
            after_change.append(arrival - changed_at[change])
    statuses: dict[str, int] = {}
    for sent in changes:
        statuses[str(sent.status)] = statuses.get(str(sent.status), 0) + 1
    return Delivery(
        after_notification=after_notification,
        after_change=after_change,
        webhook_answers=[sent.answered - sent.started for sent in changes],
        provider_answer=answer_time,
        missing=missing,
        unmatched=unmatched,
        notifications=len(changes),
        notification_statuses=statuses,
        requests=requests,
        metrics=metrics,
        coalesced=CHANGES - len(seen_alone),
        listener_problems=[problem for listener in listeners for problem in listener.problems],
    )


def missing_of(starts: frozenset[datetime], watched: set[datetime]) -> frozenset[datetime]:
    """The watched slots a slot list leaves out: the calendar's state it reflects."""
    return frozenset(position for position in watched if position not in starts)


def measure_delivery(database_url: str, opener: SideOpener) -> tuple[Delivery, Meetings]:
    with tempfile.TemporaryDirectory(prefix="kokous-bench-b8-") as name, opener() as side:
        folder = Path(name)
        rng = random.Random(88)
        later = tomorrow() + timedelta(days=WINDOW_DAYS + 1)
        for _ in range(BACKGROUND_EVENTS):  # beyond the watched window: the calendar is not empty
            begins = later + timedelta(minutes=30 * rng.randrange(0, 48 * 50))
            side.add_event(begins, begins + timedelta(minutes=rng.choice((30, 60))))
        token, slug = asyncio.run(seed_page_owner(database_url, folder))
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        env = {
            **server_env(database_url),
            **side.env(base_url),
            "KOKOUS_PUBLIC_URL": base_url,
            "KOKOUS_WEBHOOK_URL": base_url,
        }
        server = spawn_server(port, env, folder / "server.log", folder)
        try:
            server.wait_ready()
            return asyncio.run(drive_changes(base_url, side, token, slug))
        except Exception as exc:
            raise RuntimeError(f"{exc}; server log: {server.log_tail()[-1500:]}") from exc
        finally:
            server.stop()


# -- parts 2 and 3: in-process services ------------------------------------------------------------


@dataclass
class InProcess:
    services: Services
    connection_id: uuid.UUID
    calendar_id: uuid.UUID
    incremental: bool  # whether the provider's adapter says what changed (``IncrementalSync``)


@asynccontextmanager
async def in_process(
    database_url: str, side: Side, clock: Callable[[], datetime], *, push_address: str | None
) -> AsyncIterator[InProcess]:
    """Services built as ``build_services`` builds them, but with the push address chosen here
    (``None``: what a production server without an https address gets, so calendars are polled),
    and an owner whose connection has one integrated primary calendar, synced once."""
    with tempfile.TemporaryDirectory(prefix="kokous-bench-b8-") as name:
        settings = seed_settings(database_url, Path(name), public_url="http://127.0.0.1:8000", **side.settings())
        db = Database(database_url)
        await ensure_migrated(db.engine)
        hub = EventHub("memory://")
        await hub.connect()
        try:
            services = Services.build(
                db=db,
                hub=hub,
                channel_prefix=f"b8{uuid.uuid4().hex[:8]}",
                public_url=settings.public_url,
                secret_keys=settings.encryption_keys(),
                mailer=mailer_for(settings),
                dashboard_url=settings.effective_dashboard_url,
                clock=clock,
                answer_cache_entries=0,
                providers=provider_settings(settings),
                push_address=push_address,
                limits=abuse_limits(settings),
                request_ttl=timedelta(days=settings.request_ttl_days),
            )
            tag = uuid.uuid4().hex[:8]
            created = await services.users.create(email=f"b8-{tag}@example.com", name="Bench push")
            if not isinstance(created, NewUser):
                raise RuntimeError(f"cannot create a benchmark owner: {created}")
            draft = PageDraft(slug=f"b8-{tag}", name="Bench call", durations=[30], timezone="UTC")
            if not isinstance(await services.pages.create(created.user.id, draft), PageView):
                raise RuntimeError("cannot create a benchmark page")
            credentials = await side.credentials(settings)
            client = services.busy_sync.access.clients.client(side.provider, credentials)
            try:  # as connecting does: the account's calendars, the primary one integrated
                primary = next(calendar for calendar in await client.list_calendars() if calendar.primary)
                incremental = isinstance(client, IncrementalSync)
            finally:
                await client.aclose()
            async with db.transaction() as session:
                connection = CalendarConnection(
                    user_id=created.user.id,
                    provider=side.provider,
                    account_email=side.account,
                    credentials=CredentialVault((BENCH_SECRET_KEY,)).seal(credentials),
                )
                session.add(connection)
                await session.flush()
                calendar = Calendar(
                    connection_id=connection.id,
                    external_id=primary.external_id,
                    name=primary.name,
                    is_primary=True,
                    integrated=True,
                )
                session.add(calendar)
                await session.flush()
                ids = (connection.id, calendar.id)
            if not await services.busy_sync.refresh(ids[0]):  # as connecting does: the first full round
                raise RuntimeError("the first sync of the benchmark connection failed")
            yield InProcess(services, *ids, incremental=incremental)
        finally:
            await hub.disconnect()
            await db.dispose()


@dataclass
class Idle:
    mode: str  # "push", "polling", or "incremental" (the one-minute poll of providers that cannot push)
    hours: float
    requests: dict[str, int]
    api_calls: int  # requests that are not sign-in traffic
    refreshes: list[float]  # simulated hours at which the background pass refreshed the connection
    channels: int
    token_lifetime: timedelta | None
    incremental: bool  # the adapter says what changed (``IncrementalSync``)

    @property
    def token_refreshes(self) -> int:
        """Token refreshes these refreshes would need in real time: google-auth and msal check their
        access token's expiry against the wall clock, which the simulation does not move."""
        if self.token_lifetime is None:
            return 0
        lifetime = self.token_lifetime.total_seconds() / 3600
        count, valid_until = 0, lifetime  # the first sync's token was fresh at hour 0
        for at in self.refreshes:
            if at >= valid_until:
                count += 1
                valid_until = at + lifetime
        return count


async def simulate_idle(database_url: str, side: Side, *, mode: str, hours: float, push_address: str | None) -> Idle:
    clock = MovableClock(datetime.now(UTC))
    async with in_process(database_url, side, clock, push_address=push_address) as setup:
        busy_sync = setup.services.busy_sync
        assert busy_sync.pass_pause == LOOP_STEP, busy_sync.pass_pause
        # The first pass after connecting: the connection was just checked, so nothing is due.
        channels = len(side.channels()) if isinstance(side, PushSide) else 0
        side.double.clear_requests()
        refreshes: list[float] = []
        started = clock.now
        for _ in range(int(timedelta(hours=hours) / LOOP_STEP)):
            clock.advance(LOOP_STEP.total_seconds())
            claimed = await busy_sync.claim_due()  # exactly what one pass of BusySync.run does
            if claimed:
                refreshes.append((clock.now - started) / timedelta(hours=1))
                await run_all(busy_sync.refresh(connection_id) for connection_id in claimed)
        requests = side.kinds(side.double.requests)
    calls = side.api_calls(requests)
    return Idle(mode, hours, requests, calls, refreshes, channels, side.token_lifetime, setup.incremental)


@dataclass
class Round:
    kind: str  # "incremental" | "full"
    changes: int
    seconds: float
    requests: int
    listed: int  # events the double put into its answers (push sides)
    kinds: dict[str, int] = field(default_factory=dict)


@dataclass
class Rounds:
    latency: float
    rounds: list[Round]
    provider_full: float  # seconds the double itself takes to answer the full list (no server work)
    provider_incremental: float

    def of(self, kind: str, changes: int) -> list[Round]:
        return [item for item in self.rounds if item.kind == kind and item.changes == changes]


async def timed_round(setup: InProcess, side: Side, kind: str, changes: int) -> Round:
    """One ``BusySync.refresh`` of the connection, with what the double received meanwhile."""
    if isinstance(side, PolledSide):
        side.clear_requests()
    else:
        side.double.clear_requests()
    side.listed = 0
    started = time.perf_counter()
    if not await setup.services.busy_sync.refresh(setup.connection_id):
        raise RuntimeError(f"a {kind} round failed")
    seconds = time.perf_counter() - started
    requests = side.double.requests
    return Round(kind, changes, seconds, len(requests), side.listed, side.kinds(requests))


async def forget_sync_token(setup: InProcess) -> None:
    """The provider forgot nothing; we did: the next round is a full one."""
    async with setup.services.db.transaction() as session:
        await session.exec(update(Calendar).where(col(Calendar.id) == setup.calendar_id).values(sync_token=None))


async def measure_rounds(database_url: str, side: PushSide) -> list[Rounds]:
    rng = random.Random(2000)
    now = datetime.now(UTC)
    spans = []
    for _ in range(EVENTS):  # the next 60 days, at any hour: all inside the synced window
        begins = now + timedelta(minutes=15 * rng.randrange(4, 4 * 24 * 60))
        spans.append((begins, begins + timedelta(minutes=rng.choice((15, 30, 60)))))
    ids = side.add_events(spans)

    results = []
    with side.push_address() as address:
        async with in_process(database_url, side, lambda: datetime.now(UTC), push_address=address) as setup:
            # The server keeps its channel (it is live in its own rows, so rounds check it as a pushed
            # sync does), but the double stops posting: nobody would act on it in this part.
            side.stop_notifications()
            for latency in (LATENCY, 0.0):
                side.double.latency = latency
                rounds: list[Round] = []
                for _ in range(ROUNDS):
                    for changes in INCREMENTAL_CHANGES:
                        for event_id in rng.sample(ids, changes):
                            begins = now + timedelta(minutes=15 * rng.randrange(4, 4 * 24 * 60))
                            side.move_event(event_id, begins, begins + timedelta(minutes=30))
                        rounds.append(await timed_round(setup, side, "incremental", changes))
                    await forget_sync_token(setup)
                    rounds.append(await timed_round(setup, side, "full", 0))
                full = await side.answer_time(full=True, samples=3)
                results.append(Rounds(latency, rounds, full, await side.answer_time(samples=3)))
            side.double.latency = 0.0
    return results


@dataclass
class Backend:
    name: str
    delivery: Delivery
    meetings: Meetings
    rounds: list[Rounds]


def measure_push(run: Run, opener: SideOpener) -> tuple[list[Backend], list[Idle]]:
    """Parts 1 and 3 on each database (the part 3 with an owner and a double of its own), then part 2
    on SQLite (the counts do not depend on the database), a fresh database and double per mode:
    the background pass claims every connection that is due."""

    def measure_backend(name: str, database_url: str) -> Backend:
        delivery, meetings = measure_delivery(database_url, opener)
        with opener() as side:
            rounds = asyncio.run(measure_rounds(database_url, side))
        return Backend(name, delivery, meetings, rounds)

    backends = on_each_database(run, measure_backend)
    idle = []
    for mode in ("push", "polling"):
        with sqlite_database() as url, opener() as side, side.push_address() as address:
            hours = side.idle_hours[mode]
            pushing = address if mode == "push" else None
            idle.append(asyncio.run(simulate_idle(url, side, mode=mode, hours=hours, push_address=pushing)))
    return backends, idle


# -- Exchange and CalDAV: the one-minute incremental poll ---------------------------------------------


@dataclass
class Polled:
    idle: Idle
    rounds: list[Rounds]  # incremental rounds (nothing changed) and full refetches, by latency
    own_answers: dict[str, dict[str, float]]  # by latency: median seconds the provider itself took, per kind


async def measure_polled_rounds(
    database_url: str, side: PolledSide
) -> tuple[list[Rounds], dict[str, dict[str, float]]]:
    rng = random.Random(2000)
    now = datetime.now(UTC)
    spans = []
    for _ in range(EVENTS):  # as for the push providers: the next 60 days, inside the synced window
        begins = now + timedelta(minutes=15 * rng.randrange(4, 4 * 24 * 60))
        spans.append((begins, begins + timedelta(minutes=rng.choice((15, 30, 60)))))
    side.add_events(spans)
    results, own = [], {}
    async with in_process(database_url, side, lambda: datetime.now(UTC), push_address=None) as setup:
        for latency in (LATENCY, 0.0):
            side.double.latency = latency
            rounds: list[Round] = []
            answers: dict[str, list[float]] = {}
            for kind, count in (("incremental", ROUNDS), ("full", POLLED_FULL_ROUNDS)):
                for _ in range(count):
                    if kind == "full":
                        await forget_sync_token(setup)
                    rounds.append(await timed_round(setup, side, kind, 0))
                    for request, times in side.own_answers().items():
                        answers.setdefault(f"{kind}: {request}", []).extend(times)
            own[f"{latency * 1000:.0f}"] = {kind: median(times) for kind, times in answers.items()}
            results.append(Rounds(latency, rounds, float("nan"), float("nan")))
        side.double.latency = 0.0
    return results, own


def measure_polled(opener: Callable[[], AbstractContextManager[PolledSide]]) -> Polled | str:
    """Idle hours, then rounds, each on a fresh SQLite database and double; a reason when the
    provider's adapter cannot say what changed (it is polled in full every five minutes then)."""
    with sqlite_database() as url, opener() as side:
        idle = asyncio.run(simulate_idle(url, side, mode="incremental", hours=POLLED_IDLE_HOURS, push_address=None))
    if not idle.incremental:
        return "its adapter is not IncrementalSync yet"
    with sqlite_database() as url, opener() as side:
        rounds, own = asyncio.run(measure_polled_rounds(url, side))
    return Polled(idle, rounds, own)


# -- report ------------------------------------------------------------------------------------


def record_delivery(run: Run, side: type[PushSide], name: str, delivery: Delivery) -> dict[str, Any]:
    label = f"{side.name} {name}"
    after = Summary.of(delivery.after_notification).scaled(1000)
    from_change = Summary.of(delivery.after_change).scaled(1000)
    provider_ms = delivery.provider_answer * 1000
    budget = 2 * provider_ms + TARGET_SLACK_MS
    expected = CHANGES * LISTENERS
    after_notification_figure(
        run,
        f"{label} slotsChanged",
        side,
        after,
        from_change,
        f"p50 {after.p50:.0f} ms, max {after.max:.0f} ms; {len(delivery.after_notification)} of {expected} "
        f"deliveries ({CHANGES} changes x {LISTENERS} listeners)",
        missing=delivery.missing,
    )
    run.figure(
        f"{label} slotsChanged p99 vs the provider's answer time",
        after.p99,
        "ms",
        comparison=(
            f"the double answers {side.incremental_call} in {provider_ms:.0f} ms (latency set to "
            f"{LATENCY * 1000:.0f} ms); p99 = {after.p99 / provider_ms:.1f}x that"
        ),
        target=f"<= 2 x {provider_ms:.0f} + {TARGET_SLACK_MS:.0f} = {budget:.0f} ms",
        passed=after.p99 <= budget and delivery.missing == 0,
    )
    wrong = delivery.missing + delivery.unmatched
    run.figure(
        f"{label} changes not delivered or wrong slot lists",
        wrong,
        "",
        comparison=(
            f"{delivery.missing} (change, listener) pairs never delivered, {delivery.unmatched} slot lists fitting "
            f"no state of the calendar; {delivery.coalesced} changes only ever seen together with a later one"
        ),
        target="0",
        passed=wrong == 0,
    )
    answers = Summary.of(delivery.webhook_answers).scaled(1000)
    per_change = {kind: count / CHANGES for kind, count in sorted(delivery.requests.items())}
    run.note(
        f"{label}: {delivery.notifications} change notifications posted, answered "
        f"{delivery.notification_statuses}; webhook answer p50 {answers.p50:.1f} ms, max {answers.max:.1f} ms; "
        "server requests to the double per change: "
        + ", ".join(f"{kind} {count:.2f}" for kind, count in per_change.items())
    )
    run.note(
        f"{label} server /metrics after the run: "
        + ", ".join(f"{metric} {value:g}" for metric, value in delivery.metrics.items())
        + " (kokous_push_sync_seconds_p99: notification received -> end of its sync, inside the server)"
    )
    if delivery.listener_problems:
        run.note(f"{label} listener frames that were not slot lists: {delivery.listener_problems[:3]}")
    return {
        "after_notification_ms": after.as_dict(),
        "after_change_ms": from_change.as_dict(),
        "webhook_answer_ms": answers.as_dict(),
        "provider_answer_ms": provider_ms,
        "budget_ms": budget,
        "requests": delivery.requests,
    }


def after_notification_figure(
    run: Run, name: str, side: type[PushSide], after: Summary, from_change: Summary, counts: str, *, missing: int
) -> None:
    """A p99 from the notification (ms) against the promised second, with the same from the change."""
    run.figure(
        f"{name} p99 after the notification",
        after.p99,
        "ms",
        comparison=(
            f"{counts}; from the change in {side.title} p50 {from_change.p50:.0f} ms, p99 {from_change.p99:.0f} ms"
        ),
        target=f"<= {TARGET_P99_MS:.0f} ms",
        passed=after.p99 <= TARGET_P99_MS and missing == 0,
    )


def record_meetings(run: Run, side: type[PushSide], name: str, meetings: Meetings) -> dict[str, Any]:
    after = Summary.of(meetings.after_notification).scaled(1000)
    from_change = Summary.of(meetings.after_change).scaled(1000)
    after_notification_figure(
        run,
        f"{side.name} {name} meeting on the contact",
        side,
        after,
        from_change,
        f"p50 {after.p50:.0f} ms, p95 {after.p95:.0f} ms, max {after.max:.0f} ms; {after.count} of {MEETINGS} "
        f"events with the contact as a guest, read back every {MEETING_POLL * 1000:.0f} ms",
        missing=meetings.missing,
    )
    return {"after_notification_ms": after.as_dict(), "after_change_ms": from_change.as_dict()}


def record_rounds(run: Run, side: type[PushSide], name: str, all_rounds: list[Rounds]) -> dict[str, Any]:
    chart: dict[str, Any] = {}
    for rounds in all_rounds:
        label = f"latency {rounds.latency * 1000:.0f} ms"
        full = rounds.of("full", 0)
        full_ms = median(item.seconds for item in full) * 1000
        one = rounds.of("incremental", 1)
        one_ms = median(item.seconds for item in one) * 1000
        medians = {
            changes: (
                median(item.seconds for item in rounds.of("incremental", changes)) * 1000,
                median(item.listed for item in rounds.of("incremental", changes)),
            )
            for changes in INCREMENTAL_CHANGES
        }
        series = ", ".join(f"{changes}: {ms:.1f} ms / {listed:.0f}" for changes, (ms, listed) in medians.items())
        proportional = all(
            item.listed == item.changes and item.requests == 1 for item in rounds.rounds if item.kind == "incremental"
        )
        run.figure(
            f"{side.name} {name} one change: incremental round ({label})",
            one_ms,
            "ms",
            comparison=(
                f"{median(item.requests for item in one):.0f} request, {median(item.listed for item in one):.0f} event "
                f"listed; changes: round ms / events listed {series}; the double's own answer "
                f"{rounds.provider_incremental * 1000:.1f} ms"
            ),
            target="O(changed events): events listed = changes, 1 request",
            passed=proportional,
        )
        run.figure(
            f"{side.name} {name} full round of {EVENTS:,} events ({label})",
            full_ms,
            "ms",
            comparison=(
                f"{median(item.requests for item in full):.0f} request(s) (pages of up to {side.page_size:,}), "
                f"{median(item.listed for item in full):.0f} events listed; the double's own answer "
                f"{rounds.provider_full * 1000:.0f} ms of it"
            ),
        )
        run.figure(
            f"{side.name} {name} full / one-change round ({label})",
            full_ms / one_ms,
            "x",
            comparison=(
                f"{full_ms:.0f} vs {one_ms:.1f} ms; without the double's own answer times "
                f"{(full_ms - rounds.provider_full * 1000) / max(one_ms - rounds.provider_incremental * 1000, 0.1):.0f}x "
                f"({full_ms - rounds.provider_full * 1000:.0f} vs "
                f"{one_ms - rounds.provider_incremental * 1000:.1f} ms of server work)"
            ),
        )
        chart[f"{rounds.latency * 1000:.0f}"] = {
            "full": full_ms,
            "provider_full": rounds.provider_full * 1000,
            "provider_incremental": rounds.provider_incremental * 1000,
            **{f"incremental_{changes}": ms for changes, (ms, _) in medians.items()},
        }
    return chart


def record_idle(run: Run, side: type[PushSide], idle: list[Idle]) -> dict[str, Any]:
    by_mode = {item.mode: item for item in idle}
    push, polling = by_mode["push"], by_mode["polling"]
    push_rate, poll_rate = push.api_calls / push.hours, polling.api_calls / polling.hours
    run.figure(
        f"{side.name} provider calls per idle hour, notifications on",
        push_rate,
        "",
        comparison=(
            f"{push.api_calls} calls in {push.hours} simulated hours ({describe(push.requests)}), "
            f"{len(push.refreshes)} safety-net refreshes; polling {poll_rate:.1f} per hour: "
            f"{poll_rate / push_rate if push_rate else float('inf'):.0f}x fewer"
        ),
        target=f"<= {TARGET_IDLE_CALLS:.0f}",
        passed=push_rate <= TARGET_IDLE_CALLS and push.channels > 0,
    )
    run.figure(
        f"{side.name} provider calls per idle hour, polling",
        poll_rate,
        "",
        comparison=(
            f"{polling.api_calls} calls in {polling.hours} simulated hours ({describe(polling.requests)}); a pass "
            f"every {LOOP_STEP.total_seconds():.0f} s, due {POLL_INTERVAL_MINUTES} min after the last check: "
            f"refreshed every {60 * polling.hours / max(len(polling.refreshes), 1):.1f} min (nominal 12 per hour)"
        ),
    )
    with_sign_in = (push.api_calls + push.token_refreshes) / push.hours + side.extra_sign_in_per_hour
    poll_with_sign_in = (polling.api_calls + polling.token_refreshes) / polling.hours + side.extra_sign_in_per_hour
    run.figure(
        f"{side.name} provider calls per idle hour with sign-in, notifications on",
        with_sign_in,
        "",
        comparison=(
            f"{push.token_refreshes} token refreshes in {push.hours} hours added by computation"
            + (f", +{side.extra_sign_in_per_hour:.3f} per hour of discovery" if side.extra_sign_in_per_hour else "")
            + f"; polling {poll_with_sign_in:.1f} per hour with sign-in"
        ),
        target=f"<= {TARGET_IDLE_CALLS:.0f}",
        passed=with_sign_in <= TARGET_IDLE_CALLS and push.channels > 0,
    )
    renewals = push.requests.get(side.renewal_kind, 0)
    run.note(
        f"{side.name} idle: {side.sign_in_note}: with them {with_sign_in:.2f} per hour with notifications, "
        f"{poll_with_sign_in:.1f} polling. {side.channel_note(push.channels, renewals)}"
    )
    return {
        "calls_per_hour": {"push": push_rate, "polling": poll_rate},
        "with_tokens_per_hour": {"push": with_sign_in, "polling": poll_with_sign_in},
        "requests": {"push": push.requests, "polling": polling.requests},
        "refresh_hours": {"push": push.refreshes, "polling": polling.refreshes},
    }


def record_polled(run: Run, side: type[PolledSide], polled: Polled) -> dict[str, Any]:
    idle = polled.idle
    rate = idle.api_calls / idle.hours
    every = 60 * idle.hours / max(len(idle.refreshes), 1)
    run.figure(
        f"{side.name} provider calls per idle hour, one-minute incremental poll",
        rate,
        "",
        comparison=(
            f"{idle.api_calls} calls in {idle.hours} simulated hours ({describe(idle.requests)}); a pass every "
            f"{LOOP_STEP.total_seconds():.0f} s, due {INCREMENTAL_POLL_MINUTES} min after the last check: refreshed "
            f"every {every:.1f} min; {side.title} is not pushed here, so the notification target "
            f"({TARGET_IDLE_CALLS:.0f} per hour) does not apply"
        ),
    )
    chart: dict[str, Any] = {
        "idle": {"calls_per_hour": rate, "requests": idle.requests, "refresh_hours": idle.refreshes},
        "rounds_ms": {},
        "own_answers_ms": {
            latency: {kind: seconds * 1000 for kind, seconds in answers.items()}
            for latency, answers in polled.own_answers.items()
        },
    }

    def own_text(key: str, kind: str) -> str:
        answers = {
            request.split(": ", 1)[1]: seconds
            for request, seconds in polled.own_answers.get(key, {}).items()
            if request.startswith(f"{kind}: ")
        }
        if not answers:
            return ""
        return "; the server's own answers (median): " + ", ".join(
            f"{request} {seconds * 1000:.1f} ms" for request, seconds in sorted(answers.items())
        )

    for rounds in polled.rounds:
        key = f"{rounds.latency * 1000:.0f}"
        label = f"latency {key} ms"
        idle_rounds, full = rounds.of("incremental", 0), rounds.of("full", 0)
        idle_ms = median(item.seconds for item in idle_rounds) * 1000
        full_ms = median(item.seconds for item in full) * 1000
        idle_kinds = {kind for item in idle_rounds for kind in item.kinds}
        run.figure(
            f"{side.name} idle incremental round ({label})",
            idle_ms,
            "ms",
            comparison=(
                f"nothing changed, {median(item.requests for item in idle_rounds):.0f} request(s): "
                f"{describe(idle_rounds[-1].kinds)}{own_text(key, 'incremental')}"
            ),
            target=f"the change check alone ({side.change_check}), no calendar read",
            passed=idle_kinds <= side.change_check_kinds,
        )
        run.figure(
            f"{side.name} full refetch of {EVENTS:,} events ({label})",
            full_ms,
            "ms",
            comparison=(
                f"{median(item.requests for item in full):.0f} requests: {describe(full[-1].kinds)}"
                f"{own_text(key, 'full')}"
            ),
        )
        run.figure(
            f"{side.name} full refetch / idle incremental round ({label})",
            full_ms / idle_ms,
            "x",
            comparison=f"{full_ms:.0f} vs {idle_ms:.1f} ms",
        )
        chart["rounds_ms"][key] = {"incremental_idle": idle_ms, "full": full_ms}
    return chart


def plot(ax: Any, run: Run) -> None:
    """Milliseconds (log) by provider: delivery p99 after the notification beside the provider's answer
    time and the budget, the meeting's p99 against its second, one-change vs full rounds; an inset
    with provider calls per idle hour."""
    rows: list[tuple[str, float, str, float | None]] = []  # label, ms, colour, budget
    latency = f"{LATENCY * 1000:.0f}"
    for provider in ("google", "microsoft"):
        for database in ("sqlite", "postgres"):
            chart = run.chart.get(provider, {}).get(database)
            if chart is None:
                continue
            delivery = chart["delivery"]
            rows.append((f"{provider} {database} provider answer", delivery["provider_answer_ms"], "#8c8c8c", None))
            rows.append(
                (
                    f"{provider} {database} slotsChanged p99",
                    delivery["after_notification_ms"]["p99"],
                    "#c44e52",
                    delivery["budget_ms"],
                )
            )
            meetings = chart.get("meetings")
            if meetings:
                p99 = meetings["after_notification_ms"]["p99"]
                rows.append((f"{provider} {database} contact's meeting p99", p99, "#8172b2", TARGET_P99_MS))
            values = chart["rounds_ms"].get(latency)
            if values:
                rows.append((f"{provider} {database} round, 1 change", values["incremental_1"], "#55a868", None))
                rows.append((f"{provider} {database} round, {EVENTS:,} events", values["full"], "#dd8452", None))
    for provider in ("exchange", "caldav"):
        values = run.chart.get(provider, {}).get("rounds_ms", {}).get(latency)
        if values:
            rows.append((f"{provider} idle incremental round", values["incremental_idle"], "#55a868", None))
            rows.append((f"{provider} full refetch, {EVENTS:,} events", values["full"], "#dd8452", None))
    if not rows:
        return
    ax.barh([row[0] for row in rows], [row[1] for row in rows], color=[row[2] for row in rows])
    for index, (_, value, _, budget) in enumerate(rows):
        ax.text(value, index, f" {value:.0f} ms", va="center", fontsize=6)
        if budget is not None:
            ax.plot([budget, budget], [index - 0.45, index + 0.45], color="#555555", linestyle="dashed", linewidth=1)
    ax.set_xscale("log")
    low, high = 1.0, max(max(row[1] for row in rows), max(row[3] or 0.0 for row in rows))
    ax.set_xlim(low, 10 ** (math.log10(high * 2) / 0.62))  # the right part is left to the inset
    ax.tick_params(axis="y", labelsize=6)
    ax.invert_yaxis()
    ax.set_xlabel(
        f"ms (log), the doubles answering every request {LATENCY * 1000:.0f} ms late; dashed: p99 targets "
        f"(2 x answer + 200 ms; meeting {TARGET_P99_MS:.0f} ms)"
    )
    ax.set_title("B8 change -> notification -> slotsChanged, contact's meeting; one change vs full; idle calls")
    bars = []
    for provider in ("google", "microsoft"):
        idle = run.chart.get(provider, {}).get("idle")
        if idle:
            calls = idle["calls_per_hour"]
            bars += [
                (f"{SHORT_NAMES[provider]}\npush", calls["push"], "#55a868"),
                (f"{SHORT_NAMES[provider]}\npoll 5'", calls["polling"], "#c44e52"),
            ]
    for provider in ("exchange", "caldav"):
        idle = run.chart.get(provider, {}).get("idle")
        if idle:
            bars.append((f"{SHORT_NAMES[provider]}\npoll 1'", idle["calls_per_hour"], "#dd8452"))
    if bars:
        inset = ax.inset_axes((0.70, 0.10, 0.28, 0.62))
        inset.bar(range(len(bars)), [bar[1] for bar in bars], color=[bar[2] for bar in bars])
        inset.set_xticks(range(len(bars)), [bar[0] for bar in bars])
        for index, (_, value, _) in enumerate(bars):
            inset.text(index, value, f"{value:.2g}", ha="center", va="bottom", fontsize=6)
        inset.axhline(TARGET_IDLE_CALLS, color="#8c8c8c", linestyle="dashed")
        inset.set_title(f"provider calls / idle hour (push target <= {TARGET_IDLE_CALLS:.0f})", fontsize=7)
        inset.tick_params(labelsize=6)


@benchmark(
    "B8",
    "calendar change -> widget through the provider's change notification (Google, Graph); idle calls; "
    "one change vs full",
    plot=plot,
)
def b8(run: Run) -> None:
    with tempfile.TemporaryDirectory(prefix="kokous-bench-b8-tls-") as folder:
        tls = make_tls_files(Path(folder))
        push_sides: list[tuple[type[PushSide], SideOpener]] = [
            (GoogleSide, GoogleSide.open),
            (GraphSide, lambda: GraphSide.open(tls)),
        ]
        for kind, opener in push_sides:
            backends, idle = measure_push(run, opener)
            chart: dict[str, Any] = {}
            for backend in backends:
                chart[backend.name] = {
                    "delivery": record_delivery(run, kind, backend.name, backend.delivery),
                    "meetings": record_meetings(run, kind, backend.name, backend.meetings),
                    "rounds_ms": record_rounds(run, kind, backend.name, backend.rounds),
                }
            chart["idle"] = record_idle(run, kind, idle)
            run.chart[kind.name] = chart
    run.note(
        f"change -> widget: one kokous serve process per database and provider, the double answering every "
        f"request {LATENCY * 1000:.0f} ms late, {CHANGES} changes (add an event, then move it, alternately) one every "
        f"{SPACING * 1000:.0f} ms, {LISTENERS} listeners on a {WINDOW_DAYS}-day window, {BACKGROUND_EVENTS} more "
        "events beyond it; rounds: BusySync.refresh in-process, the full round forced by clearing sync_token. "
        "Google's double opens a new HTTP client with the system trust store for each notification it posts, "
        "which its webhook answer and after-the-notification times include; Graph's double reuses one TLS context"
    )
    polled_sides: list[tuple[type[PolledSide], Callable[[], AbstractContextManager[PolledSide]]]] = [
        (ExchangeSide, ExchangeSide.open),
        (CalDAVSide, CalDAVSide.open),
    ]
    failed = []
    for polled_kind, polled_opener in polled_sides:
        try:
            outcome = measure_polled(polled_opener)
        except Exception as exc:  # measure the other one all the same; the run is marked crashed below
            traceback.print_exc()
            failed.append(f"{polled_kind.name}: {type(exc).__name__}: {exc}"[:300])
            continue
        if isinstance(outcome, str):
            run.note(f"{polled_kind.name}: not measured: {outcome}")
            continue
        run.chart[polled_kind.name] = record_polled(run, polled_kind, outcome)
    run.note(
        f"Exchange and CalDAV: SQLite, in-process, no push address, {POLLED_IDLE_HOURS} simulated idle hours each; "
        f"rounds: BusySync.refresh with nothing changed ({ROUNDS}) and after clearing sync_token "
        f"({POLLED_FULL_ROUNDS}), {EVENTS:,} events in the window, the double (Radicale's recording forwarder) "
        f"answering {LATENCY * 1000:.0f} ms late, then at once"
    )
    if failed:
        raise RuntimeError("not measured: " + "; ".join(failed))
