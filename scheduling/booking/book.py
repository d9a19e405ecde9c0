"""Booking a slot so that overlaps are impossible.

The slot is checked against everything first; then, in one write transaction, other bookings
are checked again and the booking inserted: on SQLite that transaction holds the write lock
from BEGIN (IMMEDIATE); on PostgreSQL the owner's row is locked, and an exclusion constraint
refuses overlapping bookings whatever the application checked.

A booking is admitted once (``admit``: the limits count there), then stored (``book``). A
connection lost on the way (a database restart) may run ``book`` once more from its checks, as
long as its transaction had not begun to commit (the resolver runs it so): nothing of the first
run was stored, and its emails and calendar write are outbox rows of that same transaction. A
loss while committing is answered as ``ServiceUnavailable``; the visitor's retry with the same
idempotency key then answers the booking if it was stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import and_, bindparam, insert, join, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.values import BookingStatus, CalendarWrite, PageStatus
from db.columns import UTCDateTime
from db.engine import Database
from db.models import Booking, Calendar, CalendarConnection, SchedulingPage, User
from db.plain import Plain, Rows, as_read, new_row
from scheduling import outbox
from scheduling.booking.rules import BookingDraft, CheckedBooking, check
from scheduling.calendars.busy_check import (
    COUNTS_FOR_BOOKING,
    OWNER_CALENDAR_COLUMNS,
    BusyCheck,
    OwnerCalendars,
    Verdict,
    calendars_from_rows,
    owner_calendars,
)
from scheduling.calendars.status import InactiveNotices
from scheduling.clock import Clock
from scheduling.crm.contacts import record_booker
from scheduling.engine import Interval, nearest_free
from scheduling.errors import (
    CalendarInactive,
    CalendarUnreachable,
    InvalidInput,
    PageNotFound,
    RateLimited,
    Refused,
    SlotUnavailable,
    ValidationFailed,
)
from scheduling.events import AvailabilityChanged, BookingCreated, EventBus
from scheduling.limits import AbuseLimits
from scheduling.pages.availability import AvailabilityService, blocks_time
from scheduling.pages.service import PAGE_AND_OWNER_COLUMNS, PAGE_WITH_OWNER, PageService, PageView, page_and_owner

ALTERNATIVES_SPAN = timedelta(days=3)


@dataclass(frozen=True)
class BookingView:
    """A stored booking or request with the page it was made on."""

    booking: Booking
    page: SchedulingPage


BookResult = (
    BookingView | SlotUnavailable | CalendarInactive | CalendarUnreachable | PageNotFound | InvalidInput | RateLimited
)
# The emails that go to the invitee: those the public API causes are capped per address and day.
INVITEE_EMAILS = frozenset(
    {
        outbox.EMAIL_BOOKING_CONFIRMED,
        outbox.EMAIL_BOOKING_RESCHEDULED,
        outbox.EMAIL_BOOKING_CANCELLED,
        outbox.EMAIL_REQUEST_RECEIVED,
        outbox.EMAIL_REQUEST_MOVED,
        outbox.EMAIL_REQUEST_DECLINED,
    }
)


@dataclass(frozen=True, kw_only=True)
class BookingDeps:
    """What booking and its lifecycle both work with: storage, events, pages, availability, time,
    the outbox to wake, the calendars' booking-time check, the owner's inactive-calendar notices
    and the public API's limits."""

    db: Database
    bus: EventBus
    pages: PageService
    availability: AvailabilityService
    clock: Clock
    wake_outbox: Callable[[], None]
    busy_check: BusyCheck
    inactive_notices: InactiveNotices
    limits: AbuseLimits


