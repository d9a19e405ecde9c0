"""B8's Microsoft 365 side: the identity platform and Graph double (``tests/doubles/microsoft.py``).

The double serves HTTPS with a certificate of the run's own CA (``make_tls_files``; Kokous trusts
it through the ``ca_bundle`` setting, msal insists on HTTPS), speaks ``calendarView/delta`` with
delta links and subscriptions with Graph's validation handshake, and posts change notifications
(``changeNotificationCollection`` batches) from a background thread to the subscription's address.

Graph validates an address before it agrees to a subscription, so the in-process parts, which
have no HTTP server, get a small responder that answers the handshake (and 202 to anything else).
"""

from __future__ import annotations

import json
import ssl
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any
from urllib.parse import quote

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from benchmarks.b8_sides import PushSide, Sent, wait_for
from common.values import CalendarProvider
from providers.microsoft import MicrosoftConfig, MicrosoftCredentials, MicrosoftOAuth
from scheduling.calendars.channels import RENEW_BEFORE
from server.providers import provider_settings
from server.settings import Settings
from tests.doubles.microsoft import CLIENT_ID, CLIENT_SECRET, MicrosoftDouble, query_of
from tests.doubles.server import DoubleServer, RecordedRequest, TLSFiles

ACCOUNT = "owner.ms@contoso.test"
CALENDAR = "AAMkAGI2QjgtYmVuY2gtZGVmYXVsdAAA="  # the mailbox's default calendar (Graph ids are base64-ish)
TOKEN_LIFETIME = timedelta(seconds=3600 - 300)  # the double's (and Graph's) tokens live 3,600 s; msal
# takes a token with less than 5 minutes left for expired
SUBSCRIPTION = timedelta(minutes=4200)  # what the adapter asks for (every tenant grants it)
PAGE_SIZE = 500  # the adapter's ``Prefer: odata.maxpagesize``
PREFER = f'outlook.timezone="UTC", odata.maxpagesize={PAGE_SIZE}'


async def _hook(request: Request) -> Response:
    """Graph's validation handshake answered as our webhook answers it; notifications taken (202)."""
    token = request.query_params.get("validationToken")
    return PlainTextResponse(token) if token is not None else Response(status_code=202)


