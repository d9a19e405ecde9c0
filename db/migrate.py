"""Apply Alembic migrations and tell whether a database is at the newest revision."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class DatabaseNotMigrated(Exception):
    """The database schema is behind the code; ``kokous migrate`` brings it up to date."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest revision."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


async def ensure_migrated(engine: AsyncEngine) -> None:
    """Refuse to serve a database whose schema is not at the newest revision."""
    async with engine.connect() as connection:
        current = await connection.run_sync(_current)
    head = head_revision()
    if current != head:
        state = "is not migrated" if current is None else f"is at revision {current}, not {head}"
        raise DatabaseNotMigrated(f"The database {state}. Run `kokous migrate` first.")
