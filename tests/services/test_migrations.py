"""The server refuses an unmigrated database and names the command that fixes it (OPS-2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import db.models  # noqa: F401  (every table on SQLModel.metadata)
from db.engine import Database
from db.migrate import DatabaseNotMigrated, migrate
from server.app import create_app
from tests.support.settings import sqlite_settings

ROOT = Path(__file__).resolve().parents[2]


async def test_app_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    # covers: OPS-2
    settings = sqlite_settings(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", tmp_path)
    app = create_app(settings)
    with pytest.raises(DatabaseNotMigrated, match="Run `kokous migrate` first"):
        async with app.router.lifespan_context(app):
            pass


def _kokous(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )


def test_cli_commands(tmp_path: Path) -> None:
    # covers: OPS-1, OPS-2, PAGE-6
    env = {
        **os.environ,
        "KOKOUS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'k.db'}",
        "KOKOUS_DATA_DIR": str(tmp_path),
    }

    def kokous(*args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
        return _kokous(*args, env={**env, **overrides}, cwd=tmp_path)

    refused = kokous("serve", "--port", "1")
    assert refused.returncode == 1
    assert "Run `kokous migrate` first" in refused.stderr
    for _ in range(2):  # migrating twice is harmless
        migrated = kokous("migrate")
        assert migrated.returncode == 0, migrated.stderr

    created = kokous("users", "create", "--email", "Ann@Example.com", "--timezone", "Europe/Helsinki")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1].startswith("kk_")
    duplicate = kokous("users", "create", "--email", "ann@example.com")
    assert (duplicate.returncode, "exists" in duplicate.stderr) == (1, True)
    bad_zone = kokous("users", "create", "--email", "b@example.com", "--timezone", "Mars/Base")
    assert (bad_zone.returncode, "IANA" in bad_zone.stderr) == (1, True)

    workers = kokous("serve", "--workers", "2")
    assert workers.returncode == 1
    assert "memory:// pub/sub reaches only one process" in workers.stderr
    bad_setting = kokous("migrate", KOKOUS_DATABASE_URL="mysql://x")
    assert (bad_setting.returncode, "KOKOUS_DATABASE_URL" in bad_setting.stderr) == (2, True)

    domain = kokous("domains", "add", "Meet.Example.com")
    assert (domain.returncode, domain.stdout.strip()) == (0, "connected domain meet.example.com")

    demo = kokous("demo")
    assert demo.returncode == 0, demo.stderr
    lines = demo.stdout.strip().splitlines()
    assert lines[-1].startswith("kk_")
    assert "http://127.0.0.1:8000/meetings/demo" in lines[0]
    demo_again = kokous("demo")
    assert demo_again.returncode == 0, demo_again.stderr
    assert demo_again.stdout.strip().splitlines()[-1] != lines[-1]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_migrations_build_exactly_the_tables_the_models_describe(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # covers: OPS-2
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    if backend == "sqlite":
        await migrate(url)
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
            )
    finally:
        await database.dispose()
    assert differences == []
