"""B8: a calendar change reaches a widget through Google's change notification; what idling costs.

Three parts, each against the Google double (``tests/doubles/google.py``), which speaks
``events.list`` with sync tokens, ``events.watch``/``channels.stop`` and posts its notifications
(no body, Google's headers) from a background thread to the channel's address.

* **change -> widget**: one ``kokous serve`` process per database (SQLite, then PostgreSQL when
  reachable) whose ``KOKOUS_WEBHOOK_URL`` is its own address. An owner connects Google through the real OAuth flow (startCalendarConnection, the
  double's consent, the server's callback), which syncs the primary calendar and opens its watch
  channel. A few WebSocket listeners watch ``slotsChanged`` on a 7-day window. The double then
  answers every request ``LATENCY`` late (the provider's own answer time) and the owner makes
  ``CHANGES`` changes in Google, one every ``SPACING`` s, alternately adding an event on a free
  slot and moving the event just added to another free slot. Each slot list received is mapped to
  the change it reflects (the set of slots taken away is different after every change), and a
  change's latency is from the moment the double's notifier started posting its notification to
  the first message of each listener that reflects it (or a later change).
* **idle hour**: in-process services on a movable clock; the background pass is run as
  ``BusySync.run`` does (``claim_due`` then ``refresh`` of what was claimed) every 30 simulated
  seconds (the loop's own wait, ``min(interval / 5, 30 s)``), over simulated idle hours, once with
  a push address (channels live) and once built with ``push_address=None`` (polling), one connection
  with one integrated calendar each, on SQLite. Every request the double receives is counted; token
  refreshes are added by computation (google-auth checks expiry against the wall clock).
* **one change vs a full round**: in-process services, a calendar with ``EVENTS`` events in the
  window; ``BusySync.refresh`` timed after 1, 10 and 100 changes (incremental rounds) and after the
  calendar's ``sync_token`` was cleared (full rounds), with requests and listed events counted, at
  the double's latency and at none; the double's own answer times are measured apart. The double
  runs in a thread of this process, so its JSON work shares the GIL with the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import update
from sqlmodel import col
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from benchmarks import Run, benchmark
from benchmarks.seed import every_day, seed_settings
from benchmarks.servers import BENCH_SECRET_KEY, on_each_database, server_env, sqlite_database
from benchmarks.stats import Summary
from benchmarks.wsclient import SLOTS_CHANGED, handshake
from common.values import CalendarProvider
from db.engine import Database
from db.migrate import ensure_migrated
from db.models import Calendar, CalendarConnection
from providers.google import GoogleConfig, GoogleOAuth
from pubsub import EventHub
from scheduling.calendars.vault import CredentialVault
from scheduling.concurrency import run_all
from scheduling.pages.service import PageDraft, PageView
from scheduling.services import Services
from scheduling.users import NewUser
from server.providers import provider_settings
from server.settings import Settings
from server.wiring import mailer_for
from tests.doubles.google import GoogleDouble
from tests.doubles.server import RecordedRequest
from tests.support.clock import MovableClock
from tests.support.connect_helpers import ALLOW_EMAIL_ACCESS, START
from tests.support.live_server import free_port
from tests.system.processes import spawn_server

ACCOUNT = "owner.google@example.com"
LATENCY = 0.10  # seconds the double waits before every answer: the provider's own answer time
CHANGES = 50
SPACING = 0.30  # seconds between two changes in Google
LISTENERS = 5
WINDOW_DAYS = 7
BACKGROUND_EVENTS = 200  # beyond the watched window, so the calendar is not empty
DELIVERY_TIMEOUT = 10.0
TARGET_P99_MS = 1000.0
TARGET_SLACK_MS = 200.0  # on top of twice the provider's answer time

LOOP_STEP = timedelta(seconds=30)  # BusySync.run waits min(interval / 5, 30 s) between passes
IDLE_HOURS = {"push": 24, "polling": 6}
POLL_INTERVAL_MINUTES = 5
TARGET_IDLE_CALLS = 2.0
TOKEN_LIFETIME = timedelta(seconds=3599)  # the double's (and Google's) access tokens

EVENTS = 2000
INCREMENTAL_CHANGES = (1, 10, 100)
ROUNDS = 5  # of each kind, the median reported

CLOSED_ADDRESS_PORT = 9  # the discard port: nothing listens, notifications of the in-process parts fail fast


def tomorrow() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def google_env(google: GoogleDouble, base_url: str) -> dict[str, str]:
    config = google.config_for(f"{base_url}/oauth/google/callback")
    return {
        "KOKOUS_GOOGLE_CLIENT_ID": config["client_id"],
        "KOKOUS_GOOGLE_CLIENT_SECRET": config["client_secret"],
        "KOKOUS_GOOGLE_AUTH_URI": config["auth_uri"],
        "KOKOUS_GOOGLE_TOKEN_URI": config["token_uri"],
        "KOKOUS_GOOGLE_API_ENDPOINT": config["api_endpoint"],
    }


def kind_of(request: RecordedRequest) -> str:
    """What a request to the double was, in Google's API names."""
    path = request.path
    if path == "/token":
        return "token"
    if path.endswith("/events/watch"):
        return "events.watch"
    if path.endswith("/channels/stop"):
        return "channels.stop"
    if path.endswith("/events") and request.method == "GET":
        return "events.list"
    if path.endswith("/freeBusy"):
        return "freeBusy"
    if path.endswith("/calendarList"):
        return "calendarList"
    return f"{request.method} {path}"


