"""Server settings for a test on a SQLite database: in-process pub/sub, files under ``tmp_path``.

``GENEROUS_LIMITS``: the public API's abuse limits raised so far that no test trips them by
booking many times from loopback; ``tests/conftest.py`` puts them in the environment for every
test (and every server process a test starts). Tests of the limits pass their own values.
"""

from __future__ import annotations

from pathlib import Path

from server.settings import Settings

GENEROUS_LIMITS = {
    "KOKOUS_RATE_LIMIT_CLIENT_PER_MINUTE": "100000",
    "KOKOUS_RATE_LIMIT_CLIENT_PER_HOUR": "100000",
    "KOKOUS_RATE_LIMIT_PAGE_PER_MINUTE": "100000",
    "KOKOUS_RATE_LIMIT_BOOKINGS_PER_DAY": "100000",
    "KOKOUS_RATE_LIMIT_EMAILS_PER_DAY": "100000",
}


def sqlite_settings(url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url,
        "broadcast_url": "memory://",
        "data_dir": tmp_path / "data",
        "outbox_dir": tmp_path / "outbox",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]
