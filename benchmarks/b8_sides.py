"""B8's providers behind one small interface: what differs between Google, Graph, Exchange and CalDAV.

B8 measures every provider with the same machinery (``benchmarks/b8_push.py``); a *side* is what
that machinery needs to know of one provider and its double:

* how to point Kokous at it (settings for in-process services, environment for ``kokous serve``)
  and how to get an account's credentials from the adapter's own connect or OAuth functions;
* how the owner changes the calendar there (add, move, many events at once);
* how to classify the requests the double received, in the provider's own API names, and which
  of them only sign in (token refreshes, discovery: the idle part adds those by computation);
* for providers that push (``PushSide``): how an owner connects through the running server, when
  the channel is open, when the double's notifier started posting a notification (``Sent``),
  how to stop its notifications, and how long the double itself takes to answer.

A side owns its double for as long as it is open (``open`` is a context manager on each class).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from common.values import CalendarProvider
from server.settings import Settings
from tests.doubles.server import DoubleServer, RecordedRequest

CLOSED_ADDRESS_PORT = 9  # the discard port: nothing listens, so notifications to it fail fast


async def wait_for(predicate: Callable[[], Any], what: str, within: float = 10.0) -> Any:
    """The predicate's first truthy value, polled every 20 ms; RuntimeError after ``within`` seconds."""
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


@dataclass
class Sent:
    """One notification the double's notifier posted: when it started, when it was answered."""

    started: float
    answered: float
    change: bool  # about a change of the calendar (not a channel's first message, not a lifecycle notice)
    status: int | None


class Side(ABC):
    """One provider as B8 drives it: its double, its settings, its requests."""

    name: str  # the key of its figures and data: "google", "microsoft", "exchange", "caldav"
    title: str  # for people: "Google", "Microsoft Graph", ...
    provider: CalendarProvider
    account: str
    double: DoubleServer  # receives (and records) every request of the adapter
    auth_kinds: frozenset[str] = frozenset()  # request kinds that only sign in
    token_lifetime: timedelta | None = None  # how long the client uses one access token (None: no tokens)
    listed: int = 0  # events the double put into its answers, where the side can count them

    def count_listed(self, double: Any, method: str) -> None:
        """Count each call of the double's ``method`` (it puts one event into an answer) in ``listed``."""
        shown = getattr(double, method)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.listed += 1
            return shown(*args, **kwargs)

        setattr(double, method, counted)

    @abstractmethod
    def kind_of(self, request: RecordedRequest) -> str:
        """What a request to the double was, in the provider's API names."""

    def kinds(self, requests: Iterable[RecordedRequest]) -> dict[str, int]:
        counted: dict[str, int] = {}
        for request in requests:
            kind = self.kind_of(request)
            counted[kind] = counted.get(kind, 0) + 1
        return counted

    def api_calls(self, kinds: dict[str, int]) -> int:
        """Requests that are not sign-in traffic."""
        return sum(count for kind, count in kinds.items() if kind not in self.auth_kinds)

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """``Settings`` fields pointing the adapter at the double."""

    @abstractmethod
    async def credentials(self, settings: Settings) -> str:
        """The account's credentials JSON, from the adapter's own connect or OAuth functions."""

    @abstractmethod
    def add_events(self, spans: list[tuple[datetime, datetime]]) -> list[str]:
        """The owner's events, made in the provider; their ids."""


class PushSide(Side):
    """A provider that posts a notification on each change (Google watch channels, Graph subscriptions)."""

    start_name: str  # the ``CalendarProvider`` GraphQL value that starts its OAuth flow
    incremental_call: str  # the incremental request, in the provider's words, with its article
    page_size: int  # events per page of a full listing, as the adapter asks for them
    idle_hours: dict[str, int]  # simulated hours of the idle part: "push" and "polling"
    renewal_kind: str  # the request that renews (or replaces) a channel

    @abstractmethod
    def env(self, base_url: str) -> dict[str, str]:
        """``kokous serve`` environment pointing its adapter at the double."""

    @abstractmethod
    def consent(self, authorization_url: str) -> str:
        """The owner's browser consents at the provider; where it is sent back to."""

    @abstractmethod
    async def watching(self) -> None:
        """Wait until the server's channel for the calendar is open and ready to deliver."""

    @abstractmethod
    def add_event(self, start: datetime, end: datetime, guests: Sequence[str] = ()) -> str:
        """The owner adds an event (a meeting with ``guests``, if any); its id."""

    def add_events(self, spans: list[tuple[datetime, datetime]]) -> list[str]:
        return [self.add_event(start, end) for start, end in spans]

    @abstractmethod
    def move_event(self, event_id: str, start: datetime, end: datetime) -> None:
        """The owner moves an event."""

    @abstractmethod
    def record_sends(self) -> list[Sent]:
        """From now on, time-stamp every notification the double posts (a list that grows)."""

    @abstractmethod
    def channels(self) -> list[dict[str, Any]]:
        """The live channels (subscriptions) the double holds."""

    @abstractmethod
    def stop_notifications(self) -> None:
        """The double stops posting (its channels end), while the server still holds them as live."""

    @contextmanager
    def push_address(self) -> Iterator[str]:
        """Where in-process services ask the provider to post (``{address}/{provider}``): an address
        nothing listens on, unless the provider must reach it before it opens a channel."""
        yield f"http://127.0.0.1:{CLOSED_ADDRESS_PORT}/webhooks"

    @abstractmethod
    async def answer_time(self, *, full: bool = False, samples: int = 5) -> float:
        """Median seconds the double takes to answer as the adapter asks it: the incremental
        request with nothing changed, or (``full``) every event of the window, all pages."""

    # What the idle part cannot see for itself: sign-in requests by the wall clock, which the
    # simulation does not move (tokens by ``token_lifetime``, anything else per hour) ...
    sign_in_note: str
    extra_sign_in_per_hour: float = 0.0

    @classmethod
    @abstractmethod
    def channel_note(cls, channels: int, renewals: int) -> str:
        """... and how its channels live and are renewed."""