def kinds(requests: list[RecordedRequest]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for request in requests:
        counted[kind_of(request)] = counted.get(kind_of(request), 0) + 1
    return counted


# -- part 1: a change in Google -> slotsChanged -----------------------------------------------------


@dataclass
class Sent:
    """One notification the double's notifier posted: when it started and when it was answered."""

    started: float
    answered: float
    state: str
    status: int | None


def record_sends(google: GoogleDouble) -> list[Sent]:
    """Time-stamp every notification the double posts (its notifier thread calls ``_deliver``)."""
    sends: list[Sent] = []
    deliver = google._deliver

    def timed(delivery: Any) -> None:
        started = time.perf_counter()
        deliver(delivery)  # one notifier thread: the notification it records last is this one
        sends.append(Sent(started, time.perf_counter(), delivery.state, google.notifications_sent[-1].status))

    google._deliver = timed  # type: ignore[method-assign]
    return sends


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
    provider_answer: float  # seconds: a measured incremental events.list of the double
    missing: int  # (change, listener) pairs never delivered
    unmatched: int  # slot lists that fit no state of the calendar
    notifications: int
    notification_statuses: dict[str, int]
    requests: dict[str, int]  # the server's requests to the double while the changes were made
    metrics: dict[str, float]
    coalesced: int  # changes whose state no listener ever saw on its own (a later one came first)
    listener_problems: list[str] = field(default_factory=list)


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


async def graphql(http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    answer = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"authorization": f"Bearer {token}"}
    )
    answer.raise_for_status()
    return cast(dict[str, Any], answer.json())


async def wait_for(predicate: Callable[[], Any], what: str, within: float = 10.0) -> Any:
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


async def connect_google(http: httpx.AsyncClient, google: GoogleDouble, token: str) -> None:
    """CAL-1 as an owner does it: the start mutation, Google's consent, the server's callback."""
    allowed = await graphql(http, ALLOW_EMAIL_ACCESS, {}, token)
    if not allowed["data"]["updateUserSettings"]["personalEmailAccess"]:
        raise RuntimeError(f"personal email access not turned on: {allowed}")
    started = (await graphql(http, START, {"provider": "GOOGLE"}, token))["data"]["startCalendarConnection"]
    if started["__typename"] != "AuthorizationUrl":
        raise RuntimeError(f"cannot start connecting Google: {started}")
    redirect = urlsplit(google.consent(started["url"], account_email=ACCOUNT))
    callback = await http.get(f"{redirect.path}?{redirect.query}")
    if callback.status_code != 302:
        raise RuntimeError(f"the OAuth callback answered {callback.status_code}: {callback.text[:300]}")


