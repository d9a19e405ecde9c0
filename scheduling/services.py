"""The set of services one app instance uses, built once in the server's lifespan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from db.engine import Database
from pubsub import EventHub
from scheduling import outbox
from scheduling.booking.book import BookingDeps, BookingService
from scheduling.booking.emails import BookingEmails
from scheduling.booking.lifecycle import BookingLifecycle
from scheduling.booking.queries import BookingQueries
from scheduling.calendars.access import ProviderAccess
from scheduling.calendars.busy_check import BusyCheck
from scheduling.calendars.busy_sync import BusySync
from scheduling.calendars.channels import PushChannels
from scheduling.calendars.clients import ProviderClients, ProviderSettings
from scheduling.calendars.connect import ConnectionService
from scheduling.calendars.directory import ConnectionDirectory
from scheduling.calendars.status import InactiveNotices
from scheduling.calendars.vault import CredentialVault
from scheduling.calendars.writes import CalendarWrites
from scheduling.clock import Clock
from scheduling.crm.contacts import ContactService
from scheduling.crm.import_log import ImportLog
from scheduling.crm.imports import import_events
from scheduling.crm.meeting_writes import MeetingWrites
from scheduling.crm.meetings import MeetingService
from scheduling.crm.task_calendar import queue_owner
from scheduling.crm.task_sync import TaskEvents
from scheduling.crm.tasks import TaskService
from scheduling.events import EventBus
from scheduling.limits import AbuseLimits
from scheduling.live.answer_cache import AnswerCache
from scheduling.live.feeds import LiveService
from scheduling.notifications.mailer import Mailer
from scheduling.outbox import OutboxWorker
from scheduling.pages.availability import AvailabilityService
from scheduling.pages.domains import DomainService
from scheduling.pages.links import LinkBuilder
from scheduling.pages.service import PageService
from scheduling.signing import Signer
from scheduling.users import UserService


@dataclass(frozen=True)
class Services:
    db: Database
    bus: EventBus
    links: LinkBuilder
    signer: Signer
    users: UserService
    pages: PageService
    domains: DomainService
    live: LiveService
    calendars: ConnectionDirectory
    bookings: BookingQueries
    booking: BookingService
    lifecycle: BookingLifecycle
    outbox: OutboxWorker
    answers: AnswerCache
    connections: ConnectionService
    busy_sync: BusySync
    busy_check: BusyCheck
    limits: AbuseLimits
    contacts: ContactService
    meetings: MeetingService
    tasks: TaskService
    calendar_imports: ImportLog
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
        dashboard_url: str,
        clock: Clock,
        answer_cache_entries: int,
        providers: ProviderSettings,
        push_address: str | None,
        limits: AbuseLimits,
        request_ttl: timedelta,
    ) -> Services:
        """Every service, each given exactly the collaborators its rules depend on."""
        bus = EventBus(hub, channel_prefix)
        links = LinkBuilder(public_url)
        signer = Signer(secret_keys)
        pages = PageService(db=db, bus=bus, links=links, clock=clock)
        availability = AvailabilityService(request_ttl=request_ttl)
        emails = BookingEmails(
            db=db, mailer=mailer, signer=signer, links=links, clock=clock, dashboard_url=dashboard_url
        )
        access = ProviderAccess(
            db=db, vault=CredentialVault(secret_keys), clients=ProviderClients(providers), bus=bus, clock=clock
        )
        busy_sync = BusySync(
            access=access,
            bus=bus,
            clock=clock,
            channels=PushChannels(db=db, clock=clock, address=push_address),
            on_round=import_events,  # calendar sync: the same rounds log the owner's meetings
        )
        busy_check = BusyCheck(access=access, clock=clock)
        # The outbox runs the handlers, and the handlers' services wake the outbox: each side
        # reaches the other through a name bound just below.
        worker: OutboxWorker
        lifecycle: BookingLifecycle
        notices = InactiveNotices(
            db=db, mailer=mailer, clock=clock, settings_url=dashboard_url, wake_outbox=lambda: worker.wake()
        )
        handlers = {
            **emails.handlers(),
            **CalendarWrites(access=access, clock=clock).handlers(),
            **MeetingWrites(access=access, clock=clock).handlers(),
            **TaskEvents(access=access).handlers(),
            **notices.handlers(),
            outbox.BOOKING_FOLLOW_CALENDAR: lambda payload: lifecycle.follow_calendar(payload),
        }
        worker = OutboxWorker(db=db, handlers=handlers, clock=clock)
        booking_deps = BookingDeps(
            db=db,
            bus=bus,
            pages=pages,
            availability=availability,
            clock=clock,
            wake_outbox=worker.wake,
            busy_check=busy_check,
            inactive_notices=notices,
            limits=limits,
        )
        lifecycle = BookingLifecycle(booking_deps)
        return cls(
            db=db,
            bus=bus,
            links=links,
            signer=signer,
            users=UserService(
                db=db, bus=bus, links=links, clock=clock, wake_outbox=worker.wake, on_seat_changed=queue_owner
            ),
            pages=pages,
            domains=DomainService(db=db, clock=clock),
            live=LiveService(db=db, pages=pages, availability=availability, bus=bus, clock=clock, busy_sync=busy_sync),
            calendars=ConnectionDirectory(
                db=db, bus=bus, clock=clock, wake_outbox=worker.wake, on_sync_changed=queue_owner
            ),
            bookings=BookingQueries(db),
            booking=BookingService(booking_deps),
            lifecycle=lifecycle,
            outbox=worker,
            answers=AnswerCache(bus=bus, clock=clock, max_entries=answer_cache_entries),
            connections=ConnectionService(
                access=access, busy=busy_sync, bus=bus, signer=signer, clock=clock, dashboard_url=dashboard_url
            ),
            busy_sync=busy_sync,
            busy_check=busy_check,
            limits=limits,
            contacts=ContactService(db=db, clock=clock),
            meetings=MeetingService(db=db, clock=clock, wake_outbox=worker.wake),
            tasks=TaskService(db=db, clock=clock, wake_outbox=worker.wake),
            calendar_imports=ImportLog(db=db),
            clock=clock,
        )