class BookingChecks:
    """The checks a new time passes, for a booking, a move or an accepted request alike."""

    def __init__(self, deps: BookingDeps) -> None:
        self._db = deps.db
        self._bus = deps.bus
        self._pages = deps.pages
        self._availability = deps.availability
        self._clock = deps.clock
        self._wake_outbox = deps.wake_outbox
        self._busy_check = deps.busy_check
        self._inactive_notices = deps.inactive_notices
        self._limits = deps.limits

    async def _mail_capped(self, kinds: list[str], address: str) -> list[str]:
        """``kinds`` without the invitee's emails once ``address`` has had its share today
        through the public API: the change stands, the address is not mailed again."""
        if any(kind in INVITEE_EMAILS for kind in kinds) and not await self._limits.may_mail(address):
            return [kind for kind in kinds if kind not in INVITEE_EMAILS]
        return kinds

    async def _ask_providers(
        self,
        page: SchedulingPage,
        start: datetime,
        end: datetime,
        *,
        calendars: OwnerCalendars,
        moving: Booking | None = None,
    ) -> Verdict:
        """The owner's calendars asked about this interval (with the page's buffers) right now.

        ``moving``: a booking being moved, whose own calendar event (once written) is not in its way.
        """
        buffer = timedelta(minutes=page.buffer_minutes)
        now_at = Interval(moving.start_at, moving.end_at) if moving is not None and event_in_place(moving) else None
        return await self._busy_check.verdict(
            page.owner_id, start - buffer, end + buffer, moving=now_at, calendars=calendars
        )

    async def _calendars_say(
        self,
        page: SchedulingPage,
        start: datetime,
        end: datetime,
        *,
        moving: Booking | None = None,
        request: bool = False,
        calendars: OwnerCalendars | None = None,
    ) -> Verdict | CalendarInactive | CalendarUnreachable:
        """The owner's calendars on a new time, as booking, moving and accepting all need it: an
        inactive calendar refuses (the owner hears of it once), the providers' answer decides.
        A ``request`` puts nothing on a calendar, so the providers are not asked.

        ``calendars``: as read with the page moments ago (None: read once here, for both checks).
        """
        if calendars is None:
            async with self._db.plain() as plain:
                calendars = await owner_calendars(plain, page.owner_id)
        if await self._has_inactive_calendar(calendars):
            return await self._refused_while_inactive(page.owner_id)
        if request:
            return Verdict.FREE
        verdict = await self._ask_providers(page, start, end, calendars=calendars, moving=moving)
        if verdict is Verdict.INACTIVE:
            return await self._refused_while_inactive(page.owner_id)
        if verdict is Verdict.UNKNOWN:
            return _UNREACHABLE
        return verdict

    async def _refused_while_inactive(self, owner_id: uuid.UUID) -> CalendarInactive:
        """Nobody books while a calendar is inactive; the owner hears of it once per incident."""
        await self._inactive_notices.someone_tried_to_book(owner_id)
        return _INACTIVE

    async def _has_inactive_calendar(self, calendars: OwnerCalendars) -> bool:
        """One inactive integrated calendar stops all booking with the owner (as last read: the
        calendars are read once per booking, not once per check)."""
        return calendars.inactive

    async def with_alternatives(
        self,
        page: SchedulingPage,
        start: datetime,
        duration: int,
        *,
        timezone: str,
        ignore_booking: Booking | None = None,
    ) -> SlotUnavailable:
        """The refusal, with up to three free (and known) slots nearest to the wanted time, to be
        shown in ``timezone`` (the invitee's)."""
        async with self._db.plain() as plain:
            free = await self._availability.free_slots(
                plain,
                page,
                duration=duration,
                start=start - ALTERNATIVES_SPAN,
                end=start + ALTERNATIVES_SPAN,
                now=self._clock(),
                ignore_booking=ignore_booking.id if ignore_booking is not None else None,
                own_event=ignore_booking is not None and event_in_place(ignore_booking),
            )
        nearest = nearest_free([slot for slot in free.slots if slot.start != start], start, limit=3)
        return SlotUnavailable(
            message="that time is no longer available; here are the nearest free times",
            alternatives=tuple((slot.start, slot.end) for slot in nearest),
            timezone=timezone,
        )