async def provider_answer_time(google: GoogleDouble, *, full: bool = False, samples: int = 5) -> float:
    """Median seconds the double takes to answer ``events.list`` as the server asks it (with the
    double's latency): an incremental one with nothing changed, or (``full``) every event."""
    token = google.access_tokens_of(ACCOUNT)[-1]
    url = f"{google.url}/calendar/v3/calendars/{ACCOUNT}/events"
    headers = {"authorization": f"Bearer {token}"}
    params = {"singleEvents": "true", "maxResults": "2500"}
    async with httpx.AsyncClient(headers=headers, timeout=30, trust_env=False) as http:
        if not full:
            first = await http.get(url, params=params)
            params["syncToken"] = first.json()["nextSyncToken"]
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            answer = await http.get(url, params=params)
            answer.raise_for_status()
            times.append(time.perf_counter() - started)
    return median(times)


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


def free_positions(count: int, rng: random.Random) -> list[datetime]:
    """Distinct 30-minute slot starts inside the watched window and the page's hours."""
    first = tomorrow()
    every = [
        first + timedelta(days=day, hours=9, minutes=30 * half)
        for day in range(WINDOW_DAYS)
        for half in range(16)  # 09:00 .. 16:30
    ]
    return rng.sample(every, count)


async def drive_changes(base_url: str, google: GoogleDouble, token: str, slug: str) -> Delivery:
    rng = random.Random(8)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, trust_env=False) as http:
        await connect_google(http, google, token)
        channel = (await wait_for(google.channels, "a watch channel"))[0]
        await wait_for(
            lambda: [s for s in google.notifications_sent if s.channel_id == channel["id"] and s.status == 200],
            "the channel's sync message answered",
        )
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
            sends = record_sends(google)
            google.latency = LATENCY
            google.clear_requests()
            began = time.perf_counter()
            for index, position in enumerate(positions):
                pause = began + index * SPACING - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
                changed_at.append(time.perf_counter())
                if index % 2 == 0 or last_event is None:
                    last_event = google.add_event(ACCOUNT, position, position + timedelta(minutes=30))
                    taken.append(position)
                else:
                    google.move_event(ACCOUNT, last_event, position, position + timedelta(minutes=30))
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
            await wait_for(lambda: len([s for s in sends if s.state == "exists"]) >= CHANGES, "every notification")
            requests = kinds(google.requests)
            answer_time = await provider_answer_time(google)  # still answering LATENCY late
            google.latency = 0.0
            metrics = await read_metrics(http)
        finally:
            for listener in listeners:
                await listener.close()

    exists = [sent for sent in sends if sent.state == "exists"]
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
            after_notification.append(arrival - exists[change].started)
            after_change.append(arrival - changed_at[change])
    statuses: dict[str, int] = {}
    for sent in exists:
        statuses[str(sent.status)] = statuses.get(str(sent.status), 0) + 1
    return Delivery(
        after_notification=after_notification,
        after_change=after_change,
        webhook_answers=[sent.answered - sent.started for sent in exists],
        provider_answer=answer_time,
        missing=missing,
        unmatched=unmatched,
        notifications=len(exists),
        notification_statuses=statuses,
        requests=requests,
        metrics=metrics,
        coalesced=CHANGES - len(seen_alone),
        listener_problems=[problem for listener in listeners for problem in listener.problems],
    )


def missing_of(starts: frozenset[datetime], watched: set[datetime]) -> frozenset[datetime]:
    """The watched slots a slot list leaves out: the calendar's state it reflects."""
    return frozenset(position for position in watched if position not in starts)


def measure_delivery(database_url: str) -> Delivery:
    with tempfile.TemporaryDirectory(prefix="kokous-bench-b8-") as name, GoogleDouble() as google:
        folder = Path(name)
        google.add_account(ACCOUNT)
        rng = random.Random(88)
        later = tomorrow() + timedelta(days=WINDOW_DAYS + 1)
        for _ in range(BACKGROUND_EVENTS):  # beyond the watched window: the calendar is not empty
            begins = later + timedelta(minutes=30 * rng.randrange(0, 48 * 50))
            google.add_event(ACCOUNT, begins, begins + timedelta(minutes=rng.choice((30, 60))))
        token, slug = asyncio.run(seed_page_owner(database_url, folder))
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        env = {
            **server_env(database_url),
            **google_env(google, base_url),
            "KOKOUS_PUBLIC_URL": base_url,
            "KOKOUS_WEBHOOK_URL": base_url,
        }
        server = spawn_server(port, env, folder / "server.log", folder)
        try:
            server.wait_ready()
            return asyncio.run(drive_changes(base_url, google, token, slug))
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


