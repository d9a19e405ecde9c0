"""The one place services are built from settings, for the server and the command line alike."""

from __future__ import annotations

import logging
from datetime import timedelta

from db.engine import Database
from pubsub import EventHub
from scheduling.clock import Clock, system_clock
from scheduling.limits import AbuseLimits, LimitRules, counters_for
from scheduling.notifications.mailer import Mailer
from scheduling.services import Services
from server.providers import provider_settings
from server.settings import Settings

logger = logging.getLogger(__name__)


def build_services(settings: Settings, *, db: Database, hub: EventHub, clock: Clock = system_clock) -> Services:
    """Every service of one process, configured from ``settings``; ``clock`` is the system's but in tests."""
    return Services.build(
        db=db,
        hub=hub,
        channel_prefix=settings.broadcast_channel_prefix,
        public_url=settings.public_url,
        secret_keys=settings.encryption_keys(),
        mailer=mailer_for(settings, clock),
        dashboard_url=settings.effective_dashboard_url,
        clock=clock,
        answer_cache_entries=settings.answer_cache_entries,
        providers=provider_settings(settings),
        push_address=push_address(settings),
        limits=abuse_limits(settings),
        request_ttl=timedelta(days=settings.request_ttl_days),
    )


def abuse_limits(settings: Settings) -> AbuseLimits:
    """The public API's limits, counted in Redis when the processes share one, else in memory."""
    rules = LimitRules(
        client_per_minute=settings.rate_limit_client_per_minute,
        client_per_hour=settings.rate_limit_client_per_hour,
        page_per_minute=settings.rate_limit_page_per_minute,
        bookings_per_client_and_page_per_day=settings.rate_limit_bookings_per_day,
        emails_per_address_per_day=settings.rate_limit_emails_per_day,
    )
    return AbuseLimits(
        counters=counters_for(settings.broadcast_url), rules=rules, prefix=settings.broadcast_channel_prefix
    )


def push_address(settings: Settings) -> str | None:
    """Where providers post change notifications: ``{WEBHOOK_URL or PUBLIC_URL}/webhooks``, then
    ``/google`` or ``/microsoft``.

    Google and Graph deliver only to HTTPS with a valid certificate; in production a plain-http
    public URL opens no channels (the background pass polls instead), in development any URL is
    registered.
    """
    address = f"{(settings.webhook_url or settings.public_url).rstrip('/')}/webhooks"
    if settings.production and not address.startswith("https://"):
        logger.warning("the webhook address is not https: calendars are polled, not pushed")
        return None
    return address


def mailer_for(settings: Settings, clock: Clock = system_clock) -> Mailer:
    """SMTP when configured; otherwise .eml files in the outbox folder."""
    sender = f"Kokous <no-reply@{settings.app_host or 'localhost'}>"
    return Mailer(
        smtp_url=settings.smtp_url,
        outbox_dir=settings.outbox_dir,
        sender=sender,
        cert_bundle=settings.ca_bundle,
        clock=clock,
    )
