"""Processes and databases a benchmark needs, each stopped or dropped by its own handle.

``kokous serve`` processes come from ``tests.system.processes`` and the private redis-server
from ``tests.support.redis_process`` (run from the repository root, ``tests`` is importable), so the
benchmarks start servers exactly as the system tests do. Nothing here touches the shared Redis.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from db.migrate import migrate
from tests.support.redis_process import RedisProcess
from tests.system.processes import ServerProcess, kokous_servers

__all__ = [
    "BENCH_SECRET_KEY",
    "RedisProcess",
    "ServerProcess",
    "is_ready",
    "postgres_admin_url",
    "private_postgres_database",
    "private_redis",
    "rss_bytes",
    "serve",
    "server_env",
    "sqlite_database",
    "wait_ready",
]

BENCH_SECRET_KEY = "kokous-benchmark-key-not-secret"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    """The server the benchmarks create their private database on (same variable as the tests)."""
    return os.environ.get("KOKOUS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def server_env(database_url: str, broadcast_url: str = "memory://", prefix: str | None = None) -> dict[str, str]:
    return {
        "KOKOUS_DATABASE_URL": database_url,
        "KOKOUS_BROADCAST_URL": broadcast_url,
        "KOKOUS_BROADCAST_CHANNEL_PREFIX": prefix or f"bench{uuid.uuid4().hex[:10]}",
        "KOKOUS_SECRET_KEYS": BENCH_SECRET_KEY,
        "KOKOUS_LOG_LEVEL": "WARNING",
        **GENEROUS_LIMITS,
    }


# The benchmarks book and cancel many times from loopback: the abuse limits must not count them.
GENEROUS_LIMITS = {
    "KOKOUS_RATE_LIMIT_CLIENT_PER_MINUTE": "1000000",
    "KOKOUS_RATE_LIMIT_CLIENT_PER_HOUR": "1000000",
    "KOKOUS_RATE_LIMIT_PAGE_PER_MINUTE": "1000000",
    "KOKOUS_RATE_LIMIT_BOOKINGS_PER_DAY": "1000000",
    "KOKOUS_RATE_LIMIT_EMAILS_PER_DAY": "1000000",
}


@contextmanager
def serve(count: int, env: dict[str, str], *, workers: int = 1) -> Iterator[list[ServerProcess]]:
    """``count`` ``kokous serve`` processes (``workers`` workers each) on free loopback ports, ready."""
    with (
        tempfile.TemporaryDirectory(prefix="kokous-bench-") as folder,
        kokous_servers(count, env, Path(folder), workers=workers) as servers,
    ):
        yield servers


@contextmanager
def sqlite_database() -> Iterator[str]:
    """A migrated SQLite file in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="kokous-bench-db-") as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'kokous.db'}"
        asyncio.run(migrate(url))
        yield url


@contextmanager
def private_postgres_database() -> Iterator[str]:
    """``kokous_bench_<random>`` on the shared server, migrated; dropped at the end."""
    import asyncpg

    admin_url = postgres_admin_url()
    name = f"kokous_bench_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(admin_url, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        url = f"{base}/{name}"
        asyncio.run(migrate(url))
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def private_redis() -> Iterator[RedisProcess]:
    """A redis-server of our own on a free port, so killing it never disturbs anybody else."""
    server = RedisProcess()
    try:
        server.start()
        yield server
    finally:
        server.close()


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux ``/proc``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def is_ready(http: httpx.AsyncClient, server: ServerProcess) -> bool:
    try:
        return (await http.get(f"{server.base_url}/readyz", timeout=1)).status_code == 200
    except httpx.HTTPError:
        return False


async def wait_ready(http: httpx.AsyncClient, server: ServerProcess, *, within: float, interval: float = 0.02) -> float:
    """Seconds (monotonic clock) at which ``/readyz`` first answered 200; NaN after ``within`` seconds."""
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        if await is_ready(http, server):
            return time.perf_counter()
        await asyncio.sleep(interval)
    return float("nan")


T = TypeVar("T")


def on_each_database(run: Any, measure_one: Callable[[str, str], T]) -> list[T]:
    """``measure_one(backend, url)`` on a private SQLite file, then a private PostgreSQL database.

    Without a reachable PostgreSQL the run notes it and reports SQLite alone.
    """
    outcomes = []
    with sqlite_database() as url:
        outcomes.append(measure_one("sqlite", url))
    try:
        with private_postgres_database() as url:
            outcomes.append(measure_one("postgres", url))
    except OSError as exc:
        run.note(f"PostgreSQL skipped: {type(exc).__name__}: {exc}")
    return outcomes