async def google_credentials(google: GoogleDouble, settings: Settings) -> str:
    """Consent and code exchange through ``GoogleOAuth`` (the browser played here), as B3 does."""
    config = provider_settings(settings).google
    assert isinstance(config, GoogleConfig)
    oauth = GoogleOAuth(config)
    started = await oauth.start("bench-state")
    redirect = google.consent(started.url, account_email=ACCOUNT)
    params = {key: values[-1] for key, values in parse_qs(urlsplit(redirect).query).items()}
    return (await oauth.finish(params, started.verifier)).to_json()


@asynccontextmanager
async def in_process(
    database_url: str, google: GoogleDouble, clock: Callable[[], datetime], *, push: bool
) -> AsyncIterator[InProcess]:
    """Services built as ``build_services`` builds them, but with the push address chosen here
    (``None``: what a production server without an https address gets, so calendars are polled),
    and an owner whose Google connection has one integrated primary calendar, synced once."""
    with tempfile.TemporaryDirectory(prefix="kokous-bench-b8-") as name:
        settings = seed_settings(
            database_url,
            Path(name),
            public_url="http://127.0.0.1:8000",
            google_client_id=google.client_id,
            google_client_secret=google.client_secret,
            google_auth_uri=f"{google.url}/o/oauth2/auth",
            google_token_uri=f"{google.url}/token",
            google_api_endpoint=f"{google.url}/calendar/v3/",
        )
        google.config_for(settings.public_url + "/oauth/google/callback")
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
                push_address=f"http://127.0.0.1:{CLOSED_ADDRESS_PORT}/webhooks" if push else None,
            )
            tag = uuid.uuid4().hex[:8]
            created = await services.users.create(email=f"b8-{tag}@example.com", name="Bench push")
            if not isinstance(created, NewUser):
                raise RuntimeError(f"cannot create a benchmark owner: {created}")
            draft = PageDraft(slug=f"b8-{tag}", name="Bench call", durations=[30], timezone="UTC")
            if not isinstance(await services.pages.create(created.user.id, draft), PageView):
                raise RuntimeError("cannot create a benchmark page")
            credentials = await google_credentials(google, settings)
            async with db.transaction() as session:
                connection = CalendarConnection(
                    user_id=created.user.id,
                    provider=CalendarProvider.GOOGLE,
                    account_email=ACCOUNT,
                    credentials=CredentialVault((BENCH_SECRET_KEY,)).seal(credentials),
                )
                session.add(connection)
                await session.flush()
                calendar = Calendar(
                    connection_id=connection.id, external_id=ACCOUNT, name=ACCOUNT, is_primary=True, integrated=True
                )
                session.add(calendar)
                await session.flush()
                ids = (connection.id, calendar.id)
            if not await services.busy_sync.refresh(ids[0]):  # as connecting does: the first full round
                raise RuntimeError("the first sync of the benchmark connection failed")
            yield InProcess(services, *ids)
        finally:
            await hub.disconnect()
            await db.dispose()


@dataclass
class Idle:
    mode: str
    hours: float
    requests: dict[str, int]
    refreshes: list[float]  # simulated hours at which the background pass refreshed the connection
    channels: int

    @property
    def api_calls(self) -> int:
        return sum(count for kind, count in self.requests.items() if kind != "token")

    @property
    def token_refreshes(self) -> int:
        """Token refreshes these refreshes would need in real time: google-auth checks its access
        token's expiry against the wall clock, which the simulation does not move."""
        lifetime = TOKEN_LIFETIME.total_seconds() / 3600
        count, valid_until = 0, lifetime  # the first sync's token was fresh at hour 0
        for at in self.refreshes:
            if at >= valid_until:
                count += 1
                valid_until = at + lifetime
        return count


async def simulate_idle(database_url: str, google: GoogleDouble, *, push: bool, hours: int) -> Idle:
    clock = MovableClock(datetime.now(UTC))
    async with in_process(database_url, google, clock, push=push) as setup:
        busy_sync = setup.services.busy_sync
        # The first pass after connecting: the connection was just checked, so nothing is due.
        channels = len(google.channels())
        google.clear_requests()
        refreshes: list[float] = []
        started = clock.now
        for _ in range(int(timedelta(hours=hours) / LOOP_STEP)):
            clock.advance(LOOP_STEP.total_seconds())
            claimed = await busy_sync.claim_due()  # exactly what one pass of BusySync.run does
            if claimed:
                refreshes.append((clock.now - started) / timedelta(hours=1))
                await run_all(busy_sync.refresh(connection_id) for connection_id in claimed)
        requests = kinds(google.requests)
    return Idle("push" if push else "polling", hours, requests, refreshes, channels)


