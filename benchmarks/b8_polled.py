"""B8's providers asked what changed on a timer: on-premises Exchange (the EWS double) and CalDAV (a real Radicale).

CalDAV cannot push, and an Exchange calendar is polled too whenever it is not pushed (no push
address, push refused or lapsed): their calendars are asked what changed every minute
(``BusySync``'s incremental interval), one ``SyncFolderItems`` call, or one ``sync-collection``
REPORT (RFC 6578) after the 401 challenge a fresh CalDAV client pays. B8 reports what that costs
an idle connection per hour, and one idle change check against one full refetch of the window.

Radicale sits behind a recording forwarder (a ``DoubleServer``) so every request is counted; unlike
``tests/doubles/radicale.py``'s ``ForwardingApp`` it keeps one upstream HTTP client (a new one per
request costs ~25 ms of TLS-context setup, which would be the benchmark's, not Kokous's) and times
Radicale's own answer to each request.
"""

from __future__ import annotations

import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from caldav.davclient import DAVClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from benchmarks.b8_sides import Side
from common.values import CalendarProvider
from providers.caldav import CalDAVForm
from providers.caldav import connect as caldav_connect
from providers.exchange import ExchangeForm
from providers.exchange import connect as exchange_connect
from server.providers import provider_settings
from server.settings import Settings
from tests.doubles.exchange import ExchangeDouble
from tests.doubles.radicale import RadicaleServer
from tests.doubles.server import DoubleServer, RecordedRequest

_SOAP_OPERATION = re.compile(rb"<(?:\w+:)?Body>\s*<(?:\w+:)?(\w+)")
_NOT_FORWARDED = {"host", "content-length", "content-encoding", "transfer-encoding", "connection"}


class PolledSide(Side):
    """A provider whose connections are asked what changed, on a timer."""

    change_check: str  # the incremental request, in the provider's words
    change_check_kinds: frozenset[str]  # what an idle incremental round may ask, and nothing more

    def own_answers(self) -> dict[str, list[float]]:
        """Seconds the provider itself took per request kind, where the side can see it."""
        return {}

    def clear_requests(self) -> None:
        self.double.clear_requests()


# -- Exchange -----------------------------------------------------------------------------------------


EXCHANGE_ACCOUNT = "owner@corp.example"
EXCHANGE_PASSWORD = "app-password"


class ExchangeSide(PolledSide):
    name = "exchange"
    title = "Exchange (EWS)"
    provider = CalendarProvider.EXCHANGE
    account = EXCHANGE_ACCOUNT
    change_check = "SyncFolderItems"
    change_check_kinds = frozenset({"SyncFolderItems"})

    def __init__(self, exchange: ExchangeDouble) -> None:
        self.exchange = exchange
        self.double = exchange

    @classmethod
    @contextmanager
    def open(cls) -> Iterator[ExchangeSide]:
        with ExchangeDouble() as exchange:
            exchange.add_mailbox(EXCHANGE_ACCOUNT, EXCHANGE_PASSWORD)
            yield cls(exchange)

    def kind_of(self, request: RecordedRequest) -> str:
        """The SOAP operation (the first element of the envelope's body)."""
        if "autodiscover" in request.path.lower():
            return "autodiscover"
        found = _SOAP_OPERATION.search(request.body)
        return found.group(1).decode() if found else f"{request.method} {request.path}"

    def settings(self) -> dict[str, Any]:
        return {}

    async def credentials(self, settings: Settings) -> str:
        form = ExchangeForm(EXCHANGE_ACCOUNT, EXCHANGE_PASSWORD, ews_url=self.exchange.ews_url)
        return (await exchange_connect(form, provider_settings(settings).exchange)).to_json()

    def add_events(self, spans: list[tuple[datetime, datetime]]) -> list[str]:
        return [self.exchange.add_busy(EXCHANGE_ACCOUNT, start, end) for start, end in spans]


# -- CalDAV ---------------------------------------------------------------------------------------------


CALDAV_USER = "alice"
CALDAV_PASSWORD = "app-password"


