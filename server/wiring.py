"""The one place services are built from settings, for the server and the command line alike."""

from __future__ import annotations

from db.engine import Database
from pubsub import EventHub
from scheduling.clock import Clock, system_clock
from scheduling.notifications.mailer import Mailer
from scheduling.services import Services
from server.providers import provider_settings
from server.settings import Settings


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
    )


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
