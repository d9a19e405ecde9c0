"""B3: a slots query while provider doubles answer in 150/300/500 ms: cold vs warm.

One owner has three calendar connections, each with one integrated primary calendar: Google
(the double over http, 150 ms per answer), Microsoft 365 (identity platform and Graph over
https, 300 ms; the server trusts the double's CA through ``KOKOUS_CA_BUNDLE``) and on-premises
Exchange (EWS over http, 500 ms). Their credentials come from each adapter's own connect/OAuth
functions against the doubles and are sealed into the rows as the server would seal them; the
rows are written straight into the database (an owner may not normally hold three connections).
One ``kokous serve`` process (one worker) points its adapters at the doubles.

* **cold**: the busy-time cache of the three calendars is emptied (nothing fetched or covered, their
  ``busy_intervals`` deleted) and a 30-day slots query is sent for a window no earlier query used
  (so no kept answer applies). The query then fetches the three connections in parallel before
  answering (``BusySync.fill_uncovered``). Each cold answer is checked: no slot overlaps any busy
  event of any provider. The connections' sync lease is held during the cold samples so the
  background sync cannot fetch them first.
* **first**: the very first query after the server started is cold too, and reported apart: it also
  pays whatever a process fetches once (the Microsoft authority's OpenID configuration).
* **warm**: the same query repeated (its finished answer kept), and, for comparison, queries for
  new windows answered from the local busy-time cache (computed, no provider call).
* **steady state**: ~200 queries over ~10 s on a few windows (some new, so some answers are
  computed), with the lease released as in production; provider requests the doubles received
  meanwhile / queries.

The doubles record every request, so each provider's cold-path round trips (which run one after
another inside its adapter) are reported as a note.
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import delete, update
from sqlmodel import col

from benchmarks import Run, benchmark
from benchmarks.loadgen import Connection, close_connections, exchange, open_connections, post_request
from benchmarks.seed import SLOTS, every_day, seed_settings
from benchmarks.servers import BENCH_SECRET_KEY, on_each_database, serve, server_env
from benchmarks.stats import Summary
from common.values import CalendarProvider
from db.engine import Database
from db.models import BusyInterval, Calendar, CalendarConnection
from providers.exchange import ExchangeConfig, ExchangeForm
from providers.exchange import connect as exchange_connect
from providers.google import GoogleConfig, GoogleOAuth
from providers.microsoft import MicrosoftOAuth
from scheduling.calendars.vault import CredentialVault
from scheduling.pages.service import PageDraft, PageView
from scheduling.services import Services
from scheduling.users import NewUser
from server.app import create_app
from tests.doubles.exchange import ExchangeDouble
from tests.doubles.google import GoogleDouble
from tests.doubles.microsoft import MicrosoftDouble, query_of
from tests.doubles.server import DoubleServer, RecordedRequest, make_tls_files

# Seconds each double waits before every answer; the dictionary's order is the providers' order.
LATENCY = {"google": 0.15, "microsoft": 0.30, "exchange": 0.50}
SLOWEST = max(LATENCY.values())
WINDOW_DAYS = 30
COLD_SAMPLES = 5
WARM_SAMPLES = 60
COMPUTED_SAMPLES = 10
STEADY_QUERIES = 200
STEADY_SECONDS = 10.0
STEADY_NEW_EVERY = 20  # every 20th steady query asks for a window nobody asked for yet
BUSY_PER_CALENDAR = 8
GRAPH_PAGE_SIZE = 10  # Graph's default calendarView page when no $top is asked for
TARGET_COLD, TARGET_WARM, TARGET_CALLS = 1.3, 20.0, 0.05

GOOGLE_ACCOUNT = "owner.google@example.com"
MICROSOFT_ACCOUNT = "owner@contoso.test"
MICROSOFT_CALENDAR = "cal-primary"
EXCHANGE_ACCOUNT = "owner@exchange.test"
EXCHANGE_PASSWORD = "correct horse battery"  # the double's made-up mailbox
GOOGLE_CALLBACK = "http://127.0.0.1:8000/oauth/google/callback"
BUSY_HOUR = {"google": 10, "microsoft": 12, "exchange": 14}  # UTC, inside the page's 09-17 hours


def window_start() -> datetime:
    """Tomorrow 00:00 UTC: inside the page's horizon and past any minimum notice."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


# -- the doubles ---------------------------------------------------------------------------------


