"""A server as it runs in production (``KOKOUS_ENV=production``, real keys), for security tests.

In production mode introspection, GraphiQL and field suggestions are off, and unexpected errors
are masked: what the external suites (schemathesis, graphql-cop's checks) must see.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from server.settings import Settings
from tests.support.live_server import LiveServer, start_live_server
from tests.support.settings import sqlite_settings

# The message every unexpected (masked) error carries; typed errors never do.
MASKED_MESSAGE = "Unexpected error."


def production_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    """Production mode on the given database (SQLite or PostgreSQL), in-process pub/sub, files
    under ``tmp_path``, and two fresh secret keys (the newest first)."""
    keys = (secrets.token_urlsafe(32), secrets.token_urlsafe(32))
    return sqlite_settings(database_url, tmp_path, env="production", secret_keys=keys, **overrides)


@asynccontextmanager
async def production_server(database_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with start_live_server(production_settings(database_url, tmp_path)) as live:
        yield live
