"""Which adapter serves a connection, built from settings: the one place that knows them all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from common.values import CalendarProvider
from providers.base import CalendarClient, ConnectedAccount, OAuthFlow
from providers.caldav import CalDAVCalendarClient, CalDAVConfig, CalDAVCredentials
from providers.errors import ProviderRefused
from providers.exchange import ExchangeCalendarClient, ExchangeConfig, ExchangeCredentials
from providers.google import GoogleCalendarClient, GoogleConfig, GoogleCredentials, GoogleOAuth
from providers.microsoft import MicrosoftCalendarClient, MicrosoftConfig, MicrosoftCredentials, MicrosoftOAuth
from providers.outbound import UNRESTRICTED, OutboundPolicy

OAUTH_PROVIDERS = (CalendarProvider.GOOGLE, CalendarProvider.MICROSOFT)
# Providers whose request quota every owner on this server shares (one Google project, one Entra
# app): their calendars are pushed or polled at the normal pace, never polled every minute.
SHARED_QUOTA_PROVIDERS = (CalendarProvider.GOOGLE, CalendarProvider.MICROSOFT)
ConfigT = TypeVar("ConfigT")


@dataclass(frozen=True)
class ProviderSettings:
    """Endpoints and clients of every provider; None where the operator configured none."""

    google: GoogleConfig | None = None
    microsoft: MicrosoftConfig | None = None
    exchange: ExchangeConfig = field(default_factory=ExchangeConfig)
    caldav: CalDAVConfig = field(default_factory=CalDAVConfig)
    # Owners type Exchange and CalDAV URLs; in production they may not point into our own network.
    outbound: OutboundPolicy = UNRESTRICTED

    @property
    def allow_private_urls(self) -> bool:
        return not self.outbound.restrict


class ProviderClients:
    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings

    def oauth(self, provider: CalendarProvider) -> OAuthFlow | None:
        """The provider's OAuth flow, or None when it is not configured (or has no OAuth)."""
        if provider == CalendarProvider.GOOGLE and self.settings.google is not None:
            return GoogleOAuth(self.settings.google)
        if provider == CalendarProvider.MICROSOFT and self.settings.microsoft is not None:
            return MicrosoftOAuth(self.settings.microsoft)
        return None

    def client(self, provider: CalendarProvider, credentials_json: str) -> CalendarClient:
        """An authorized client for stored credentials. Raises ``ProviderError`` if unusable."""
        if provider == CalendarProvider.GOOGLE:
            return GoogleCalendarClient(
                self._require(self.settings.google), GoogleCredentials.from_json(credentials_json)
            )
        if provider == CalendarProvider.MICROSOFT:
            return MicrosoftCalendarClient(
                self._require(self.settings.microsoft), MicrosoftCredentials.from_json(credentials_json)
            )
        if provider == CalendarProvider.EXCHANGE:
            return ExchangeCalendarClient(self.settings.exchange, ExchangeCredentials.from_json(credentials_json))
        return CalDAVCalendarClient(self.settings.caldav, CalDAVCredentials.from_json(credentials_json))

    @staticmethod
    def _require(config: ConfigT | None) -> ConfigT:
        if config is None:
            raise ProviderRefused("this calendar provider is not configured on this server", code="not_configured")
        return config


__all__ = ["OAUTH_PROVIDERS", "SHARED_QUOTA_PROVIDERS", "ConnectedAccount", "ProviderClients", "ProviderSettings"]
