"""Scheduling pages: the owner's CRUD, enabling in bulk, and the public lookup."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.values import PageStatus
from db.engine import Database
from db.models import Calendar, CalendarConnection, Domain, SchedulingPage, User
from db.plain import Plain, Rows, SessionRows, as_read
from scheduling import validation
from scheduling.clock import Clock
from scheduling.engine.coverage import MAX_HORIZON, MAX_HORIZON_DAYS
from scheduling.errors import InvalidInput, NotFound, Refused, SlugTaken
from scheduling.events import AvailabilityChanged, EventBus
from scheduling.pages import rules as page_rules
from scheduling.pages.links import LinkBuilder


@dataclass(frozen=True)
class PageDraft:
    """What the owner sends. On update, fields left as None keep their current value."""

    slug: str
    name: str
    durations: list[int]
    start_increment: int | None = None
    buffer_minutes: int | None = None
    minimum_notice_minutes: int | None = None
    booking_horizon_days: int | None = None
    timezone: str | None = None
    weekly_hours: list[page_rules.WeeklyHours] | None = None
    date_overrides: list[page_rules.DateOverride] | None = None
    form_fields: list[page_rules.FormField] | None = None
    redirect_url: str | None = None
    domain: str | None = None
    fixed_range_start: date | None = None
    fixed_range_end: date | None = None
    clear_fixed_range: bool = False  # back to the rolling horizon
    enabled: bool | None = None


@dataclass(frozen=True)
class PageView:
    """A page with what is derived from its owner: link, online state, default flag."""

    page: SchedulingPage
    url: str
    status: PageStatus
    is_default: bool
    owner: User = field(repr=False)


PageResult = PageView | InvalidInput | SlugTaken | NotFound


@dataclass(frozen=True)
class HostPages:
    """The enabled pages one host serves, as search engines may see them."""

    hidden: list[str]  # slugs of pages whose owner hides them from search engines
    shown: bool  # whether the host serves any page search engines may list


@dataclass(frozen=True)
class Deleted:
    id: uuid.UUID


class PageService:
    def __init__(self, *, db: Database, bus: EventBus, links: LinkBuilder, clock: Clock) -> None:
        self._db = db
        self._bus = bus
        self._links = links
        self._clock = clock

    # Reads -------------------------------------------------------------------------------

    async def list_pages(self, owner_id: uuid.UUID) -> list[PageView]:
        async with self._db.session() as session:
            owner = await session.get(User, owner_id)
            if owner is None:
                return []
            statement = (
                select(SchedulingPage)
                .where(SchedulingPage.owner_id == owner_id)
                .order_by(col(SchedulingPage.created_at), col(SchedulingPage.slug))
            )
            pages = (await session.exec(statement)).all()
            return await self._views(session, owner, pages)

    async def get_page(self, owner_id: uuid.UUID, page_id: uuid.UUID) -> PageView | NotFound:
        async with self._db.session() as session:
            page = await session.get(SchedulingPage, page_id)
            owner = await session.get(User, owner_id)
            if page is None or owner is None or page.owner_id != owner_id:
                return NotFound(message="scheduling page not found")
            return (await self._views(session, owner, [page]))[0]

    async def public_page(self, slug: str, host: str | None) -> PageView | None:
        """The enabled page a visitor on ``host`` may see, or None."""
        async with self._db.plain() as plain:
            found = await self.public_page_in(plain, slug, host)
            if found is None:
                return None
            page, owner = found
            return self.view(page, owner, online=await self.owner_online(plain, owner.id))

    async def public_page_in(self, rows: Rows, slug: str, host: str | None) -> tuple[SchedulingPage, User] | None:
        """The enabled page a visitor on ``host`` may see, with its owner, read in one statement."""
        found = await rows.rows(_PAGE_WITH_OWNER, {"slug": slug.strip().lower()})
        return self.visible(page_and_owner(found[0]), host) if found else None

    def visible(self, found: tuple[SchedulingPage, User], host: str | None) -> tuple[SchedulingPage, User] | None:
        """``found`` if a visitor on ``host`` may see it: the page is enabled and served there."""
        page, owner = found
        return found if page.enabled and self._links.serves(page, owner, host) else None

    async def host_pages(self, host: str) -> HostPages | None:
        """The enabled pages served on ``host``; None when it is neither the app's host nor connected.

        The app's host serves every page; a connected domain serves the pages whose link is on it.
        """
        host = host.lower().rstrip(".")
        pages = (
            select(SchedulingPage, User)
            .join(User, col(SchedulingPage.owner_id) == col(User.id))
            .where(col(SchedulingPage.enabled).is_(True))
            .order_by(col(SchedulingPage.slug))
        )
        async with self._db.session() as session:
            if host == self._links.app_host:
                hides = col(User.hide_from_search_engines)
                hidden = select(SchedulingPage.slug).join(User, col(SchedulingPage.owner_id) == col(User.id))
                hidden = hidden.where(col(SchedulingPage.enabled).is_(True), hides.is_(True))
                shown = pages.where(hides.is_(False)).limit(1)
                return HostPages(
                    hidden=list((await session.exec(hidden.order_by(col(SchedulingPage.slug)))).all()),
                    shown=(await session.exec(shown)).first() is not None,
                )
            if (await session.exec(select(Domain.id).where(Domain.host == host))).first() is None:
                return None
            # A page is on the domain by its own domain, or by its owner's link base.
            candidates = pages.where(or_(col(SchedulingPage.domain) == host, col(User.meetings_link_base).is_not(None)))
            served = [row for row in (await session.exec(candidates)).all() if self._links.page_host(*row) == host]
            return HostPages(
                hidden=[page.slug for page, owner in served if owner.hide_from_search_engines],
                shown=any(not owner.hide_from_search_engines for _, owner in served),
            )

    async def default_page(self, owner: User) -> PageView | None:
        if owner.default_page_id is None:
            return None
        result = await self.get_page(owner.id, owner.default_page_id)
        return None if isinstance(result, NotFound) else result

    # Writes ------------------------------------------------------------------------------

    async def create(self, owner_id: uuid.UUID, draft: PageDraft) -> PageResult:
        try:
            async with self._db.transaction() as session:
                owner = await session.get(User, owner_id)
                if owner is None:
                    raise Refused(NotFound(message="user not found"))
                now = self._clock()
                page = SchedulingPage(
                    owner_id=owner.id, slug="", name="", timezone=owner.timezone, created_at=now, updated_at=now
                )
                page.weekly_hours = list(page_rules.DEFAULT_WEEKLY_HOURS)
                await self._apply(session, page, draft)
                await _save(session, page)
                if owner.default_page_id is None:
                    owner.default_page_id = page.id
                    session.add(owner)
                view = (await self._views(session, owner, [page]))[0]
        except Refused as refused:
            return cast(PageResult, refused.result)
        await self._bus.publish(AvailabilityChanged(owner_id=owner.id, reason="page", page_ids=(page.id,)))
        return view

    async def update(self, owner_id: uuid.UUID, page_id: uuid.UUID, draft: PageDraft) -> PageResult:
        try:
            async with self._db.transaction() as session:
                page, owner = await self._owned(session, owner_id, page_id)
                await self._apply(session, page, draft)
                page.updated_at = self._clock()
                await _save(session, page)
                view = (await self._views(session, owner, [page]))[0]
        except Refused as refused:
            return cast(PageResult, refused.result)
        await self._bus.publish(AvailabilityChanged(owner_id=owner.id, reason="page", page_ids=(page.id,)))
        return view

    async def delete(self, owner_id: uuid.UUID, page_id: uuid.UUID) -> Deleted | NotFound:
        try:
            async with self._db.transaction() as session:
                page, owner = await self._owned(session, owner_id, page_id)
                await session.delete(page)
                await session.flush()
                if owner.default_page_id == page_id:
                    # Keep a default while the owner has pages: the oldest remaining one.
                    remaining = await session.exec(
                        select(SchedulingPage.id)
                        .where(SchedulingPage.owner_id == owner_id)
                        .order_by(col(SchedulingPage.created_at))
                    )
                    owner.default_page_id = remaining.first()
                    session.add(owner)
        except Refused as refused:
            return NotFound(message=refused.result.message)
        await self._bus.publish(AvailabilityChanged(owner_id=owner_id, reason="page", page_ids=(page_id,)))
        return Deleted(id=page_id)

    async def set_all_enabled(self, owner_id: uuid.UUID, enabled: bool) -> list[PageView]:
        """Disable or enable every page of the owner at once, deleting nothing."""
        async with self._db.transaction() as session:
            owner = await session.get(User, owner_id)
            if owner is None:
                return []
            pages = (await session.exec(select(SchedulingPage).where(SchedulingPage.owner_id == owner_id))).all()
            now = self._clock()
            for page in pages:
                if page.enabled != enabled:
                    page.enabled = enabled
                    page.updated_at = now
                    session.add(page)
        await self._bus.publish(AvailabilityChanged(owner_id=owner_id, reason="pages_enabled"))
        return await self.list_pages(owner_id)

    # Helpers -----------------------------------------------------------------------------

    @staticmethod
    async def _owned(session: AsyncSession, owner_id: uuid.UUID, page_id: uuid.UUID) -> tuple[SchedulingPage, User]:
        """The page and its owner; another owner's page is simply not found."""
        page = await session.get(SchedulingPage, page_id)
        owner = await session.get(User, owner_id)
        if page is None or owner is None or page.owner_id != owner_id:
            raise Refused(NotFound(message="scheduling page not found"))
        return page, owner

    async def _apply(self, session: AsyncSession, page: SchedulingPage, draft: PageDraft) -> None:
        """Validate the draft onto the page; raises ``Refused`` (the transaction rolls back)."""
        slug = validation.slug("slug", draft.slug)
        if slug != page.slug:
            taken = (await session.exec(select(SchedulingPage.id).where(SchedulingPage.slug == slug))).first()
            if taken is not None:
                raise Refused(_slug_taken(slug))
        page.slug = slug
        page.name = validation.text("name", draft.name, max_length=200)
        page.durations = page_rules.durations(draft.durations)
        if draft.start_increment is not None:
            page.start_increment = validation.integer("startIncrement", draft.start_increment, low=5, high=720)
        if draft.buffer_minutes is not None:
            page.buffer_minutes = validation.integer("bufferMinutes", draft.buffer_minutes, low=0, high=720)
        if draft.minimum_notice_minutes is not None:
            page.minimum_notice_minutes = validation.integer(
                "minimumNoticeMinutes", draft.minimum_notice_minutes, low=0, high=525_600
            )
        if draft.booking_horizon_days is not None:
            page.booking_horizon_days = validation.integer(
                "bookingHorizonDays", draft.booking_horizon_days, low=1, high=MAX_HORIZON_DAYS
            )
        if draft.timezone is not None:
            page.timezone = validation.timezone("timezone", draft.timezone)
        if draft.weekly_hours is not None:
            page.weekly_hours = page_rules.weekly_hours(draft.weekly_hours)
        if draft.date_overrides is not None:
            page.date_overrides = page_rules.date_overrides(draft.date_overrides)
        if draft.form_fields is not None:
            page.form_fields = page_rules.form_fields(draft.form_fields)
        if draft.redirect_url is not None:
            redirect = draft.redirect_url.strip()
            page.redirect_url = validation.web_url("redirectUrl", redirect) if redirect else None
        if draft.domain is not None:
            page.domain = await self._links.normalise_page_domain(session, draft.domain)
        if draft.clear_fixed_range:
            page.fixed_range_start = page.fixed_range_end = None
        elif draft.fixed_range_start is not None or draft.fixed_range_end is not None:
            page.fixed_range_start, page.fixed_range_end = page_rules.fixed_range(
                draft.fixed_range_start, draft.fixed_range_end, latest=self._clock().date() + MAX_HORIZON
            )
        if draft.enabled is not None:
            page.enabled = draft.enabled

    async def _views(self, session: AsyncSession, owner: User, pages: Sequence[SchedulingPage]) -> list[PageView]:
        online = await self.owner_online(SessionRows(session), owner.id)
        return [self.view(page, owner, online=online) for page in pages]

    def view(self, page: SchedulingPage, owner: User, *, online: bool) -> PageView:
        """The page as its owner's link and state show it; ``online`` as ``owner_online`` says."""
        return PageView(
            page=page,
            url=self._links.page_url(page, owner),
            status=PageStatus.ONLINE if online else PageStatus.OFFLINE,
            is_default=owner.default_page_id == page.id,
            owner=owner,
        )

    @staticmethod
    async def owner_online(rows: Rows, owner_id: uuid.UUID) -> bool:
        """Online when a connection that takes bookings has a calendar."""
        return bool(await rows.rows(_ONLINE, {"owner_id": owner_id}))


