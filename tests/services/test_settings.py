"""Settings come from KOKOUS_* variables and bad values fail with a clear message (OPS-1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import SettingsError, load_settings


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    # covers: OPS-1, OPS-3
    for name in ("KOKOUS_DATABASE_URL", "KOKOUS_BROADCAST_URL", "KOKOUS_ENV", "KOKOUS_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./kokous.db"
    assert settings.broadcast_url == "memory://"
    assert settings.effective_dashboard_url == "http://127.0.0.1:8000/dashboard"
    assert settings.google_token_uri == "https://oauth2.googleapis.com/token"
    assert settings.microsoft_graph_url == "https://graph.microsoft.com/v1.0"
    assert not settings.production


def test_environment_switches_to_scaled_out_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    # covers: OPS-1, OPS-3
    monkeypatch.setenv("KOKOUS_DATABASE_URL", "postgresql://kokous@db.internal/kokous")
    monkeypatch.setenv("KOKOUS_BROADCAST_URL", "redis://cache.internal:6379/0")
    monkeypatch.setenv("KOKOUS_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("KOKOUS_MICROSOFT_AUTHORITY", "https://login.microsoftonline.us/tenant")
    settings = load_settings()
    assert settings.database_url == "postgresql+asyncpg://kokous@db.internal/kokous"
    assert settings.broadcast_url == "redis://cache.internal:6379/0"
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.microsoft_authority == "https://login.microsoftonline.us/tenant"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("KOKOUS_DATABASE_URL", "mysql://x/y", "KOKOUS_DATABASE_URL"),
        ("KOKOUS_BROADCAST_URL", "kafka://x", "KOKOUS_BROADCAST_URL"),
        ("KOKOUS_ENV", "staging", "KOKOUS_ENV"),
        ("KOKOUS_PUBLIC_URL", "not a url", "KOKOUS_PUBLIC_URL"),
        ("KOKOUS_MAX_BODY_BYTES", "ten", "KOKOUS_MAX_BODY_BYTES"),
        ("KOKOUS_LOG_LEVEL", "LOUD", "KOKOUS_LOG_LEVEL"),
        ("KOKOUS_BROADCAST_CHANNEL_PREFIX", "Bad-Prefix", "KOKOUS_BROADCAST_CHANNEL_PREFIX"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str) -> None:
    # covers: OPS-1
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=expected):
        load_settings()


def test_production_requires_secret_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # covers: OPS-1
    monkeypatch.setenv("KOKOUS_ENV", "production")
    monkeypatch.delenv("KOKOUS_SECRET_KEYS", raising=False)
    with pytest.raises(SettingsError, match="KOKOUS_SECRET_KEYS is required"):
        load_settings()
    monkeypatch.setenv("KOKOUS_SECRET_KEYS", "new-key, old-key")
    settings = load_settings()
    assert settings.production
    assert settings.encryption_keys() == ("new-key", "old-key")
    assert "new-key" not in repr(settings)


def test_development_key_is_generated_once_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # covers: OPS-1
    monkeypatch.delenv("KOKOUS_SECRET_KEYS", raising=False)
    settings = load_settings(data_dir=tmp_path / "data")
    first = settings.encryption_keys()
    assert len(first) == 1
    assert len(first[0]) >= 40
    assert load_settings(data_dir=tmp_path / "data").encryption_keys() == first
    assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o077 == 0
