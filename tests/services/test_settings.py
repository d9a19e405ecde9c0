"""Settings come from KOKOUS_* variables and bad values fail with a clear message (OPS-1)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from scheduling.booking.contact_tokens import CONTACT_PURPOSE
from scheduling.booking.manage_links import MANAGE_PURPOSE
from scheduling.calendars.oauth_flow import STATE_PURPOSE
from scheduling.calendars.vault import encryption_key
from scheduling.signing import signing_key
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
    new, old = secrets.token_urlsafe(32), secrets.token_hex(16)
    monkeypatch.setenv("KOKOUS_SECRET_KEYS", f"{new}, {old}")
    settings = load_settings()
    assert settings.production
    assert settings.encryption_keys() == (new, old)
    assert new not in repr(settings)


@pytest.mark.parametrize(
    ("weak", "reason"),
    [
        ("new-key", "7 characters, at least 32"),
        ("31415926535897932384626433832795", "estimated 106 bits"),  # long enough, but digits only
        ("ab" * 32, "repeats a few characters"),
    ],
)
def test_production_refuses_weak_secret_keys(monkeypatch: pytest.MonkeyPatch, weak: str, reason: str) -> None:
    # covers: SEC-4
    monkeypatch.setenv("KOKOUS_ENV", "production")
    strong = secrets.token_urlsafe(32)
    monkeypatch.setenv("KOKOUS_SECRET_KEYS", f"{strong},{weak}")  # an old key must be strong too
    with pytest.raises(SettingsError, match="key 2 of 2 is too weak") as refused:
        load_settings()
    assert reason in str(refused.value)
    assert "token_urlsafe" in str(refused.value)  # how to make a good one
    assert weak not in str(refused.value)
    assert strong not in str(refused.value)
    # Development takes any key, so local set-ups keep working.
    monkeypatch.setenv("KOKOUS_ENV", "development")
    assert load_settings().encryption_keys() == (strong, weak)


def test_signing_and_encryption_use_keys_of_their_own() -> None:
    # covers: SEC-4
    secret = secrets.token_urlsafe(32)
    encrypting = encryption_key(secret)
    signing = {signing_key(secret.encode(), purpose) for purpose in (MANAGE_PURPOSE, CONTACT_PURPOSE, STATE_PURPOSE)}
    assert len(signing) == 3  # one key per purpose: a token made for one never verifies for another
    assert encrypting not in signing
    assert secret.encode() not in signing | {encrypting}


def test_development_key_is_generated_once_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # covers: OPS-1
    monkeypatch.delenv("KOKOUS_SECRET_KEYS", raising=False)
    settings = load_settings(data_dir=tmp_path / "data")
    first = settings.encryption_keys()
    assert len(first) == 1
    assert len(first[0]) >= 40
    assert load_settings(data_dir=tmp_path / "data").encryption_keys() == first
    assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o077 == 0
