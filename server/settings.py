"""Settings read from ``KOKOUS_*`` environment variables, validated once at start-up."""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from scheduling.secret_keys import GENERATE_HINT, weakness

logger = logging.getLogger(__name__)

_CHANNEL_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,15}$")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class SettingsError(Exception):
    """A setting has a bad value; the message names the variable and the problem."""


class Settings(BaseSettings):
    """Every setting of the process. Field names map to ``KOKOUS_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="KOKOUS_", extra="ignore", frozen=True)

    env: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite+aiosqlite:///./kokous.db"
    broadcast_url: str = "memory://"
    broadcast_channel_prefix: str = "kokous"
    public_url: str = "http://127.0.0.1:8000"
    dashboard_url: str = ""
    # Where providers post change notifications (``/webhooks/...`` below it); empty: PUBLIC_URL.
    webhook_url: str = ""
    data_dir: Path = Path(".kokous")
    secret_keys: Annotated[tuple[str, ...], NoDecode] = Field(default=(), repr=False)
    smtp_url: str | None = Field(default=None, repr=False)
    outbox_dir: Path = Path("outbox")
    # No longer needed: /graphql and its WebSocket accept every origin (no ambient credentials).
    # Still read, so configurations that set it keep starting; its value changes nothing.
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    log_level: str = "INFO"
    log_json: bool = False
    max_body_bytes: int = Field(default=1_000_000, ge=1_024)
    max_subscriptions_per_connection: int = Field(default=20, ge=1, le=100)
    # Finished public page answers kept per process (0 turns the cache off).
    answer_cache_entries: int = Field(default=2_000, ge=0, le=1_000_000)
    # Abuse limits of the public booking mutations (bookMeeting, requestMeeting, and cancelling
    # or rescheduling by link): calls per client address, calls per page, bookings and requests
    # per client address on one page, emails to one invitee address; and how long a pending
    # request holds its time.
    rate_limit_client_per_minute: int = Field(default=10, ge=1)
    rate_limit_client_per_hour: int = Field(default=50, ge=1)
    rate_limit_page_per_minute: int = Field(default=60, ge=1)
    rate_limit_bookings_per_day: int = Field(default=5, ge=1)
    rate_limit_emails_per_day: int = Field(default=10, ge=1)
    request_ttl_days: int = Field(default=7, ge=1, le=365)

    google_client_id: str | None = None
    google_client_secret: str | None = Field(default=None, repr=False)
    google_auth_uri: str = "https://accounts.google.com/o/oauth2/auth"
    google_token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105
    google_api_endpoint: str = "https://www.googleapis.com/calendar/v3/"
    microsoft_client_id: str | None = None
    microsoft_client_secret: str | None = Field(default=None, repr=False)
    microsoft_authority: str = "https://login.microsoftonline.com/common"
    microsoft_graph_url: str = "https://graph.microsoft.com/v1.0"
    ca_bundle: Path | None = None
    # Seconds one provider request may take before it counts as unavailable (and is retried).
    provider_timeout: float = Field(default=10.0, gt=0, le=120)
    # Networks production may reach on owner-supplied servers (EWS, CalDAV) besides public addresses.
    outbound_allow: Annotated[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], NoDecode] = ()

    @field_validator("secret_keys", "allowed_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("outbound_allow", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        """Comma-separated CIDRs (``10.20.0.0/16, fd00:1::/64``); a bare address is one host."""
        if not isinstance(value, str):
            return value
        networks = []
        for part in (part.strip() for part in value.split(",")):
            if not part:
                continue
            try:
                networks.append(ipaddress.ip_network(part))
            except ValueError as exc:
                raise ValueError(f"{part!r} is not a network in CIDR notation (e.g. 10.20.0.0/16): {exc}") from None
        return tuple(networks)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme in ("postgresql", "postgres"):
            return "postgresql+asyncpg" + value[len(scheme) :]
        if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise ValueError("use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db")
        return value

    @field_validator("broadcast_url")
    @classmethod
    def _known_broadcast(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("memory", "redis", "rediss", "postgres", "postgresql"):
            raise ValueError("use memory://, redis://host:port/db or postgres://user@host/db")
        return value

    @field_validator("broadcast_channel_prefix")
    @classmethod
    def _channel_prefix(cls, value: str) -> str:
        if not _CHANNEL_PREFIX.match(value):
            raise ValueError("lower-case letters, digits and _, starting with a letter, <= 16")
        return value

    @field_validator("public_url", "dashboard_url", "webhook_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value == "":
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in logging.getLevelNamesMapping():
            raise ValueError("use DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @model_validator(mode="after")
    def _production_needs_keys(self) -> Self:
        if self.env != Environment.PRODUCTION:
            return self
        if not self.secret_keys:
            raise ValueError("KOKOUS_SECRET_KEYS is required when KOKOUS_ENV=production")
        for number, secret in enumerate(self.secret_keys, start=1):
            reason = weakness(secret)
            if reason is not None:
                raise ValueError(
                    f"KOKOUS_SECRET_KEYS: key {number} of {len(self.secret_keys)} is too weak for production "
                    f"({reason}); generate one with: {GENERATE_HINT}"
                )
        return self

    @property
    def production(self) -> bool:
        return self.env == Environment.PRODUCTION

    @property
    def effective_dashboard_url(self) -> str:
        return self.dashboard_url or f"{self.public_url}/dashboard"

    @property
    def app_host(self) -> str:
        """The host name of the app's own domain, which serves every page."""
        return (urlsplit(self.public_url).hostname or "").lower()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def encryption_keys(self) -> tuple[str, ...]:
        """The configured keys, or a development key kept in the data folder."""
        if self.secret_keys:
            return self.secret_keys
        key_file = self.data_dir / "secret.key"
        if not key_file.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(32))
            key_file.chmod(0o600)
            logger.warning("KOKOUS_SECRET_KEYS unset: generated a development key in %s", key_file)
        return (key_file.read_text().strip(),)


def load_settings(**overrides: object) -> Settings:
    """Read the environment; a bad value raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper()
            label = f"KOKOUS_{name}" if name else "settings"
            problems.append(f"{label}: {error['msg']}")
        raise SettingsError("; ".join(problems)) from None