@dataclass(frozen=True)
class BookingPage:
    """The page a visitor books on, as they may see it, with its owner's calendars read in the
    same connection: the online state, the inactive-calendar check and the live check all use them."""

    view: PageView
    calendars: OwnerCalendars


@dataclass(frozen=True)
class AdmittedBooking:
    """A booking that passed the limits and the rules, on its page; ``mail`` keeps the emails
    it sends once the invitee's cap was asked."""

    page: SchedulingPage
    calendars: OwnerCalendars
    checked: CheckedBooking
    mail: MailCap


class BookingService(BookingChecks):
    async def page_of(self, draft: BookingDraft) -> BookingPage | None:
        """The page the visitor books on, as they may see it, and its owner's calendars: one
        statement, a row per calendar."""
        async with self._db.plain() as plain:
            rows = await plain.rows(_PAGE_AND_CALENDARS, {"slug": draft.slug.strip().lower()})
        found = self._pages.visible(page_and_owner(rows[0]), draft.domain) if rows else None
        if found is None:
            return None
        page, owner = found
        calendars = calendars_from_rows(owner.id, [row[len(PAGE_AND_OWNER_COLUMNS) :] for row in rows])
        return BookingPage(view=self._pages.view(page, owner, online=calendars.online), calendars=calendars)

    async def admit(
        self, found: BookingPage | None, draft: BookingDraft, *, request_only: bool = False, client: str
    ) -> AdmittedBooking | BookResult:
        """The booking on the page ``found`` (None: not found), once it passes the limits and the
        rules; an offline page (or ``request_only``) makes it a request.

        ``client``: the caller's address; the page's limits and the address's limit on that page
        apply (``RateLimited``, nothing stored). They count here, once: only ``book`` may run again.
        """
        if found is None:
            return PageNotFound(message="scheduling page not found")
        view = found.view
        page = view.page
        limited = await self._limits.page_call(page.id) or await self._limits.new_booking(client, page.id)
        if limited is not None:
            return limited
        try:
            checked = check(draft, page, asked_request=request_only, offline=view.status is PageStatus.OFFLINE)
        except ValidationFailed as failure:
            return failure.as_result()
        return AdmittedBooking(page=page, calendars=found.calendars, checked=checked, mail=MailCap())

    async def book(self, admitted: AdmittedBooking) -> BookResult:
        """Book the admitted slot (or store the request): up to its commit it changes nothing
        outside the database, so a run lost before the commit can run again, and the invitee's
        emails are counted against their cap once, however often it runs.

        Its reads share one connection before the providers are asked (none is held while they
        answer); the calendars come with the page. The decisions keep their order: an earlier
        result, the calendars, then the slot against rules, busy time and bookings.
        """
        page, checked, mail = admitted.page, admitted.checked, admitted.mail
        async with self._db.plain() as plain:
            if checked.idempotency_key is not None:
                earlier = await _earlier_result(plain, page, checked)
                if earlier is not None:
                    return earlier
            free = await self._is_free(plain, page, checked, self._clock(), calendars=admitted.calendars)
        said = await self._calendars_say(
            page, checked.start, checked.end, request=checked.request_only, calendars=admitted.calendars
        )
        if not isinstance(said, Verdict):
            return said
        if said is not Verdict.FREE:
            return await self._with_alternatives(page, checked)
        if not free:
            return await self._taken(page, checked)
        try:
            booking = await self._insert(page, checked, mail)
        except AlreadyBooked as existing:
            return BookingView(booking=existing.booking, page=page)
        except Refused as refused:
            if isinstance(refused.result, SlotUnavailable):
                return await self._taken(page, checked)
            return cast(BookResult, refused.result)
        except IntegrityError:
            # A concurrent request with the same idempotency key won: answer with its result.
            earlier = await self._by_idempotency_key(page, checked) if checked.idempotency_key else None
            return earlier if earlier is not None else await self._with_alternatives(page, checked)
        await self._announce(booking)
        return BookingView(booking=booking, page=page)

    async def _insert(self, page: SchedulingPage, checked: CheckedBooking, mail: MailCap) -> Booking:
        """Lock the owner only to re-check bookings and insert; the slot was checked against
        everything just before (``book``).

        Calendar busy time is not written by bookings, so the full check (busy rows, rules, the
        engine) runs before the lock; under it only other bookings can have changed, and one
        indexed query looks for them. The lock is held for a few statements, not a computation.
        """
        now = self._clock()
        async with self._db.plain_transaction() as plain:
            await lock_owner(plain, page.owner_id)
            if checked.idempotency_key is not None:
                # Again under the lock: a concurrent retry may have committed since the first look.
                earlier = await _by_key(plain, page, checked.idempotency_key)
                if earlier is not None:
                    if earlier.request_fingerprint != checked.fingerprint():
                        raise Refused(_KEY_REUSED)
                    raise AlreadyBooked(earlier)
            buffer = timedelta(minutes=page.buffer_minutes)
            since = self._availability.requests_since(now)
            start, end = checked.start - buffer, checked.end + buffer
            if await _time_held(plain, page.owner_id, start, end, requests_since=since, now=now):
                raise Refused(SlotUnavailable(message="that time is no longer available"))
            confirmed = not checked.request_only
            booking = new_row(
                Booking,
                owner_id=page.owner_id,
                page_id=page.id,
                start_at=checked.start,
                end_at=checked.end,
                status=BookingStatus.CONFIRMED if confirmed else BookingStatus.REQUESTED,
                source=checked.source,
                invitee_name=checked.invitee_name,
                invitee_email=checked.invitee_email,
                invitee_timezone=checked.timezone,
                answers=checked.answers,
                idempotency_key=checked.idempotency_key,
                request_fingerprint=checked.fingerprint(),
                calendar_write=CalendarWrite.PENDING if confirmed else CalendarWrite.NONE,
                created_at=now,
            )
            booking.contact_id = await upsert_contact(plain, page.owner_id, checked, now)
            await _store(plain, booking)
            if mail.kinds is None:
                kinds = list(outbox.kinds_for_new_booking(confirmed=confirmed))
                mail.kinds = await self._mail_capped(kinds, booking.invitee_email)
            await outbox.add_rows(plain, mail.kinds, {"booking_id": booking.id.hex}, available_at=now)
        return booking

    async def _is_free(
        self,
        rows: Rows,
        page: SchedulingPage,
        checked: CheckedBooking,
        now: datetime,
        *,
        calendars: OwnerCalendars,
    ) -> bool:
        """Whether the slot is free in the cache and the bookings; the calendars' cache state is
        the one read with the page (``page_of``), not read again."""
        free = await self._availability.free_slots(
            rows,
            page,
            duration=checked.duration,
            start=checked.start,
            end=checked.start + timedelta(minutes=1),
            now=now,
            # A booking's calendars were just asked about this time; a request's were not.
            known_only=checked.request_only,
            calendars=calendars.integrated,
        )
        return any(slot.start == checked.start for slot in free.slots)

    async def _announce(self, booking: Booking) -> None:
        """After commit: live slot watchers and the owner's subscriptions, then the outbox."""
        await self._bus.publish(AvailabilityChanged(owner_id=booking.owner_id, reason="booking", page_ids=()))
        await self._bus.publish(BookingCreated(owner_id=booking.owner_id, booking_id=booking.id))
        self._wake_outbox()

    async def _by_idempotency_key(
        self, page: SchedulingPage, checked: CheckedBooking
    ) -> BookingView | InvalidInput | None:
        """The same key returns the first result; another request under it is refused."""
        async with self._db.plain() as plain:
            return await _earlier_result(plain, page, checked)

    async def _taken(self, page: SchedulingPage, checked: CheckedBooking) -> BookResult:
        """The slot is taken, perhaps by a concurrent retry of this very request: then that is the answer."""
        earlier = await self._by_idempotency_key(page, checked) if checked.idempotency_key else None
        return earlier if earlier is not None else await self._with_alternatives(page, checked)

    async def _with_alternatives(self, page: SchedulingPage, checked: CheckedBooking) -> SlotUnavailable:
        return await self.with_alternatives(page, checked.start, checked.duration, timezone=checked.timezone)


