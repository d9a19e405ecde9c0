"""Finds the real PostgreSQL and Redis servers the tests use, or explains why a test skips.

With ``KOKOUS_REQUIRE_SERVICES=1`` (CI) a missing service fails the test instead of skipping.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

from tests.support.sync import run_sync

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def services_required() -> bool:
    return os.environ.get("KOKOUS_REQUIRE_SERVICES", "") not in ("", "0", "false")


def unavailable(reason: str) -> None:
    """Skip, or fail when services are required."""
    if services_required():
        pytest.fail(f"{reason} (KOKOUS_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def postgres_server_url() -> str:
    return os.environ.get("KOKOUS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def redis_server_url() -> str:
    return os.environ.get("KOKOUS_TEST_REDIS_URL", DEFAULT_REDIS_URL)


def _port_open(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), 1):
            return True
    except OSError:
        return False


def check_postgres() -> str:
    url = postgres_server_url()
    if not _port_open(url, 5432):
        unavailable(f"PostgreSQL not reachable at {url}")

    async def probe() -> None:
        import asyncpg

        connection = await asyncpg.connect(url, timeout=5)
        await connection.close()

    try:
        run_sync(probe())
    except Exception as exc:
        unavailable(f"PostgreSQL at {url} refused us: {exc}")
    return url


def check_redis() -> str:
    url = redis_server_url()
    if not _port_open(url, 6379):
        unavailable(f"Redis not reachable at {url}")
    return url
