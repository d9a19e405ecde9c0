"""The set of services one app instance uses, built once in the server's lifespan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from db.engine import Database
from scheduling.answer_cache import AnswerCache
from scheduling.availability import AvailabilityService
from scheduling.booking import BookingService
from scheduling.booking_lifecycle import BookingLifecycle
from scheduling.bookings import BookingService as BookingQueries
from scheduling.busy_sync import BusySync
from scheduling.calendar_status import InactiveNotices
from scheduling.calendar_writes import CalendarWrites
from scheduling.calendars import CalendarService
from scheduling.clock import Clock, system_clock
from scheduling.connections import ConnectionService
from scheduling.domains import DomainService
from scheduling.events import EventBus
from scheduling.links import LinkBuilder
from scheduling.links_signing import LinkSigner
from scheduling.live import LiveService
from scheduling.live_check import LiveBusyCheck
from scheduling.notifications.handlers import BookingEmails
from scheduling.notifications.mailer import Mailer
from scheduling.outbox import OutboxWorker
from scheduling.pages import PageService
from scheduling.provider_access import ProviderAccess
from scheduling.provider_clients import ProviderClients, ProviderSettings
from scheduling.pubsub import EventHub
from scheduling.users import UserService
from scheduling.vault import CredentialVault


@dataclass(frozen=True)
class Services:
    db: Database
    bus: EventBus
    links: LinkBuilder
    signer: LinkSigner
    users: UserService
    pages: PageService
    domains: DomainService
    live: LiveService
    calendars: CalendarService
    bookings: BookingQueries
    booking: BookingService
    lifecycle: BookingLifecycle
    outbox: OutboxWorker
    answers: AnswerCache
    connections: ConnectionService
    busy_sync: BusySync
    live_check: LiveBusyCheck
    clock: Clock

    @classmethod
    def build(
        cls,
        *,
        db: Database,
        hub: EventHub,
        channel_prefix: str,
        public_url: str,
        secret_keys: Sequence[str],
        mailer: Mailer,
        dashboard_url: str | None = None,
        clock: Clock = system_clock,
        answer_cache_entries: int = 2_000,
        providers: ProviderSettings | None = None,
    ) -> Services:
        bus = EventBus(hub, channel_prefix)
        links = LinkBuilder(public_url)
        signer = LinkSigner(secret_keys)
        pages = PageService(db, bus, links, clock)
        availability = AvailabilityService()
        dashboard = dashboard_url or f"{links.app_origin}/dashboard"
        emails = BookingEmails(db, mailer, signer, links, clock, dashboard_url=dashboard)
        clients = ProviderClients(providers or ProviderSettings())
        access = ProviderAccess(db, CredentialVault(secret_keys), clients, bus, clock)
        busy_sync = BusySync(access, bus, clock)
        live_check = LiveBusyCheck(access, clock)
        notices = InactiveNotices(db, mailer, clock, settings_url=dashboard, wake_outbox=lambda: worker.wake())
        handlers = {**emails.handlers(), **CalendarWrites(access, clock).handlers(), **notices.handlers()}
        worker = OutboxWorker(db, handlers, clock)
        return cls(
            db=db,
            bus=bus,
            links=links,
            signer=signer,
            users=UserService(db, bus, links, clock),
            pages=pages,
            domains=DomainService(db, clock),
            live=LiveService(db, pages, availability, bus, clock, busy_sync),
            calendars=CalendarService(db, bus),
            bookings=BookingQueries(db),
            booking=BookingService(db, bus, pages, availability, clock, worker.wake, live_check, notices),
            lifecycle=BookingLifecycle(db, bus, pages, availability, clock, worker.wake, live_check, notices),
            outbox=worker,
            answers=AnswerCache(bus, clock, max_entries=answer_cache_entries),
            connections=ConnectionService(access, busy_sync, bus, signer, clock, dashboard_url=dashboard),
            busy_sync=busy_sync,
            live_check=live_check,
            clock=clock,
        )