@dataclass
class Round:
    kind: str  # "incremental" | "full"
    changes: int
    seconds: float
    requests: int
    listed: int  # events the double put into its answers


@dataclass
class Rounds:
    latency: float
    rounds: list[Round]
    provider_full: float  # seconds the double itself takes to answer the full list (no server work)
    provider_incremental: float

    def of(self, kind: str, changes: int) -> list[Round]:
        return [item for item in self.rounds if item.kind == kind and item.changes == changes]


async def measure_rounds(database_url: str, google: GoogleDouble) -> list[Rounds]:
    rng = random.Random(2000)
    now = datetime.now(UTC)
    ids = []
    for _ in range(EVENTS):  # the next 60 days, at any hour: all inside the synced window
        begins = now + timedelta(minutes=15 * rng.randrange(4, 4 * 24 * 60))
        ids.append(google.add_event(ACCOUNT, begins, begins + timedelta(minutes=rng.choice((15, 30, 60)))))
    listed = [0]
    shown = google._listed

    def counted(*args: Any, **kwargs: Any) -> Any:
        listed[0] += 1
        return shown(*args, **kwargs)

    google._listed = counted  # type: ignore[method-assign]

    async def one(setup: InProcess, kind: str, changes: int) -> Round:
        google.clear_requests()
        listed[0] = 0
        started = time.perf_counter()
        if not await setup.services.busy_sync.refresh(setup.connection_id):
            raise RuntimeError(f"a {kind} round failed")
        seconds = time.perf_counter() - started
        return Round(kind, changes, seconds, len(google.requests), listed[0])

    results = []
    async with in_process(database_url, google, lambda: datetime.now(UTC), push=True) as setup:
        # The server keeps its channel (it is live in its own rows, so rounds check it as a pushed sync
        # does), but the double stops posting: nothing listens at the address in this part.
        for channel in google.channels():
            google.expire_channel(channel["id"])
        for latency in (LATENCY, 0.0):
            google.latency = latency
            rounds: list[Round] = []
            for _ in range(ROUNDS):
                for changes in INCREMENTAL_CHANGES:
                    for event_id in rng.sample(ids, changes):
                        begins = now + timedelta(minutes=15 * rng.randrange(4, 4 * 24 * 60))
                        google.move_event(ACCOUNT, event_id, begins, begins + timedelta(minutes=30))
                    rounds.append(await one(setup, "incremental", changes))
                async with setup.services.db.transaction() as session:  # Google forgot nothing; we did
                    await session.exec(
                        update(Calendar).where(col(Calendar.id) == setup.calendar_id).values(sync_token=None)
                    )
                rounds.append(await one(setup, "full", 0))
            full = await provider_answer_time(google, full=True, samples=3)
            results.append(Rounds(latency, rounds, full, await provider_answer_time(google, samples=3)))
        google.latency = 0.0
    return results


@dataclass
class Backend:
    name: str
    delivery: Delivery
    rounds: list[Rounds]


def measure_backend(name: str, database_url: str) -> Backend:
    """Parts 1 and 3 on one database (the second uses an owner and a double of its own)."""
    delivery = measure_delivery(database_url)
    with GoogleDouble() as google:
        google.add_account(ACCOUNT)
        rounds = asyncio.run(measure_rounds(database_url, google))
    return Backend(name, delivery, rounds)


def measure_idle() -> list[Idle]:
    """Part 2 on SQLite (the counts do not depend on the database), a fresh database per mode:
    the background pass claims every connection that is due."""
    idle = []
    for mode, hours in IDLE_HOURS.items():
        with sqlite_database() as url, GoogleDouble() as google:
            google.add_account(ACCOUNT)
            idle.append(asyncio.run(simulate_idle(url, google, push=mode == "push", hours=hours)))
    return idle


# -- report ------------------------------------------------------------------------------------


