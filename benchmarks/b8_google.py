"""B8's Google side: the Google double (``tests/doubles/google.py``) behind ``PushSide``.

The double speaks ``events.list`` with sync tokens, ``events.watch``/``channels.stop`` and posts its
notifications (no body, Google's headers) from a background thread to the channel's address.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from statistics import median
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from benchmarks.b8_sides import PushSide, Sent, wait_for
from common.values import CalendarProvider
from providers.google import GoogleConfig, GoogleOAuth
from server.providers import GOOGLE_CALLBACK, provider_settings
from server.settings import Settings
from tests.doubles.google import GoogleDouble
from tests.doubles.server import RecordedRequest

ACCOUNT = "owner.google@example.com"
TOKEN_LIFETIME = timedelta(seconds=3599)  # the double's (and Google's) access tokens
CHANNEL_DAYS = 7  # a watch channel's life; renewed (a new channel, the old one stopped) in its last day


class GoogleSide(PushSide):
    name = "google"
    title = "Google"
    provider = CalendarProvider.GOOGLE
    account = ACCOUNT
    start_name = "GOOGLE"
    incremental_call = "an incremental events.list"
    page_size = 2500
    idle_hours = {"push": 24, "polling": 6}
    renewal_kind = "events.watch"
    auth_kinds = frozenset({"token"})
    token_lifetime = TOKEN_LIFETIME

    def __init__(self, google: GoogleDouble) -> None:
        self.google = google
        self.double = google
        self.count_listed(google, "_listed")

    @classmethod
    @contextmanager
    def open(cls) -> Iterator[GoogleSide]:
        with GoogleDouble() as google:
            google.add_account(ACCOUNT)
            yield cls(google)

    def kind_of(self, request: RecordedRequest) -> str:
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

    # -- pointing Kokous at the double ----------------------------------------------------------

    def env(self, base_url: str) -> dict[str, str]:
        config = self.google.config_for(f"{base_url}{GOOGLE_CALLBACK}")
        return {
            "KOKOUS_GOOGLE_CLIENT_ID": config["client_id"],
            "KOKOUS_GOOGLE_CLIENT_SECRET": config["client_secret"],
            "KOKOUS_GOOGLE_AUTH_URI": config["auth_uri"],
            "KOKOUS_GOOGLE_TOKEN_URI": config["token_uri"],
            "KOKOUS_GOOGLE_API_ENDPOINT": config["api_endpoint"],
        }

    def settings(self) -> dict[str, Any]:
        google = self.google
        return {
            "google_client_id": google.client_id,
            "google_client_secret": google.client_secret,
            "google_auth_uri": f"{google.url}/o/oauth2/auth",
            "google_token_uri": f"{google.url}/token",
            "google_api_endpoint": f"{google.url}/calendar/v3/",
        }

    async def credentials(self, settings: Settings) -> str:
        """Consent and code exchange through ``GoogleOAuth`` (the browser played here), as B3 does."""
        self.google.config_for(settings.public_url + GOOGLE_CALLBACK)
        config = provider_settings(settings).google
        assert isinstance(config, GoogleConfig)
        oauth = GoogleOAuth(config)
        started = await oauth.start("bench-state")
        redirect = self.google.consent(started.url, account_email=ACCOUNT)
        params = {key: values[-1] for key, values in parse_qs(urlsplit(redirect).query).items()}
        return (await oauth.finish(params, started.verifier)).to_json()

    def consent(self, authorization_url: str) -> str:
        return self.google.consent(authorization_url, account_email=ACCOUNT)

    async def watching(self) -> None:
        channel = (await wait_for(self.google.channels, "a watch channel"))[0]
        await wait_for(
            lambda: [s for s in self.google.notifications_sent if s.channel_id == channel["id"] and s.status == 200],
            "the channel's sync message answered",
        )

    # -- the owner's changes and the double's notifications ---------------------------------------

    def add_event(self, start: datetime, end: datetime, guests: Sequence[str] = ()) -> str:
        return self.google.add_event(ACCOUNT, start, end, guests=guests, summary="Bench call" if guests else "")

    def move_event(self, event_id: str, start: datetime, end: datetime) -> None:
        self.google.move_event(ACCOUNT, event_id, start, end)

    def record_sends(self) -> list[Sent]:
        """Time-stamp every notification the double posts (its notifier thread calls ``_deliver``)."""
        sends: list[Sent] = []
        deliver = self.google._deliver

        def timed(delivery: Any) -> None:
            started = time.perf_counter()
            deliver(delivery)  # one notifier thread: the notification it records last is this one
            status = self.google.notifications_sent[-1].status
            sends.append(Sent(started, time.perf_counter(), delivery.state == "exists", status))

        self.google._deliver = timed  # type: ignore[method-assign]
        return sends

    def channels(self) -> list[dict[str, Any]]:
        return self.google.channels()

    def stop_notifications(self) -> None:
        for channel in self.google.channels():
            self.google.expire_channel(channel["id"])

    async def answer_time(self, *, full: bool = False, samples: int = 5) -> float:
        """``events.list`` as the server asks it (with the double's latency)."""
        token = self.google.access_tokens_of(ACCOUNT)[-1]
        url = f"{self.google.url}/calendar/v3/calendars/{ACCOUNT}/events"
        headers = {"authorization": f"Bearer {token}"}
        params = {"singleEvents": "true", "maxResults": str(self.page_size)}
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

    sign_in_note = (
        "Calendar API requests the double received; google-auth refreshes its access token "
        f"({TOKEN_LIFETIME.total_seconds():.0f} s) by the wall clock, which the simulation does not move, so token "
        "requests are added by computation"
    )

    @classmethod
    def channel_note(cls, channels: int, renewals: int) -> str:
        return (
            f"Channels live in the push run: {channels}; a channel lives {CHANNEL_DAYS} days and is renewed in its "
            f"last day (events.watch + channels.stop every ~{CHANNEL_DAYS - 1} days: "
            f"+{2 / ((CHANNEL_DAYS - 1) * 24):.3f} per hour)"
        )
