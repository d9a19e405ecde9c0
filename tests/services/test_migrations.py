"""The server refuses an unmigrated database and names the command that fixes it (OPS-2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from db.migrate import DatabaseNotMigrated
from server.app import create_app
from tests.conftest import sqlite_settings

ROOT = Path(__file__).resolve().parents[2]


async def test_app_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    # covers: OPS-2
    settings = sqlite_settings(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", tmp_path)
    app = create_app(settings)
    with pytest.raises(DatabaseNotMigrated, match="Run `kokous migrate` first"):
        async with app.router.lifespan_context(app):
            pass


def test_cli_migrate_then_serve_checks(tmp_path: Path) -> None:
    # covers: OPS-1, OPS-2
    env = {
        **os.environ,
        "KOKOUS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'k.db'}",
        "KOKOUS_DATA_DIR": str(tmp_path),
    }
    kokous = [sys.executable, "-m", "server"]
    refused = subprocess.run(
        [*kokous, "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert refused.returncode == 1
    assert "Run `kokous migrate` first" in refused.stderr
    migrated = subprocess.run(
        [*kokous, "migrate"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False
    )
    assert migrated.returncode == 0, migrated.stderr
    again = subprocess.run(
        [*kokous, "migrate"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False
    )
    assert again.returncode == 0, again.stderr
    created = subprocess.run(
        [*kokous, "users", "create", "--email", "Ann@Example.com", "--timezone", "Europe/Helsinki"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1].startswith("kk_")
    duplicate = subprocess.run(
        [*kokous, "users", "create", "--email", "ann@example.com"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert duplicate.returncode == 1
    assert "exists" in duplicate.stderr
    bad_zone = subprocess.run(
        [*kokous, "users", "create", "--email", "b@example.com", "--timezone", "Mars/Base"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert bad_zone.returncode == 1
    assert "IANA" in bad_zone.stderr
    workers = subprocess.run(
        [*kokous, "serve", "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert workers.returncode == 1
    assert "memory:// pub/sub reaches only one process" in workers.stderr
    bad_setting = subprocess.run(
        [*kokous, "migrate"],
        env={**env, "KOKOUS_DATABASE_URL": "mysql://x"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert bad_setting.returncode == 2
    assert "KOKOUS_DATABASE_URL" in bad_setting.stderr
    domain = subprocess.run(
        [*kokous, "domains", "add", "Meet.Example.com"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert domain.returncode == 0
    assert domain.stdout.strip() == "connected domain meet.example.com"
    demo = subprocess.run(
        [*kokous, "demo"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False
    )
    assert demo.returncode == 0, demo.stderr
    lines = demo.stdout.strip().splitlines()
    assert lines[-1].startswith("kk_")
    assert "http://127.0.0.1:8000/meetings/demo" in lines[0]
    demo_again = subprocess.run(
        [*kokous, "demo"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False
    )
    assert demo_again.returncode == 0, demo_again.stderr
    assert demo_again.stdout.strip().splitlines()[-1] != lines[-1]