def record_delivery(run: Run, name: str, delivery: Delivery) -> dict[str, Any]:
    after = Summary.of(delivery.after_notification).scaled(1000)
    from_change = Summary.of(delivery.after_change).scaled(1000)
    provider_ms = delivery.provider_answer * 1000
    budget = 2 * provider_ms + TARGET_SLACK_MS
    expected = CHANGES * LISTENERS
    run.figure(
        f"{name} slotsChanged p99 after the notification",
        after.p99,
        "ms",
        comparison=(
            f"p50 {after.p50:.0f} ms, max {after.max:.0f} ms; {len(delivery.after_notification)} of {expected} "
            f"deliveries ({CHANGES} changes x {LISTENERS} listeners); from the change in Google p50 "
            f"{from_change.p50:.0f} ms, p99 {from_change.p99:.0f} ms"
        ),
        target=f"<= {TARGET_P99_MS:.0f} ms",
        passed=after.p99 <= TARGET_P99_MS and delivery.missing == 0,
    )
    run.figure(
        f"{name} slotsChanged p99 vs the provider's answer time",
        after.p99,
        "ms",
        comparison=(
            f"the double answers an incremental events.list in {provider_ms:.0f} ms (latency set to "
            f"{LATENCY * 1000:.0f} ms); p99 = {after.p99 / provider_ms:.1f}x that"
        ),
        target=f"<= 2 x {provider_ms:.0f} + {TARGET_SLACK_MS:.0f} = {budget:.0f} ms",
        passed=after.p99 <= budget and delivery.missing == 0,
    )
    wrong = delivery.missing + delivery.unmatched
    run.figure(
        f"{name} changes not delivered or wrong slot lists",
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
        f"{name}: {delivery.notifications} exists notifications posted, answered {delivery.notification_statuses}; "
        f"webhook answer p50 {answers.p50:.1f} ms, max {answers.max:.1f} ms; server requests to the double per "
        "change: " + ", ".join(f"{kind} {count:.2f}" for kind, count in per_change.items())
    )
    run.note(
        f"{name} server /metrics after the run: "
        + ", ".join(f"{metric} {value:g}" for metric, value in delivery.metrics.items())
        + " (kokous_push_sync_seconds_p99: notification received -> end of its sync, inside the server)"
    )
    if delivery.listener_problems:
        run.note(f"{name} listener frames that were not slot lists: {delivery.listener_problems[:3]}")
    return {
        "after_notification_ms": after.as_dict(),
        "after_change_ms": from_change.as_dict(),
        "webhook_answer_ms": answers.as_dict(),
        "provider_answer_ms": provider_ms,
        "budget_ms": budget,
        "requests": delivery.requests,
    }