class GraphSide(PushSide):
    name = "microsoft"
    title = "Microsoft Graph"
    provider = CalendarProvider.MICROSOFT
    account = ACCOUNT
    start_name = "MICROSOFT"
    incremental_call = "a calendarView delta with the delta link"
    page_size = PAGE_SIZE
    idle_hours = {"push": 50, "polling": 6}  # 50: past the subscription's renewal in place, at ~46 h
    renewal_kind = "subscriptions.renew"
    auth_kinds = frozenset({"token", "openid-configuration"})
    token_lifetime = TOKEN_LIFETIME
    extra_sign_in_per_hour = 1 / 24  # the OpenID configuration, kept a day per process
    sign_in_note = (
        "Graph requests the double received; msal refreshes its access token when less than 5 minutes are left "
        f"(tokens of 3,600 s: every {TOKEN_LIFETIME.total_seconds():.0f} s) by the wall clock, which the "
        "simulation does not move, so token requests are added by computation, and so is the identity "
        "platform's OpenID configuration, fetched once a day per process (+0.042 per hour, shared by every "
        "connection of the process)"
    )

    def __init__(self, microsoft: MicrosoftDouble, tls: TLSFiles) -> None:
        self.microsoft = microsoft
        self.double = microsoft
        self._tls = tls
        self._token: str | None = None
        self.count_listed(microsoft, "_delta_item")

    @classmethod
    @contextmanager
    def open(cls, tls: TLSFiles) -> Iterator[GraphSide]:
        with MicrosoftDouble(tls) as microsoft:
            microsoft.add_account(ACCOUNT)
            microsoft.add_calendar(ACCOUNT, CALENDAR, "Calendar", is_default=True)
            yield cls(microsoft, tls)

    def kind_of(self, request: RecordedRequest) -> str:
        method, path = request.method, request.path
        if path.endswith("/oauth2/v2.0/token"):
            return "token"
        if path.endswith("/.well-known/openid-configuration"):
            return "openid-configuration"
        if path.endswith("/calendarView/delta"):
            if "deltatoken" in request.query:
                return "delta (delta link)"
            return "delta (next page)" if "skiptoken" in request.query else "delta (first call)"
        if path.endswith("/calendarView"):
            return "calendarView"
        if path.endswith("/me/calendars"):
            return "calendars"
        if path.startswith("/v1.0/subscriptions"):
            if path.endswith("/reauthorize"):
                return "subscriptions.reauthorize"
            if path == "/v1.0/subscriptions":
                return "subscriptions.create" if method == "POST" else "subscriptions.list"
            return {"PATCH": "subscriptions.renew", "DELETE": "subscriptions.delete"}.get(method, "subscriptions.get")
        if path.endswith("/events") and method == "POST":
            return "events.create"
        if "/me/events/" in path:
            return f"events.{'update' if method == 'PATCH' else 'delete'}"
        return f"{method} {path}"

    # -- pointing Kokous at the double ----------------------------------------------------------

    def env(self, base_url: str) -> dict[str, str]:
        return {
            "KOKOUS_MICROSOFT_CLIENT_ID": CLIENT_ID,
            "KOKOUS_MICROSOFT_CLIENT_SECRET": CLIENT_SECRET,
            "KOKOUS_MICROSOFT_AUTHORITY": self.microsoft.authority,
            "KOKOUS_MICROSOFT_GRAPH_URL": self.microsoft.graph_url,
            "KOKOUS_CA_BUNDLE": str(self._tls.ca_path),
        }

    def settings(self) -> dict[str, Any]:
        return {
            "microsoft_client_id": CLIENT_ID,
            "microsoft_client_secret": CLIENT_SECRET,
            "microsoft_authority": self.microsoft.authority,
            "microsoft_graph_url": self.microsoft.graph_url,
            "ca_bundle": self._tls.ca_path,
        }

    async def credentials(self, settings: Settings) -> str:
        config = provider_settings(settings).microsoft
        assert isinstance(config, MicrosoftConfig)
        return (await self._sign_in(config)).to_json()

    async def _sign_in(self, config: MicrosoftConfig) -> MicrosoftCredentials:
        """The authorization code flow through ``MicrosoftOAuth``, the browser played here, as B3 does."""
        oauth = MicrosoftOAuth(config)
        with warnings.catch_warnings():
            # msal warns that the double's discovery document offers form_post; nothing to act on here.
            warnings.filterwarnings("ignore", message=".*form_post.*")
            started = await oauth.start("bench-state")
            reply = query_of(self.microsoft.consent(started.url, ACCOUNT))
            return await oauth.finish(reply, started.verifier)

    def consent(self, authorization_url: str) -> str:
        return self.microsoft.consent(authorization_url, ACCOUNT)

    async def watching(self) -> None:
        """Graph agrees to a subscription only after our webhook answered its validation request."""
        await wait_for(self.microsoft.subscriptions, "a Graph subscription")

    @contextmanager
    def push_address(self) -> Iterator[str]:
        with DoubleServer(Starlette(routes=[Route("/webhooks/microsoft", _hook, methods=["POST"])])) as hook:
            yield f"{hook.url}/webhooks"

    # -- the owner's changes and the double's notifications ---------------------------------------

    def add_event(self, start: datetime, end: datetime, guests: Sequence[str] = ()) -> str:
        if guests:
            return self.microsoft.add_event(CALENDAR, start, end, subject="Bench call", guests=guests)
        return self.microsoft.add_busy(CALENDAR, start, end)

    def move_event(self, event_id: str, start: datetime, end: datetime) -> None:
        self.microsoft.move_event(event_id, start, end)

    def record_sends(self) -> list[Sent]:
        """Time-stamp every POST of the double's notifier thread (a batch of items: one ``Sent`` each)."""
        sends: list[Sent] = []
        notifier = self.microsoft._notifier
        send = notifier._send

        def timed(batch: list[Any]) -> None:
            before = len(self.microsoft.notifications_sent)
            started = time.perf_counter()
            send(batch)
            answered = time.perf_counter()
            for item in self.microsoft.notifications_sent[before:]:  # one notifier thread: these are the batch's
                sends.append(Sent(started, answered, item.kind == "change", item.status))

        notifier._send = timed
        return sends

    def channels(self) -> list[dict[str, Any]]:
        return self.microsoft.subscriptions()

    def stop_notifications(self) -> None:
        for subscription in self.microsoft.subscriptions():
            self.microsoft.expire_subscription(subscription["id"])

    async def answer_time(self, *, full: bool = False, samples: int = 5) -> float:
        """``calendarView/delta`` as the adapter asks it, with a token of our own: a round from the
        delta link with nothing changed, or (``full``) the first call of a round and every page."""
        token = await self._access_token()
        url = f"{self.microsoft.graph_url}/me/calendars/{quote(CALENDAR, safe='')}/calendarView/delta"
        now = datetime.now(UTC)
        window = {
            "startDateTime": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endDateTime": (now + timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        headers = {"authorization": f"Bearer {token}", "Prefer": PREFER}
        verify = ssl.create_default_context(cafile=str(self._tls.ca_path))
        async with httpx.AsyncClient(headers=headers, verify=verify, timeout=30, trust_env=False) as http:

            async def one_round(first: str, params: dict[str, str] | None) -> tuple[float, str]:
                started = time.perf_counter()
                answer = await http.get(first, params=params)
                while True:
                    answer.raise_for_status()
                    page = answer.json()
                    if "@odata.deltaLink" in page:
                        return time.perf_counter() - started, str(page["@odata.deltaLink"])
                    answer = await http.get(str(page["@odata.nextLink"]))

            link = "" if full else (await one_round(url, window))[1]
            times = [(await (one_round(url, window) if full else one_round(link, None)))[0] for _ in range(samples)]
        return median(times)

    async def _access_token(self) -> str:
        if self._token is None:
            credentials = await self._sign_in(self.microsoft.config())
            tokens = json.loads(credentials.token_cache)["AccessToken"]  # msal's serialized cache
            self._token = str(next(iter(tokens.values()))["secret"])
        return self._token

    @classmethod
    def channel_note(cls, channels: int, renewals: int) -> str:
        period = SUBSCRIPTION - RENEW_BEFORE
        hours = period.total_seconds() / 3600
        return (
            f"Subscriptions live in the push run: {channels}; the adapter asks Graph for "
            f"{SUBSCRIPTION.total_seconds() / 60:,.0f} minutes and renews in place (PATCH) a day before the end: "
            f"every ~{hours:.0f} h, +{1 / hours:.3f} per hour, counted above ({renewals} renewal(s) in the run)"
        )