class KeptForwarder:
    """An ASGI app passing every request to ``upstream`` unchanged over one kept HTTP client, and
    timing the upstream's answer to each one."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.answered: list[tuple[RecordedRequest, float]] = []
        self._client: httpx.AsyncClient | None = None  # made in the serving thread's event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        headers = {key: value for key, value in request.headers.items() if key not in _NOT_FORWARDED}
        body = await request.body()
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False, timeout=30)
        started = time.perf_counter()
        answer = await self._client.request(
            request.method,
            f"{self.upstream}{request.url.path}",
            params=request.url.query,
            headers=headers,
            content=body,
        )
        seconds = time.perf_counter() - started
        recorded = RecordedRequest(request.method, request.url.path, request.url.query, dict(request.headers), body)
        self.answered.append((recorded, seconds))
        kept = {key: value for key, value in answer.headers.items() if key.lower() not in _NOT_FORWARDED}
        await Response(answer.content, status_code=answer.status_code, headers=kept)(scope, receive, send)


class CalDAVSide(PolledSide):
    name = "caldav"
    title = "CalDAV (Radicale)"
    provider = CalendarProvider.CALDAV
    account = CALDAV_USER
    change_check = "sync-collection REPORT"
    change_check_kinds = frozenset({"REPORT sync-collection", "REPORT (401 challenge)"})

    def __init__(self, radicale: RadicaleServer, forwarder: KeptForwarder, double: DoubleServer) -> None:
        self.radicale = radicale
        self.forwarder = forwarder
        self.double = double
        self.calendar_path = f"/{CALDAV_USER}/work-{uuid.uuid4().hex[:8]}/"

    @classmethod
    @contextmanager
    def open(cls) -> Iterator[CalDAVSide]:
        """Radicale with alice's one calendar, behind the recording forwarder."""
        with (
            tempfile.TemporaryDirectory(prefix="kokous-bench-b8-radicale-") as folder,
            RadicaleServer(Path(folder), {CALDAV_USER: CALDAV_PASSWORD}) as radicale,
        ):
            forwarder = KeptForwarder(radicale.url)
            with DoubleServer(forwarder) as double:
                side = cls(radicale, forwarder, double)
                side.make_calendar()
                yield side

    def make_calendar(self) -> None:
        dav = DAVClient(self.radicale.url, username=CALDAV_USER, password=CALDAV_PASSWORD, enable_rfc6764=False)
        try:
            untyped: Any = dav  # caldav's principal() carries no annotations
            untyped.principal().make_calendar(name="Work", cal_id=self.calendar_path.strip("/").split("/")[-1])
        finally:
            dav.close()

    def kind_of(self, request: RecordedRequest) -> str:
        if "authorization" not in request.headers:
            return f"{request.method} (401 challenge)"  # Radicale asks every new client to authenticate
        if request.method == "REPORT":
            for report in ("sync-collection", "calendar-multiget", "calendar-query"):
                if report.encode() in request.body:
                    return f"REPORT {report}"
        return request.method

    def settings(self) -> dict[str, Any]:
        return {}

    async def credentials(self, settings: Settings) -> str:
        form = CalDAVForm(self.double.url + "/", CALDAV_USER, CALDAV_PASSWORD)
        return (await caldav_connect(form, provider_settings(settings).caldav)).to_json()

    def add_events(self, spans: list[tuple[datetime, datetime]]) -> list[str]:
        """All at once, straight into Radicale: a PUT of one VCALENDAR on the collection (Radicale's import)."""
        uids = [f"{uuid.uuid4()}@b8" for _ in spans]
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Kokous B8//EN"]
        for uid, (start, end) in zip(uids, spans, strict=True):
            lines += [
                "BEGIN:VEVENT",
                f"UID:{uid}",
                "DTSTAMP:20260101T000000Z",
                "SUMMARY:Busy",
                f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
                f"DTEND:{end:%Y%m%dT%H%M%SZ}",
                "END:VEVENT",
            ]
        lines.append("END:VCALENDAR")
        answer = httpx.put(
            self.radicale.url.rstrip("/") + self.calendar_path,
            content="\r\n".join(lines) + "\r\n",
            headers={"Content-Type": "text/calendar; charset=utf-8"},
            auth=(CALDAV_USER, CALDAV_PASSWORD),
            timeout=120,
            trust_env=False,
        )
        answer.raise_for_status()
        return uids

    def clear_requests(self) -> None:
        self.double.clear_requests()
        self.forwarder.answered.clear()

    def own_answers(self) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        for request, seconds in self.forwarder.answered:
            found.setdefault(self.kind_of(request), []).append(seconds)
        return found
