"""Prometheus metrics, one registry per app so several apps can live in one process."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pubsub import EventHub
from scheduling.calendars.busy_check import BusyCheck
from scheduling.calendars.busy_sync import BusySync
from scheduling.live.answer_cache import AnswerCache


class HubCollector(Collector):
    """Reads the pub/sub hub's counters when scraped."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._hub.stats
        yield CounterMetricFamily("kokous_pubsub_published", "Events handed to pub/sub", value=stats.published)
        yield CounterMetricFamily(
            "kokous_pubsub_publish_failures", "Publishes that failed", value=stats.publish_failures
        )
        yield CounterMetricFamily(
            "kokous_pubsub_delivered", "Events delivered to local subscribers", value=stats.delivered
        )
        yield CounterMetricFamily("kokous_pubsub_reconnects", "Pub/sub reconnections", value=stats.reconnects)
        yield GaugeMetricFamily("kokous_pubsub_subscribers", "Open local subscriptions", value=stats.subscribers)
        yield GaugeMetricFamily(
            "kokous_pubsub_connected", "1 when the pub/sub link is up", value=int(self._hub.connected)
        )


class AnswerCacheCollector(Collector):
    """Reads the answer cache's counters when scraped."""

    def __init__(self, cache: AnswerCache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._cache.stats
        answers = CounterMetricFamily("kokous_answer_cache", "Public page answers by outcome", labels=["outcome"])
        for outcome, value in (
            ("hit", stats.hits),
            ("miss", stats.misses),
            ("stored", stats.stored),
            ("invalidated", stats.invalidated),
        ):
            answers.add_metric([outcome], value)
        yield answers
        yield GaugeMetricFamily(
            "kokous_answer_cache_live", "1 when the invalidation feed is connected", value=int(self._cache.live)
        )


class BusyCheckCollector(Collector):
    """Bookings the cache decided because a provider failed in passing at booking time."""

    def __init__(self, check: BusyCheck) -> None:
        self._check = check

    def collect(self) -> Iterator[CounterMetricFamily]:
        stats = self._check.stats
        fallbacks = CounterMetricFamily(
            "kokous_busy_check_fallbacks",
            "Booking-time calendar checks a provider could not answer, by what decided instead",
            labels=["outcome"],
        )
        fallbacks.add_metric(["trusted_cache"], stats.trusted_cache)
        fallbacks.add_metric(["refused_stale"], stats.refused_stale)
        yield fallbacks


class SyncCollector(Collector):
    """Calendar sync rounds, push channels and the notifications they bring."""

    def __init__(self, sync: BusySync) -> None:
        self._sync = sync

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        rounds = CounterMetricFamily(
            "kokous_sync_rounds", "Calendar sync rounds: every event read (full) or only changes", labels=["kind"]
        )
        for kind, count in self._sync.rounds.items():
            rounds.add_metric([kind], count)
        yield rounds
        stats = self._sync.channels.stats
        notifications = CounterMetricFamily(
            "kokous_push_notifications", "Provider change notifications, by what became of them", labels=["outcome"]
        )
        for outcome, count in stats.notifications.items():
            notifications.add_metric([outcome], count)
        yield notifications
        channels = CounterMetricFamily(
            "kokous_push_channels",
            "Push channels (Google watch channels, Graph subscriptions) opened, renewed, stopped, and refused by the provider",
            labels=["event"],
        )
        events = {"opened": stats.opened, "renewed": stats.renewed, "stopped": stats.stopped, "refused": stats.refused}
        for event, count in events.items():
            channels.add_metric([event], count)
        yield channels
        active = GaugeMetricFamily(
            "kokous_push_channels_active", "Live push channels, by provider", labels=["provider"]
        )
        for provider, count in sorted(stats.active.items()):
            active.add_metric([provider], count)
        yield active
        yield CounterMetricFamily("kokous_push_syncs", "Syncs started by notifications", value=stats.syncs)
        latest = sorted(stats.sync_seconds)
        yield GaugeMetricFamily(
            "kokous_push_sync_seconds_p99",
            "Seconds from a notification to the end of its sync (slots published), 99th percentile of the last 1000",
            value=latest[min(len(latest) - 1, int(len(latest) * 0.99))] if latest else 0.0,
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kokous_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "kokous_http_request_seconds", "HTTP request duration", ["method", "route"], registry=self.registry
        )

    def watch_hub(self, hub: EventHub) -> None:
        self.registry.register(HubCollector(hub))

    def watch_answer_cache(self, cache: AnswerCache) -> None:
        self.registry.register(AnswerCacheCollector(cache))

    def watch_sync(self, sync: BusySync) -> None:
        self.registry.register(SyncCollector(sync))

    def watch_busy_check(self, check: BusyCheck) -> None:
        self.registry.register(BusyCheckCollector(check))


class MetricsMiddleware:
    """Counts requests by route template (never by raw path, which would explode the labels)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = _route_name(scope)
        status = 500
        started = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


def _route_name(scope: Scope) -> str:
    app = scope.get("app")
    for route in getattr(getattr(app, "router", None), "routes", []):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "other"))
    return "unmatched"
