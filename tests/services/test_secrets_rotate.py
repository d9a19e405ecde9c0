"""`kokous secrets rotate`: stored credentials move to the newest key, so the old one can go."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import select

from common.values import CalendarProvider
from db.engine import Database
from db.migrate import migrate
from db.models import CalendarConnection, User
from scheduling.calendars.vault import CredentialVault

OLD, NEW = "old-secret-key-of-length", "new-secret-key-of-length"


def rotate(url: str, keys: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KOKOUS_DATABASE_URL": url, "KOKOUS_SECRET_KEYS": keys, "KOKOUS_DATA_DIR": str(cwd)}
    command = [sys.executable, "-m", "server", "secrets", "rotate"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=cwd, check=False)


async def test_rotate_reseals_with_the_newest_key_and_reports_what_it_cannot_read(tmp_path: Path) -> None:
    # covers: CAL-8
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    await migrate(url)
    db = Database(url)
    try:
        async with db.transaction() as session:
            owner = User(email="owner@example.com")
            session.add(owner)
            await session.flush()
            sealed = CredentialVault([OLD]).seal('{"refresh_token": "1//secret"}')
            session.add(
                CalendarConnection(
                    user_id=owner.id, provider=CalendarProvider.GOOGLE, account_email=owner.email, credentials=sealed
                )
            )

        done = rotate(url, f"{NEW},{OLD}", tmp_path)
        assert done.returncode == 0, done.stderr
        assert "re-encrypted 1 stored credentials" in done.stdout
        async with db.session() as session:
            (connection,) = (await session.exec(select(CalendarConnection))).all()
        assert connection.credentials is not None
        assert CredentialVault([NEW]).open(connection.credentials) == '{"refresh_token": "1//secret"}'

        refused = rotate(url, "another-key-of-enough-length", tmp_path)
        assert refused.returncode == 1
        assert "1 stored credentials match no configured key" in refused.stderr
    finally:
        await db.dispose()