@dataclass
class Doubles:
    google: GoogleDouble
    microsoft: MicrosoftDouble
    exchange: ExchangeDouble
    ca_path: Path
    busy: list[tuple[datetime, datetime]] = field(default_factory=list)
    arrivals: dict[str, list[float]] = field(default_factory=dict)  # perf_counter() of each request

    def __post_init__(self) -> None:
        """Time-stamp every request as it arrives (before the double's latency)."""
        for name, double in self.by_provider().items():
            stamps = self.arrivals[name] = []

            def record(request: RecordedRequest, keep: Any = double.record, stamps: list[float] = stamps) -> Any:
                stamps.append(time.perf_counter())
                return keep(request)

            double.record = record  # type: ignore[method-assign]

    def by_provider(self) -> dict[str, DoubleServer]:
        return {"google": self.google, "microsoft": self.microsoft, "exchange": self.exchange}

    def clear_requests(self) -> None:
        for name, double in self.by_provider().items():
            double.clear_requests()
            self.arrivals[name].clear()

    def requests(self) -> dict[str, list[RecordedRequest]]:
        return {name: double.requests for name, double in self.by_provider().items()}

    def set_latency(self, on: bool) -> None:
        for name, double in self.by_provider().items():
            double.latency = LATENCY[name] if on else 0.0


@contextmanager
def provider_doubles(folder: Path) -> Iterator[Doubles]:
    """The three doubles, each with one account whose primary calendar holds a few busy events."""
    tls = make_tls_files(folder)
    with (
        GoogleDouble() as google,
        MicrosoftDouble(tls, page_size=GRAPH_PAGE_SIZE) as microsoft,
        ExchangeDouble() as exchange,
    ):
        google.add_account(GOOGLE_ACCOUNT)
        microsoft.add_account(MICROSOFT_ACCOUNT)
        microsoft.add_calendar(MICROSOFT_ACCOUNT, MICROSOFT_CALENDAR, "Calendar", is_default=True)
        exchange.add_mailbox(EXCHANGE_ACCOUNT, EXCHANGE_PASSWORD)
        doubles = Doubles(google, microsoft, exchange, tls.ca_path)
        first = window_start()
        for index in range(BUSY_PER_CALENDAR):
            day = first + timedelta(days=1 + index * 3)
            for name, hour in BUSY_HOUR.items():
                start, end = day + timedelta(hours=hour), day + timedelta(hours=hour + 1)
                doubles.busy.append((start, end))
                if name == "google":
                    google.add_busy(GOOGLE_ACCOUNT, start, end)
                elif name == "microsoft":
                    microsoft.add_busy(MICROSOFT_CALENDAR, start, end)
                else:
                    exchange.add_busy(EXCHANGE_ACCOUNT, start, end)
        yield doubles


def google_config(doubles: Doubles) -> GoogleConfig:
    return GoogleConfig(**doubles.google.config_for(GOOGLE_CALLBACK))


def provider_env(doubles: Doubles) -> dict[str, str]:
    """Settings pointing the server's real adapters at the doubles."""
    google = doubles.google.config_for(GOOGLE_CALLBACK)
    microsoft = doubles.microsoft.config()
    return {
        "KOKOUS_GOOGLE_CLIENT_ID": google["client_id"],
        "KOKOUS_GOOGLE_CLIENT_SECRET": google["client_secret"],
        "KOKOUS_GOOGLE_AUTH_URI": google["auth_uri"],
        "KOKOUS_GOOGLE_TOKEN_URI": google["token_uri"],
        "KOKOUS_GOOGLE_API_ENDPOINT": google["api_endpoint"],
        "KOKOUS_MICROSOFT_CLIENT_ID": microsoft.client_id,
        "KOKOUS_MICROSOFT_CLIENT_SECRET": microsoft.client_secret,
        "KOKOUS_MICROSOFT_AUTHORITY": microsoft.authority,
        "KOKOUS_MICROSOFT_GRAPH_URL": microsoft.graph_url,
        "KOKOUS_CA_BUNDLE": str(doubles.ca_path),
    }


# -- credentials from the adapters themselves ----------------------------------------------------


async def google_credentials(doubles: Doubles) -> str:
    """Consent and code exchange through ``GoogleOAuth``, the browser played here."""
    oauth = GoogleOAuth(google_config(doubles))
    started = await oauth.start("bench-state")
    redirect = doubles.google.consent(started.url, account_email=GOOGLE_ACCOUNT)
    params = {key: values[-1] for key, values in parse_qs(urlsplit(redirect).query).items()}
    return (await oauth.finish(params, started.verifier)).to_json()


