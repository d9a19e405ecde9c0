"""Server settings for a test on a SQLite database: in-process pub/sub, files under ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

from server.settings import Settings


def sqlite_settings(url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url,
        "broadcast_url": "memory://",
        "data_dir": tmp_path / "data",
        "outbox_dir": tmp_path / "outbox",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]
