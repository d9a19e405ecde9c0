"""Limits on what anonymous callers can make the public API do.

Public booking, requests, cancelling and rescheduling by link are counted per client address,
per page, and (booking and requests) per client address on one page; emails the public API
causes are counted per invitee address. Counts live in memory (a sliding window on the
monotonic clock) in one process, or in Redis (a fixed window, incremented atomically) when
processes share it, so a limit holds across every process of the deployment.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from scheduling.errors import RateLimited

logger = logging.getLogger(__name__)

MINUTE, HOUR, DAY = 60, 3_600, 86_400


@dataclass(frozen=True)
class Rate:
    """At most ``count`` hits in ``seconds``."""

    count: int
    seconds: int


class Counters(Protocol):
    async def hit(self, key: str, rate: Rate) -> int | None:
        """Count one hit on ``key``: None when it is within ``rate``, else the seconds until it frees."""
        ...

    async def close(self) -> None: ...


class MemoryCounters:
    """Sliding windows of hit times (monotonic clock), one per key, in this process."""

    _SWEEP_EVERY = 1_000

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._hits: dict[str, tuple[int, deque[float]]] = {}
        self._since_sweep = 0

    async def hit(self, key: str, rate: Rate) -> int | None:
        now = self._monotonic()
        self._sweep(now)
        _, hits = self._hits.setdefault(key, (rate.seconds, deque()))
        while hits and hits[0] <= now - rate.seconds:
            hits.popleft()
        if len(hits) >= rate.count:
            return max(1, math.ceil(hits[0] + rate.seconds - now))
        hits.append(now)
        return None

    def _sweep(self, now: float) -> None:
        """Forget keys whose every hit has left its window (memory stays bounded)."""
        self._since_sweep += 1
        if self._since_sweep < self._SWEEP_EVERY:
            return
        self._since_sweep = 0
        stale = [key for key, (seconds, hits) in self._hits.items() if not hits or hits[-1] <= now - seconds]
        for key in stale:
            del self._hits[key]

    async def close(self) -> None:
        self._hits.clear()


# INCR and EXPIRE as one step: the first hit of a window starts its expiry; a key that somehow
# lost its expiry gets one again. Answers the count and the seconds left in the window.
_FIXED_WINDOW = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class RedisCounters:
    """Fixed windows in Redis, shared by every process using it. While Redis cannot be reached
    the limits are not enforced (logged): booking must not stop because a counter is away."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._redis.register_script(_FIXED_WINDOW)

    async def hit(self, key: str, rate: Rate) -> int | None:
        from redis.exceptions import RedisError

        try:
            count, ttl = await self._script(keys=[key], args=[rate.seconds])
        except (RedisError, OSError) as error:
            logger.warning("rate limit not checked: Redis unavailable (%s)", type(error).__name__)
            return None
        return None if int(count) <= rate.count else max(1, int(ttl))

    async def close(self) -> None:
        await self._redis.aclose()


@dataclass(frozen=True, kw_only=True)
class LimitRules:
    """The limits; every count is per window named in its field."""

    client_per_minute: int
    client_per_hour: int
    page_per_minute: int
    bookings_per_client_and_page_per_day: int
    emails_per_address_per_day: int


def client_key(host: str | None) -> str:
    """The counted identity of a client address: an IPv6 address counts by its /64 network
    (one host usually holds a whole /64); an unparsable or missing one counts as ``unknown``."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False).network_address) + "/64"
    return str(address)


class AbuseLimits:
    """The checks the public API makes; each counts one hit and answers ``RateLimited`` (with the
    seconds until it frees) when a limit is reached. A refused call changes nothing else."""

    def __init__(self, *, counters: Counters, rules: LimitRules, prefix: str) -> None:
        self._counters = counters
        self._rules = rules
        self._prefix = f"{prefix}:limit"

    @property
    def rules(self) -> LimitRules:
        return self._rules

    async def public_call(self, client: str) -> RateLimited | None:
        """Any public booking mutation from one client address."""
        rules = self._rules
        return await self._first_refusal(
            (f"client:m:{client}", Rate(rules.client_per_minute, MINUTE)),
            (f"client:h:{client}", Rate(rules.client_per_hour, HOUR)),
        )

    async def page_call(self, page_id: object) -> RateLimited | None:
        """Any public booking mutation on one page, from everyone."""
        return await self._first_refusal((f"page:m:{page_id}", Rate(self._rules.page_per_minute, MINUTE)))

    async def new_booking(self, client: str, page_id: object) -> RateLimited | None:
        """A booking or request from one client address on one page: each takes a time, so one
        address cannot take a page's every time."""
        rate = Rate(self._rules.bookings_per_client_and_page_per_day, DAY)
        return await self._first_refusal((f"book:d:{page_id}:{client}", rate))

    async def may_mail(self, address: str) -> bool:
        """Whether one more email the public API causes may go to ``address`` today."""
        rate = Rate(self._rules.emails_per_address_per_day, DAY)
        return await self._counters.hit(f"{self._prefix}:mail:d:{address.strip().lower()}", rate) is None

    async def _first_refusal(self, *limits: tuple[str, Rate]) -> RateLimited | None:
        for key, rate in limits:
            wait = await self._counters.hit(f"{self._prefix}:{key}", rate)
            if wait is not None:
                return RateLimited(
                    message=f"too many requests; nothing was changed, try again in {wait} s",
                    retry_after_seconds=wait,
                )
        return None

    async def close(self) -> None:
        await self._counters.close()


def counters_for(broadcast_url: str) -> Counters:
    """Redis when the processes share one (``redis://``, ``rediss://``), otherwise this process's memory."""
    if broadcast_url.startswith(("redis://", "rediss://")):
        return RedisCounters(broadcast_url)
    return MemoryCounters()