async def microsoft_credentials(doubles: Doubles) -> str:
    oauth = MicrosoftOAuth(doubles.microsoft.config())
    with warnings.catch_warnings():
        # msal warns that the double's discovery document offers form_post; nothing to act on here.
        warnings.filterwarnings("ignore", message=".*form_post.*")
        started = await oauth.start("bench-state")
        reply = query_of(doubles.microsoft.consent(started.url, MICROSOFT_ACCOUNT))
        return (await oauth.finish(reply, started.verifier)).to_json()


async def exchange_credentials(doubles: Doubles) -> str:
    form = ExchangeForm(EXCHANGE_ACCOUNT, EXCHANGE_PASSWORD, ews_url=doubles.exchange.ews_url)
    return (await exchange_connect(form, ExchangeConfig(timeout=10.0))).to_json()


# -- the owner -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    slug: str
    calendar_ids: list[uuid.UUID]
    connection_ids: list[uuid.UUID]


async def seed_owner(database_url: str, doubles: Doubles, backend: str) -> Owner:
    """An owner with a page (every day 09-17 UTC) and the three connections, never fetched."""
    vault = CredentialVault((BENCH_SECRET_KEY,))
    primary = {
        "google": (CalendarProvider.GOOGLE, GOOGLE_ACCOUNT, GOOGLE_ACCOUNT, await google_credentials(doubles)),
        "microsoft": (
            CalendarProvider.MICROSOFT,
            MICROSOFT_ACCOUNT,
            MICROSOFT_CALENDAR,
            await microsoft_credentials(doubles),
        ),
        "exchange": (
            CalendarProvider.EXCHANGE,
            EXCHANGE_ACCOUNT,
            doubles.exchange.primary_calendar(EXCHANGE_ACCOUNT),
            await exchange_credentials(doubles),
        ),
    }
    with tempfile.TemporaryDirectory(prefix="kokous-bench-seed-") as folder:
        app = create_app(seed_settings(database_url, Path(folder)))
        async with app.router.lifespan_context(app):
            services = cast(Services, app.state.services)
            tag = uuid.uuid4().hex[:8]
            created = await services.users.create(email=f"bench-{tag}@example.com", name="Bench providers")
            if not isinstance(created, NewUser):
                raise RuntimeError(f"cannot create a benchmark owner: {created}")
            slug = f"b3-{backend}-{tag}"
            draft = PageDraft(
                slug=slug, name="Bench call", durations=[30], timezone="UTC", weekly_hours=every_day("09:00", "17:00")
            )
            page = await services.pages.create(created.user.id, draft)
            if not isinstance(page, PageView):
                raise RuntimeError(f"cannot create a benchmark page: {page}")
            calendar_ids, connection_ids = [], []
            async with services.db.transaction() as session:
                for provider, email, external_id, credentials in primary.values():
                    connection = CalendarConnection(
                        user_id=created.user.id,
                        provider=provider,
                        account_email=email,
                        credentials=vault.seal(credentials),
                        # Held, so the server's first background pass leaves the cold path to the query.
                        sync_lease_until=datetime.now(UTC) + timedelta(hours=1),
                    )
                    session.add(connection)
                    await session.flush()
                    calendar = Calendar(
                        connection_id=connection.id,
                        external_id=external_id,
                        name="Calendar",
                        is_primary=True,
                        integrated=True,
                        busy_synced_at=None,
                    )
                    session.add(calendar)
                    await session.flush()
                    calendar_ids.append(calendar.id)
                    connection_ids.append(connection.id)
            return Owner(slug, calendar_ids, connection_ids)


async def empty_cache(db: Database, owner: Owner) -> None:
    """Forget the owner's fetched busy time, and hold the lease: the background sync stays off it."""
    lease_until = datetime.now(UTC) + timedelta(hours=1)
    async with db.transaction() as session:
        await session.exec(delete(BusyInterval).where(col(BusyInterval.calendar_id).in_(owner.calendar_ids)))
        await session.exec(
            update(Calendar)
            .where(col(Calendar.id).in_(owner.calendar_ids))
            .values(busy_synced_at=None, covered_from=None, covered_until=None)
        )
        await session.exec(
            update(CalendarConnection)
            .where(col(CalendarConnection.id).in_(owner.connection_ids))
            .values(sync_lease_until=lease_until)
        )