_ONLINE = Plain(
    select(col(Calendar.id))
    .join(CalendarConnection, col(Calendar.connection_id) == col(CalendarConnection.id))
    .where(col(CalendarConnection.user_id) == bindparam("owner_id"))
    .where(col(CalendarConnection.scheduling_pages).is_(True))
    .limit(1)
)
# Built once: a page is looked up on every booking and slots query. Its columns, then its owner's
# (a booking reads its owner's calendars in the same statement: ``booking/book.py``).
PAGE_AND_OWNER_COLUMNS = (
    *SchedulingPage.metadata.tables["scheduling_pages"].columns,
    *User.metadata.tables["users"].columns,
)
PAGE_WITH_OWNER = (
    select(*PAGE_AND_OWNER_COLUMNS)
    .join_from(SchedulingPage, User, col(SchedulingPage.owner_id) == col(User.id))
    .where(col(SchedulingPage.slug) == bindparam("slug"))
)
_PAGE_WITH_OWNER = Plain(PAGE_WITH_OWNER)


def page_and_owner(row: Sequence[Any]) -> tuple[SchedulingPage, User]:
    """The page and its owner of a row starting with ``PAGE_AND_OWNER_COLUMNS``, as read."""
    split, end = len(_PAGE_NAMES), len(PAGE_AND_OWNER_COLUMNS)
    return as_read(SchedulingPage, _PAGE_NAMES, row[:split]), as_read(User, _OWNER_NAMES, row[split:end])


_PAGE_NAMES = [column.name for column in SchedulingPage.metadata.tables["scheduling_pages"].columns]
_OWNER_NAMES = [column.name for column in User.metadata.tables["users"].columns]


async def _save(session: AsyncSession, page: SchedulingPage) -> None:
    """Flush the page; a slug taken by a concurrent writer surfaces here."""
    session.add(page)
    try:
        await session.flush()
    except IntegrityError:
        raise Refused(_slug_taken(page.slug)) from None


def _slug_taken(slug: str) -> SlugTaken:
    return SlugTaken(message=f"the slug {slug!r} is already used by a page on some domain", slug=slug)