@dataclass
class MailCap:
    """The emails a new booking sends once the invitee's cap was asked: asked once per booking,
    so running the booking again after a lost connection does not count them twice."""

    kinds: list[str] | None = None


class AlreadyBooked(Exception):
    """The idempotency key's booking exists (committed by a concurrent retry): answer with it."""

    def __init__(self, booking: Booking) -> None:
        super().__init__(str(booking.id))
        self.booking = booking


_INACTIVE = CalendarInactive(
    message="this calendar cannot take bookings right now; the owner has been asked to reconnect it"
)
_UNREACHABLE = CalendarUnreachable(
    message="the owner's calendar could not be checked just now; nothing was booked, please try again in a minute"
)
_KEY_REUSED = InvalidInput(message="this idempotencyKey was used for a different request", field="idempotencyKey")


async def _by_key(rows: Rows, page: SchedulingPage, key: str) -> Booking | None:
    found = await rows.rows(_BY_KEY, {"page_id": page.id, "key": key})
    return as_read(Booking, _BOOKINGS.columns.keys(), found[0]) if found else None


async def _earlier_result(
    rows: Rows, page: SchedulingPage, checked: CheckedBooking
) -> BookingView | InvalidInput | None:
    """The result stored under the request's idempotency key; another request under it is refused."""
    earlier = await _by_key(rows, page, checked.idempotency_key) if checked.idempotency_key else None
    if earlier is None:
        return None
    if earlier.request_fingerprint != checked.fingerprint():
        return _KEY_REUSED
    return BookingView(booking=earlier, page=page)