async def release_lease(db: Database, owner: Owner) -> None:
    """The background sync may claim the connections again, as in production."""
    async with db.transaction() as session:
        await session.exec(
            update(CalendarConnection)
            .where(col(CalendarConnection.id).in_(owner.connection_ids))
            .values(sync_lease_until=None)
        )


# -- queries -------------------------------------------------------------------------------------


class Client:
    """One keep-alive connection to the server; every answer is checked."""

    def __init__(self, port: int, slug: str, connection: Connection) -> None:
        self.port, self.slug, self.connection = port, slug, connection
        self.failures = 0
        self.first_failure: str | None = None

    def body(self, start: datetime) -> dict[str, Any]:
        variables = {
            "slug": self.slug,
            "start": start.isoformat(),
            "end": (start + timedelta(days=WINDOW_DAYS)).isoformat(),
            "timezone": "UTC",
        }
        return {"query": SLOTS, "variables": variables}

    async def slots(self, start: datetime) -> tuple[list[tuple[datetime, datetime]], float]:
        """The free slots of the window from ``start``, and the seconds the query took."""
        request = post_request("127.0.0.1", self.port, "/graphql", self.body(start))
        status, raw, seconds = await exchange(self.connection, request)
        try:
            answer = json.loads(raw)
            found = answer["data"]["schedulingPage"]["slots"]["slots"]
            if status != 200 or "errors" in answer:
                raise ValueError("an error answer")
        except (ValueError, KeyError, TypeError):
            self.failures += 1
            self.first_failure = self.first_failure or f"{status} {raw[:300]!r}"
            return [], seconds
        return [(datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])) for slot in found], seconds


def overlapping(slots: list[tuple[datetime, datetime]], busy: list[tuple[datetime, datetime]]) -> int:
    return sum(1 for start, end in slots for busy_start, busy_end in busy if start < busy_end and busy_start < end)


def round_trips(recorded: list[RecordedRequest]) -> list[str]:
    """What each request was: method and path, plus the SOAP operation for EWS."""
    described = []
    for request in recorded:
        text = f"{request.method} {request.path}"
        if request.path.endswith(".asmx") and "<s:Body>" in request.text:
            body = request.text.split("<s:Body>", 1)[1]
            text += " " + body.split(">", 1)[0].split()[0].lstrip("<").split(":")[-1]
        described.append(text)
    return described


@dataclass
class ColdSample:
    seconds: float
    slots: int
    overlaps: int
    requests: dict[str, list[str]]
    called_after: dict[str, float]  # seconds from sending the query to the provider's first request
    tail: float  # seconds from the last provider answer to the query's answer


def cold_sample(sent: float, seconds: float, slots: list[tuple[datetime, datetime]], doubles: Doubles) -> ColdSample:
    requests = {name: round_trips(recorded) for name, recorded in doubles.requests().items()}
    arrivals = {name: list(stamps) for name, stamps in doubles.arrivals.items()}
    called_after = {name: stamps[0] - sent for name, stamps in arrivals.items() if stamps}
    answered = max((stamps[-1] + LATENCY[name] for name, stamps in arrivals.items() if stamps), default=sent)
    tail = sent + seconds - answered
    return ColdSample(seconds, len(slots), overlapping(slots, doubles.busy), requests, called_after, tail)


@dataclass
class Outcome:
    backend: str
    first: ColdSample
    cold: list[ColdSample]
    warm: list[float]
    computed: list[float]
    steady_queries: int
    steady_seconds: float
    steady_windows: int
    steady_requests: dict[str, list[str]]
    failures: int
    first_failure: str | None


