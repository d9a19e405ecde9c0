"""Owners, pages and calendar connections written straight through ``Services``.

The same data as ``seed_owner_with_page`` in tests/system/test_scale_out.py, with a page slug
of the caller's choosing so several owners can share one database. ``Services`` is taken from
the app's own lifespan (memory pub/sub), so the seed builds it exactly as ``kokous serve`` does.
"""

from __future__ import annotations

import random
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from benchmarks.servers import BENCH_SECRET_KEY, GENEROUS_LIMITS
from common.values import CalendarProvider, Weekday
from db.models import BusyInterval, Calendar, CalendarConnection
from scheduling.engine.coverage import MAX_AHEAD, PAST
from scheduling.pages import rules as page_rules
from scheduling.pages.service import PageDraft, PageView
from scheduling.services import Services
from scheduling.users import NewUser
from server.app import create_app
from server.settings import Settings


@dataclass(frozen=True)
class SeededOwner:
    token: str
    slug: str
    connection_id: uuid.UUID


@dataclass(frozen=True)
class BusyOwner:
    """An owner whose page is online, with integrated calendars full of busy time."""

    owner_id: uuid.UUID
    token: str
    slug: str
    calendar_ids: list[uuid.UUID]
    busy: int


def seed_settings(database_url: str, folder: Path, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        broadcast_url="memory://",
        broadcast_channel_prefix="seed",
        secret_keys=(BENCH_SECRET_KEY,),
        data_dir=folder / "data",
        outbox_dir=folder / "outbox",
        **{
            **{name.removeprefix("KOKOUS_").lower(): int(value) for name, value in GENEROUS_LIMITS.items()},
            **overrides,
        },
    )


async def seed_owners(database_url: str, count: int, slug_prefix: str = "bench") -> list[SeededOwner]:
    """``count`` owners, each with one page (``<prefix>-<n>-<random>``) and one calendar connection."""
    with tempfile.TemporaryDirectory(prefix="kokous-bench-seed-") as folder:
        app = create_app(seed_settings(database_url, Path(folder)))
        async with app.router.lifespan_context(app):
            services = cast(Services, app.state.services)
            return [await _one(services, index, slug_prefix) for index in range(count)]


def every_day(start: str, end: str) -> list[page_rules.WeeklyHours]:
    """Weekly hours ``start``-``end`` on all seven days (more distinct slots to book)."""
    return [page_rules.WeeklyHours(weekday=day, start=start, end=end) for day in Weekday]


async def seed_busy_owner(
    database_url: str,
    *,
    slug_prefix: str,
    calendars: int,
    busy: int,
    start: datetime,
    days: int,
    durations: tuple[int, ...] = (30,),
    start_increment: int = 15,
    weekly_hours: list[page_rules.WeeklyHours] | None = None,
    horizon_days: int = 120,
    seed: int = 1,
) -> BusyOwner:
    """An owner with one page and ``calendars`` integrated calendars on one connection, written
    straight into the database as provider sync stores them: ``busy`` intervals (15-45 min,
    uniformly over every hour of ``days`` days from ``start``) dealt round-robin to the calendars.
    The page keeps its default Monday-Friday 09:00-17:00 hours unless ``weekly_hours`` is given.
    """
    with tempfile.TemporaryDirectory(prefix="kokous-bench-seed-") as folder:
        app = create_app(seed_settings(database_url, Path(folder)))
        async with app.router.lifespan_context(app):
            services = cast(Services, app.state.services)
            tag = uuid.uuid4().hex[:8]
            created = await services.users.create(email=f"bench-{tag}@example.com", name="Bench busy")
            if not isinstance(created, NewUser):
                raise RuntimeError(f"cannot create a benchmark owner: {created}")
            slug = f"{slug_prefix}-{tag}"
            draft = PageDraft(
                slug=slug,
                name="Bench call",
                durations=list(durations),
                start_increment=start_increment,
                booking_horizon_days=horizon_days,
                weekly_hours=weekly_hours,
            )
            page = await services.pages.create(created.user.id, draft)
            if not isinstance(page, PageView):
                raise RuntimeError(f"cannot create a benchmark page: {page}")
            rng = random.Random(seed)
            span = days * 24 * 60
            async with services.db.transaction() as session:
                connection = CalendarConnection(
                    user_id=created.user.id, provider=CalendarProvider.GOOGLE, account_email=created.user.email
                )
                session.add(connection)
                await session.flush()
                rows = [
                    Calendar(
                        connection_id=connection.id,
                        external_id=f"calendar-{index}",
                        name=f"Calendar {index}",
                        is_primary=index == 0,
                        integrated=True,
                        busy_synced_at=datetime.now(UTC),
                        covered_from=datetime.now(UTC) - PAST,
                        covered_until=datetime.now(UTC) + MAX_AHEAD,
                    )
                    for index in range(calendars)
                ]
                session.add_all(rows)
                await session.flush()
                calendar_ids = [row.id for row in rows]
                for index in range(busy):
                    begins = start + timedelta(minutes=rng.randrange(0, span, 5))
                    session.add(
                        BusyInterval(
                            calendar_id=calendar_ids[index % calendars],
                            start_at=begins,
                            end_at=begins + timedelta(minutes=rng.choice((15, 30, 45))),
                            external_id=f"event-{index}",
                        )
                    )
            return BusyOwner(created.user.id, created.token, slug, calendar_ids, busy)


async def _one(services: Services, index: int, slug_prefix: str) -> SeededOwner:
    tag = uuid.uuid4().hex[:8]
    created = await services.users.create(email=f"bench-{tag}@example.com", name=f"Bench {index}")
    if not isinstance(created, NewUser):
        raise RuntimeError(f"cannot create a benchmark owner: {created}")
    slug = f"{slug_prefix}-{index}-{tag}"
    page = await services.pages.create(created.user.id, PageDraft(slug=slug, name="Bench call", durations=[30]))
    if not isinstance(page, PageView):
        raise RuntimeError(f"cannot create a benchmark page: {page}")
    async with services.db.transaction() as session:
        connection = CalendarConnection(
            user_id=created.user.id, provider=CalendarProvider.GOOGLE, account_email=created.user.email
        )
        session.add(connection)
        await session.flush()
        session.add(Calendar(connection_id=connection.id, external_id="primary", name="Work", is_primary=True))
        connection_id = connection.id
    return SeededOwner(token=created.token, slug=slug, connection_id=connection_id)


# GraphQL documents for booking on a seeded page (the same fields as tests/support/booking_helpers.py).
BOOK = """
mutation($input: BookMeetingInput!) {
  bookMeeting(input: $input) {
    __typename
    ... on BookingFields { id start status manageToken }
    ... on SlotUnavailable { message }
    ... on Error { message }
  }
}
"""
CANCEL_BY_TOKEN = """
mutation($token: String!) {
  cancelBookingByToken(token: $token) { __typename ... on BookingFields { status } ... on Error { message } }
}
"""
SLOTS = """
query($slug: String!, $start: DateTime!, $end: DateTime!, $timezone: String!) {
  schedulingPage(slug: $slug) {
    slots(start: $start, end: $end, timezone: $timezone) { slots { start end } asOf status }
  }
}
"""


def book_body(slug: str, start: str, email: str, timezone: str = "UTC") -> dict[str, object]:
    invitee = {"name": "Bench Visitor", "email": email}
    return {
        "query": BOOK,
        "variables": {"input": {"slug": slug, "start": start, "timezone": timezone, "invitee": invitee}},
    }