async def _store(rows: Rows, booking: Booking) -> None:
    """INSERT the new booking as one plain statement (no unit of work to flush); the object
    stays as it was built, with every value it was stored with, to be answered."""
    await rows.run(_INSERT_BOOKING, {column.name: getattr(booking, column.name) for column in _BOOKINGS.columns})


# The page, its owner and the owner's calendars that count for booking: a row per calendar (one
# with no calendar when there is none).
_PAGE_AND_CALENDARS = Plain(
    PAGE_WITH_OWNER.add_columns(*OWNER_CALENDAR_COLUMNS).outerjoin(
        join(CalendarConnection, Calendar, col(Calendar.connection_id) == col(CalendarConnection.id)),
        and_(col(CalendarConnection.user_id) == col(User.id), COUNTS_FOR_BOOKING),
    )
)
_BOOKINGS = Booking.metadata.tables["bookings"]
_INSERT_BOOKING = Plain(insert(_BOOKINGS), columns=_BOOKINGS.columns.keys())
_BY_KEY = Plain(
    select(*_BOOKINGS.columns).where(
        _BOOKINGS.c.page_id == bindparam("page_id"), _BOOKINGS.c.idempotency_key == bindparam("key")
    )
)


# Built once: the bookings that may hold a new booking's time (confirmed ones and requests).
_HOLDING = Plain(
    select(col(Booking.status), col(Booking.created_at)).where(
        col(Booking.owner_id) == bindparam("owner_id"),
        or_(col(Booking.status) == BookingStatus.CONFIRMED, col(Booking.status) == BookingStatus.REQUESTED),
        col(Booking.start_at) < bindparam("end"),
        col(Booking.end_at) > bindparam("start"),
    )
)


async def _time_held(
    rows: Rows,
    owner_id: uuid.UUID,
    start: datetime,
    end: datetime,
    *,
    requests_since: datetime,
    now: datetime,
) -> bool:
    """``bookings_overlap`` and ``retire_expired_requests`` for a new booking in one read: whether
    a confirmed booking or an unexpired request holds [start, end); when only expired requests
    overlap it, they are retired (the UPDATE runs only then)."""
    found = await rows.rows(_HOLDING, {"owner_id": owner_id, "start": start, "end": end})
    if any(status == BookingStatus.CONFIRMED or created_at > requests_since for status, created_at in found):
        return True
    if found:
        await retire_expired_requests(rows, owner_id, start, end, requests_since=requests_since, now=now)
    return False