async def measure_server(backend: str, port: int, database_url: str, owner: Owner, doubles: Doubles) -> Outcome:
    db = Database(database_url)
    (connection,) = await open_connections(port, 1)
    client = Client(port, owner.slug, connection)
    base = window_start()
    try:
        await exchange(connection, post_request("127.0.0.1", port, "/graphql", {"query": "{ __typename }"}))
        doubles.clear_requests()
        sent = time.perf_counter()  # the first query since the server started: nothing fetched yet
        slots, seconds = await client.slots(base + timedelta(days=WINDOW_DAYS))
        first = cold_sample(sent, seconds, slots, doubles)
        cold: list[ColdSample] = []
        for index in range(COLD_SAMPLES):
            await empty_cache(db, owner)
            doubles.clear_requests()
            sent = time.perf_counter()
            slots, seconds = await client.slots(base + timedelta(days=index))
            cold.append(cold_sample(sent, seconds, slots, doubles))

        repeated = base + timedelta(days=COLD_SAMPLES - 1)  # the last cold window, now warm
        await client.slots(repeated)  # kept from now on (a cold answer is not: busy time changed while it ran)
        warm = [(await client.slots(repeated))[1] for _ in range(WARM_SAMPLES)]
        computed = [(await client.slots(base + timedelta(hours=index + 1)))[1] for index in range(COMPUTED_SAMPLES)]

        await release_lease(db, owner)
        doubles.clear_requests()
        windows = {base + timedelta(days=day) for day in range(3)}
        started = time.perf_counter()
        for index in range(STEADY_QUERIES):
            if index % STEADY_NEW_EVERY == STEADY_NEW_EVERY - 1:
                start = base + timedelta(days=2, minutes=15 * (index + 1))  # a new window: computed
            else:
                start = base + timedelta(days=index % 3)
            windows.add(start)
            await client.slots(start)
            pause = started + (index + 1) * STEADY_SECONDS / STEADY_QUERIES - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
        steady_seconds = time.perf_counter() - started
        steady_requests = {name: round_trips(recorded) for name, recorded in doubles.requests().items()}
    finally:
        await close_connections([connection])
        await db.dispose()
    return Outcome(
        backend=backend,
        first=first,
        cold=cold,
        warm=warm,
        computed=computed,
        steady_queries=STEADY_QUERIES,
        steady_seconds=steady_seconds,
        steady_windows=len(windows),
        steady_requests=steady_requests,
        failures=client.failures,
        first_failure=client.first_failure,
    )


def run_backend(backend: str, database_url: str) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="kokous-bench-b3-") as folder, provider_doubles(Path(folder)) as doubles:
        owner = asyncio.run(seed_owner(database_url, doubles, backend))
        env = {**server_env(database_url), **provider_env(doubles)}
        with serve(1, env) as (server,):
            doubles.set_latency(True)
            return asyncio.run(measure_server(backend, server.port, database_url, owner, doubles))


# -- report --------------------------------------------------------------------------------------


def record(run: Run, outcome: Outcome) -> None:
    name = outcome.backend
    cold = Summary.of([sample.seconds for sample in outcome.cold]).scaled(1000)
    warm = Summary.of(outcome.warm).scaled(1000)
    computed = Summary.of(outcome.computed).scaled(1000)
    first = outcome.cold[0].requests
    trips = {provider: len(first[provider]) for provider in LATENCY}
    critical = max(trips[provider] * LATENCY[provider] for provider in LATENCY) * 1000
    ratio = cold.p50 / (SLOWEST * 1000)
    run.figure(
        f"{name} cold slots query p50",
        cold.p50,
        "ms",
        comparison=f"max {cold.max:.0f} ms over {len(outcome.cold)} queries, busy-time cache emptied each time; "
        f"round trips x latency on the slowest path {critical:.0f} ms",
    )
    run.figure(
        f"{name} cold / slowest provider",
        ratio,
        "x",
        comparison=f"cold p50 {cold.p50:.0f} ms vs {SLOWEST * 1000:.0f} ms; max {cold.max / (SLOWEST * 1000):.2f}x",
        target=f"<= {TARGET_COLD}x",
        passed=ratio <= TARGET_COLD,
    )
    extra = {provider: len(outcome.first.requests[provider]) - trips[provider] for provider in LATENCY}
    once = ", ".join(
        f"{provider} +{count} ({', '.join(outcome.first.requests[provider][:count])})"
        for provider, count in extra.items()
        if count > 0
    )
    run.figure(
        f"{name} first cold query after server start",
        outcome.first.seconds * 1000,
        "ms",
        comparison=f"{outcome.first.seconds / SLOWEST:.2f}x the slowest provider; requests beyond the later cold "
        f"queries': {once or 'none'}",
    )
    run.figure(
        f"{name} warm slots query p50",
        warm.p50,
        "ms",
        comparison=f"the same query repeated {warm.count} times (answer kept); p95 {warm.p95:.2f} ms",
    )
    speedup = cold.p50 / warm.p50
    run.figure(
        f"{name} cold / warm",
        speedup,
        "x",
        target=f">= {TARGET_WARM:.0f}x",
        passed=speedup >= TARGET_WARM,
    )
    run.figure(
        f"{name} computed from local cache p50",
        computed.p50,
        "ms",
        comparison=f"{computed.count} new windows, busy time already fetched: no provider call; "
        f"cold / computed {cold.p50 / computed.p50:.0f}x",
    )
    steady_calls = sum(len(requests) for requests in outcome.steady_requests.values())
    per_query = steady_calls / outcome.steady_queries
    run.figure(
        f"{name} provider calls per slots query (steady)",
        per_query,
        "",
        comparison=f"{steady_calls} provider requests for {outcome.steady_queries} queries on "
        f"{outcome.steady_windows} windows in {outcome.steady_seconds:.1f} s",
        target=f"<= {TARGET_CALLS}",
        passed=per_query <= TARGET_CALLS,
    )
    checked = [outcome.first, *outcome.cold]
    overlaps = sum(sample.overlaps for sample in checked)
    empty = sum(1 for sample in checked if sample.slots == 0)
    missing = sum(1 for sample in checked for provider in LATENCY if not sample.requests[provider])
    wrong = outcome.failures + overlaps + empty + missing
    problems = [
        f"{outcome.failures} failed queries ({outcome.first_failure})" if outcome.failures else "",
        f"{overlaps} slots over busy time in cold answers" if overlaps else "",
        f"{empty} empty cold answers" if empty else "",
        f"{missing} cold queries without a call to some provider" if missing else "",
    ]
    run.figure(
        f"{name} wrong answers",
        wrong,
        "",
        comparison="; ".join(problem for problem in problems if problem) or "every cold answer left out all busy time",
        target="0",
        passed=wrong == 0,
    )
    paths = "; ".join(
        f"{provider} {LATENCY[provider] * 1000:.0f} ms x {trips[provider]} ({', '.join(first[provider])})"
        for provider in LATENCY
    )
    run.note(f"{name} cold-path requests per provider, sent one after another by each adapter: {paths}")
    called = ", ".join(
        f"{provider} +{median([sample.called_after.get(provider, math.nan) for sample in outcome.cold]) * 1000:.0f} ms"
        for provider in LATENCY
    )
    tail = median([sample.tail for sample in outcome.cold]) * 1000
    run.note(
        f"{name} cold path (medians): first request to each provider after the query was sent: {called}; "
        f"the answer came {tail:.0f} ms after the last provider answered (busy time stored, slots computed)"
    )
    run.chart[name] = {
        "cold_ms": cold.as_dict(),
        "warm_ms": warm.as_dict(),
        "computed_ms": computed.as_dict(),
        "critical_path_ms": critical,
        "tail_ms": tail,
        "round_trips": trips,
        "cold_requests": [sample.requests for sample in outcome.cold],
        "steady_requests": outcome.steady_requests,
        "steady_calls_per_query": per_query,
    }


