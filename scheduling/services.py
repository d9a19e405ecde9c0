"""The set of services one app instance uses, built once in the server's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from db.engine import Database
from scheduling.bookings import BookingService
from scheduling.calendars import CalendarService
from scheduling.clock import Clock, system_clock
from scheduling.domains import DomainService
from scheduling.events import EventBus
from scheduling.links import LinkBuilder
from scheduling.live import LiveService
from scheduling.pages import PageService
from scheduling.pubsub import EventHub
from scheduling.users import UserService


@dataclass(frozen=True)
class Services:
    db: Database
    bus: EventBus
    links: LinkBuilder
    users: UserService
    pages: PageService
    domains: DomainService
    live: LiveService
    calendars: CalendarService
    bookings: BookingService
    clock: Clock

    @classmethod
    def build(
        cls, *, db: Database, hub: EventHub, channel_prefix: str, public_url: str, clock: Clock = system_clock
    ) -> Services:
        bus = EventBus(hub, channel_prefix)
        links = LinkBuilder(public_url)
        pages = PageService(db, bus, links, clock)
        return cls(
            db=db,
            bus=bus,
            links=links,
            users=UserService(db, bus, links, clock),
            pages=pages,
            domains=DomainService(db, clock),
            live=LiveService(pages, bus, clock),
            calendars=CalendarService(db, bus),
            bookings=BookingService(db),
            clock=clock,
        )
