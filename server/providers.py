"""Provider endpoints and clients from settings: what the adapters are pointed at."""

from __future__ import annotations

from providers.caldav import CalDAVConfig
from providers.exchange import ExchangeConfig
from providers.google import GoogleConfig
from providers.microsoft import MicrosoftConfig
from providers.outbound import OutboundPolicy
from scheduling.calendars.clients import ProviderSettings
from server.settings import Settings

GOOGLE_CALLBACK = "/oauth/google/callback"
MICROSOFT_CALLBACK = "/oauth/microsoft/callback"


def provider_settings(settings: Settings) -> ProviderSettings:
    """Google and Microsoft only when their client is configured; a CA bundle for every provider."""
    ca_bundle = str(settings.ca_bundle) if settings.ca_bundle else None
    # Owners type Exchange and CalDAV addresses: in production they reach only public addresses.
    outbound = OutboundPolicy(restrict=settings.production, allow=settings.outbound_allow)
    google = None
    if settings.google_client_id and settings.google_client_secret:
        google = GoogleConfig(
            client_id=settings.google_client_id,
            client_secret=settings.google_client_secret,
            redirect_uri=settings.public_url + GOOGLE_CALLBACK,
            auth_uri=settings.google_auth_uri,
            token_uri=settings.google_token_uri,
            api_endpoint=settings.google_api_endpoint,
            ca_bundle=ca_bundle,
            timeout=settings.provider_timeout,
            insecure_transport=not settings.production,
        )
    microsoft = None
    if settings.microsoft_client_id and settings.microsoft_client_secret:
        microsoft = MicrosoftConfig(
            client_id=settings.microsoft_client_id,
            client_secret=settings.microsoft_client_secret,
            redirect_uri=settings.public_url + MICROSOFT_CALLBACK,
            authority=settings.microsoft_authority,
            graph_url=settings.microsoft_graph_url,
            ca_bundle=ca_bundle,
            timeout=settings.provider_timeout,
        )
    return ProviderSettings(
        google=google,
        microsoft=microsoft,
        exchange=ExchangeConfig(ca_bundle=ca_bundle, timeout=settings.provider_timeout, outbound=outbound),
        caldav=CalDAVConfig(ca_bundle=ca_bundle, timeout=settings.provider_timeout, outbound=outbound),
        outbound=outbound,
    )