def plot(ax: Any, run: Run) -> None:
    """Cold, computed and warm slots queries per backend on a log scale, beside the provider latencies."""
    rows: list[tuple[str, float, str]] = [
        (f"provider {provider}", latency * 1000, "#8c8c8c") for provider, latency in LATENCY.items()
    ]
    for name in ("sqlite", "postgres"):
        chart = run.chart.get(name)
        if chart is None:
            continue
        rows.append((f"{name} cold p50", chart["cold_ms"]["p50"], "#c44e52"))
        rows.append((f"{name} computed p50", chart["computed_ms"]["p50"], "#dd8452"))
        rows.append((f"{name} warm p50", chart["warm_ms"]["p50"], "#55a868"))
    ax.barh([row[0] for row in rows], [row[1] for row in rows], color=[row[2] for row in rows])
    for index, (_, value, _) in enumerate(rows):
        ax.text(value, index, f" {value:.1f} ms", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("ms (log scale)")
    ax.set_title(f"B3 slots query for {WINDOW_DAYS} days, providers answering in 150/300/500 ms")


@benchmark("B3", "slots query with providers answering in 150/300/500 ms: cold vs warm", plot=plot)
def b3(run: Run) -> None:
    for outcome in on_each_database(run, run_backend):
        record(run, outcome)
    run.note(
        "one kokous serve process per backend; Google double over http, Microsoft identity+Graph double over "
        "https (KOKOUS_CA_BUNDLE), Exchange EWS double over http (Basic auth); one integrated primary calendar "
        f"per connection, {BUSY_PER_CALENDAR} busy events each; Graph double pages calendarView at "
        f"{GRAPH_PAGE_SIZE} (Graph's default)"
    )
    run.note(
        "besides queries, the background sync refreshes each connection every 5 minutes (one request per "
        "connection here): 3 requests per 5 minutes for this owner whatever the traffic, none fell in the "
        f"{STEADY_SECONDS:.0f} s steady-state window"
    )