def record_rounds(run: Run, name: str, all_rounds: list[Rounds]) -> dict[str, Any]:
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
            f"{name} one change: incremental round ({label})",
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
            f"{name} full round of {EVENTS:,} events ({label})",
            full_ms,
            "ms",
            comparison=(
                f"{median(item.requests for item in full):.0f} request(s) (pages of up to 2,500), "
                f"{median(item.listed for item in full):.0f} events listed; the double's own answer "
                f"{rounds.provider_full * 1000:.0f} ms of it"
            ),
        )
        run.figure(
            f"{name} full / one-change round ({label})",
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


def record_idle(run: Run, idle: list[Idle]) -> None:
    by_mode = {item.mode: item for item in idle}
    push, polling = by_mode["push"], by_mode["polling"]
    push_rate, poll_rate = push.api_calls / push.hours, polling.api_calls / polling.hours
    run.figure(
        "provider calls per idle hour, notifications on",
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
        "provider calls per idle hour, polling",
        poll_rate,
        "",
        comparison=(
            f"{polling.api_calls} calls in {polling.hours} simulated hours ({describe(polling.requests)}); a pass "
            f"every {LOOP_STEP.total_seconds():.0f} s, due {POLL_INTERVAL_MINUTES} min after the last check: "
            f"refreshed every {60 * polling.hours / max(len(polling.refreshes), 1):.1f} min (nominal 12 per hour)"
        ),
    )
    with_tokens = (push.api_calls + push.token_refreshes) / push.hours
    poll_with_tokens = (polling.api_calls + polling.token_refreshes) / polling.hours
    run.note(
        "idle: Calendar API requests the double received; google-auth refreshes its access token "
        f"({TOKEN_LIFETIME.total_seconds():.0f} s) by the wall clock, which the simulation does not move, so token "
        f"requests are added by computation: with them {with_tokens:.2f} per hour with notifications, "
        f"{poll_with_tokens:.1f} polling. Channels live in the push run: {push.channels}; a channel lives 7 days and "
        "is renewed in its last day (events.watch + channels.stop every ~6 days: +0.014 per hour)"
    )
    run.chart["idle"] = {
        "calls_per_hour": {"push": push_rate, "polling": poll_rate},
        "with_tokens_per_hour": {"push": with_tokens, "polling": poll_with_tokens},
        "requests": {"push": push.requests, "polling": polling.requests},
        "refresh_hours": {"push": push.refreshes, "polling": polling.refreshes},
    }


def describe(requests: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(requests.items())) or "none"


def plot(ax: Any, run: Run) -> None:
    """Milliseconds (log): delivery after the notification beside the provider's answer time and the
    budget, incremental vs full rounds; an inset with provider calls per idle hour."""
    rows: list[tuple[str, float, str]] = []
    budget = None
    for name in ("sqlite", "postgres"):
        chart = run.chart.get(name)
        if chart is None:
            continue
        delivery = chart["delivery"]
        budget = delivery["budget_ms"]
        rows.append((f"{name} provider answer", delivery["provider_answer_ms"], "#8c8c8c"))
        rows.append((f"{name} slotsChanged p50", delivery["after_notification_ms"]["p50"], "#4c72b0"))
        rows.append((f"{name} slotsChanged p99", delivery["after_notification_ms"]["p99"], "#c44e52"))
        values = chart["rounds_ms"].get(f"{LATENCY * 1000:.0f}")
        if values:
            rows.append((f"{name} round, 1 change", values["incremental_1"], "#55a868"))
            rows.append((f"{name} round, {EVENTS:,} events (full)", values["full"], "#dd8452"))
    ax.barh([row[0] for row in rows], [row[1] for row in rows], color=[row[2] for row in rows])
    for index, (_, value, _) in enumerate(rows):
        ax.text(value, index, f" {value:.0f} ms", va="center", fontsize=8)
    longest = max([row[1] for row in rows] + [budget or 0.0], default=1.0)
    ax.set_xlim(0, longest / 0.62)  # the right part is left to the inset
    if budget is not None:
        ax.axvline(budget, color="#8c8c8c", linestyle="dashed")
        ax.text(budget, -0.45, f" target p99 {budget:.0f} ms", fontsize=8, color="#555555", va="top")
    ax.invert_yaxis()
    ax.set_xlabel(f"ms, the Google double answering every request {LATENCY * 1000:.0f} ms late")
    ax.set_title("B8 Google change -> notification -> slotsChanged; one-change vs full round")
    idle = run.chart.get("idle")
    if idle:
        calls = idle["calls_per_hour"]
        inset = ax.inset_axes((0.74, 0.12, 0.24, 0.62))
        inset.bar([0, 1], [calls["push"], calls["polling"]], color=["#55a868", "#c44e52"])
        inset.set_xticks([0, 1], [f"push {calls['push']:.2f}", f"polling {calls['polling']:.1f}"])
        inset.axhline(TARGET_IDLE_CALLS, color="#8c8c8c", linestyle="dashed")
        inset.set_title(f"provider calls / idle hour (target <= {TARGET_IDLE_CALLS:.0f})", fontsize=8)
        inset.tick_params(labelsize=7)


@benchmark(
    "B8", "calendar change -> widget through Google's change notification; idle polling; one change vs full", plot=plot
)
def b8(run: Run) -> None:
    for backend in on_each_database(run, measure_backend):
        run.chart[backend.name] = {
            "delivery": record_delivery(run, backend.name, backend.delivery),
            "rounds_ms": record_rounds(run, backend.name, backend.rounds),
        }
    record_idle(run, measure_idle())
    run.note(
        f"change -> widget: one kokous serve process per database, Google double answering every request "
        f"{LATENCY * 1000:.0f} ms late, {CHANGES} changes (add an event, then move it, alternately) one every "
        f"{SPACING * 1000:.0f} ms, {LISTENERS} listeners on a {WINDOW_DAYS}-day window, {BACKGROUND_EVENTS} more "
        "events beyond it; rounds: BusySync.refresh in-process, the full round forced by clearing sync_token"
    )