def event_in_place(booking: Booking) -> bool:
    """The booking's calendar event exists and sits at the booking's time (no move is pending),
    so its interval in the calendars' busy time is the booking itself."""
    return booking.calendar_event_id is not None and booking.calendar_write == CalendarWrite.DONE


async def lock_owner(rows: Rows, owner_id: uuid.UUID) -> None:
    """Serialise one owner's bookings (buffers too) on PostgreSQL; SQLite's BEGIN IMMEDIATE already
    does (its dialect drops FOR UPDATE), so no statement is sent there."""
    if rows.dialect.name == "sqlite":
        return
    await rows.run(_LOCK_OWNER, {"owner_id": owner_id})


_LOCK_OWNER = Plain(select(col(User.id)).where(col(User.id) == bindparam("owner_id")).with_for_update())


async def bookings_overlap(
    session: AsyncSession,
    owner_id: uuid.UUID,
    start: datetime,
    end: datetime,
    *,
    requests_since: datetime,
    other_than: uuid.UUID | None = None,
) -> bool:
    """Whether a confirmed booking or a request made since ``requests_since`` (an unexpired one)
    of the owner (but ``other_than``) overlaps [start, end)."""
    statement = select(Booking.id).where(
        Booking.owner_id == owner_id,
        blocks_time(requests_since),
        col(Booking.start_at) < end.astimezone(UTC),
        col(Booking.end_at) > start.astimezone(UTC),
    )
    if other_than is not None:
        statement = statement.where(Booking.id != other_than)
    return (await session.exec(statement.limit(1))).first() is not None


async def retire_expired_requests(
    rows: Rows,
    owner_id: uuid.UUID,
    start: datetime,
    end: datetime,
    *,
    requests_since: datetime,
    now: datetime,
    other_than: uuid.UUID | None = None,
) -> None:
    """Expired requests overlapping [start, end) end as declined (nobody is mailed): they hold no
    time, and PostgreSQL's exclusion constraint must not count them either."""
    window = {"owner": owner_id, "window_start": start, "window_end": end, "since": requests_since, "now": now}
    if other_than is None:
        await rows.run(_RETIRE, window)
    else:
        await rows.run(_RETIRE_OTHERS, {**window, "other_than": other_than})


# Expired requests overlapping a window, declined (all of them, or all but one booking's). An
# UPDATE keeps its columns' names for the values it sets, so the conditions' parameters are named apart.
_EXPIRED = (
    col(Booking.owner_id) == bindparam("owner"),
    col(Booking.status) == BookingStatus.REQUESTED,
    col(Booking.created_at) <= bindparam("since", type_=UTCDateTime),
    col(Booking.start_at) < bindparam("window_end", type_=UTCDateTime),
    col(Booking.end_at) > bindparam("window_start", type_=UTCDateTime),
)
_DECLINE = {"status": BookingStatus.DECLINED, "cancelled_at": bindparam("now", type_=UTCDateTime)}
_RETIRE = Plain(update(Booking).where(*_EXPIRED).values(_DECLINE))
_RETIRE_OTHERS = Plain(update(Booking).where(*_EXPIRED, col(Booking.id) != bindparam("other_than")).values(_DECLINE))


async def upsert_contact(rows: Rows, owner_id: uuid.UUID, checked: CheckedBooking, now: datetime) -> uuid.UUID:
    """The person who booked or asked becomes a contact of the owner, or fills in what an
    existing one lacks: what the owner recorded is kept (``crm.contacts.record_booker``)."""
    return await record_booker(
        rows, owner_id, email=checked.invitee_email, name=checked.invitee_name, answers=checked.answers, now=now
    )
