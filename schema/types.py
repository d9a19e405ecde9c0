"""Output types. Each maps a domain value with ``from_domain``; resolvers never see these."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from common.values import BookingStatus, CalendarProvider, CalendarStatus, FormFieldKind, PageStatus, Seat, Weekday
from db.models import ApiToken as ApiTokenRow
from db.models import Calendar as CalendarRow
from db.models import Domain as DomainRow
from db.models import User as UserRow
from resolvers import crm as crm_resolvers
from resolvers import pages as page_resolvers
from resolvers import slots as slot_resolvers
from resolvers import users as user_resolvers
from resolvers.context import RequestContext
from scheduling.calendars.directory import ConnectionView
from scheduling.events import CalendarStatusChanged
from scheduling.live.feeds import SlotWindow
from scheduling.pages.service import PageView
from schema import enums as _enums  # noqa: F401  (registers the enums)
from schema.booking_types import BookingType
from schema.crm_types import CalendarImportType, ContactType, TaskType
from schema.errors import NotFoundError
from schema.scalars import DateTime
from schema.slot_types import SlotList

Ctx = Info[RequestContext, None]


@strawberry.type(name="TimeRange")
class TimeRangeType:
    start: str
    end: str


@strawberry.type(name="WeeklyHours")
class WeeklyHoursType:
    weekday: Weekday
    start: str
    end: str


@strawberry.type(name="DateOverride")
class DateOverrideType:
    date: dt.date
    intervals: list[TimeRangeType]


@strawberry.type(name="FormField")
class FormFieldType:
    key: str
    label: str
    kind: FormFieldKind
    required: bool


def _weekly(rows: list[dict[str, Any]]) -> list[WeeklyHoursType]:
    return [WeeklyHoursType(weekday=Weekday(row["weekday"]), start=row["start"], end=row["end"]) for row in rows]


def _overrides(rows: list[dict[str, Any]]) -> list[DateOverrideType]:
    return [
        DateOverrideType(
            date=dt.date.fromisoformat(row["date"]),
            intervals=[TimeRangeType(start=span["start"], end=span["end"]) for span in row["intervals"]],
        )
        for row in rows
    ]


def _fields(rows: list[dict[str, Any]]) -> list[FormFieldType]:
    return [
        FormFieldType(key=row["key"], label=row["label"], kind=FormFieldKind(row["kind"]), required=row["required"])
        for row in rows
    ]


@strawberry.type(name="ChatLink", description="The chat widget's link to a page, and its embed snippet.")
class ChatLinkType:
    url: str
    snippet: str


@strawberry.type(name="Answer")
class AnswerType:
    key: str
    value: str


@strawberry.type(name="Prefill", description="What a returning visitor typed last time, for their form.")
class PrefillType:
    name: str
    email: str
    answers: list[AnswerType]


@strawberry.type(name="SchedulingPage")
class SchedulingPageType:
    id: strawberry.ID
    slug: str
    name: str
    url: str
    status: PageStatus
    enabled: bool
    is_default: bool
    domain: str | None
    timezone: str
    durations: list[int]
    start_increment: int
    buffer_minutes: int
    minimum_notice_minutes: int
    booking_horizon_days: int
    fixed_range_start: dt.date | None
    fixed_range_end: dt.date | None
    weekly_hours: list[WeeklyHoursType]
    date_overrides: list[DateOverrideType]
    form_fields: list[FormFieldType]
    redirect_url: str | None
    _view: strawberry.Private[PageView]

    @strawberry.field(description="The link and snippet for the chat widget; bookings through them have source CHAT.")
    def chat_link(self, info: Ctx) -> ChatLinkType:
        link = page_resolvers.chat_link(info.context, self._view)
        return ChatLinkType(url=link.url, snippet=link.snippet)

    @classmethod
    def from_domain(cls, view: PageView) -> SchedulingPageType:
        page = view.page
        return cls(
            id=strawberry.ID(str(page.id)),
            slug=page.slug,
            name=page.name,
            url=view.url,
            status=view.status,
            enabled=page.enabled,
            is_default=view.is_default,
            domain=page.domain,
            timezone=page.timezone,
            durations=list(page.durations),
            start_increment=page.start_increment,
            buffer_minutes=page.buffer_minutes,
            minimum_notice_minutes=page.minimum_notice_minutes,
            booking_horizon_days=page.booking_horizon_days,
            fixed_range_start=page.fixed_range_start,
            fixed_range_end=page.fixed_range_end,
            weekly_hours=_weekly(page.weekly_hours),
            date_overrides=_overrides(page.date_overrides),
            form_fields=_fields(page.form_fields),
            redirect_url=page.redirect_url,
            _view=view,
        )


@strawberry.type(description="What visitors see of a page.")
class PublicSchedulingPage:
    slug: str
    name: str
    url: str
    status: PageStatus
    durations: list[int]
    timezone: str
    form_fields: list[FormFieldType]
    redirect_url: str | None
    _view: strawberry.Private[PageView]

    @strawberry.field(description="A returning visitor's last answers, for the token their browser kept; else null.")
    async def prefill(self, info: Ctx, contact_token: str) -> PrefillType | None:
        found = await page_resolvers.prefill(info.context, self._view, contact_token)
        if found is None:
            return None
        answers = [AnswerType(key=key, value=str(value)) for key, value in found.answers.items()]
        return PrefillType(name=found.name, email=found.email, answers=answers)

    @classmethod
    def from_domain(cls, view: PageView) -> PublicSchedulingPage:
        page = view.page
        return cls(
            slug=page.slug,
            name=page.name,
            url=view.url,
            status=view.status,
            durations=list(page.durations),
            timezone=page.timezone,
            form_fields=_fields(page.form_fields),
            redirect_url=page.redirect_url,
            _view=view,
        )

    @strawberry.field(description="Free slots starting in [start, end), shown in the visitor's zone.")
    async def slots(
        self, info: Ctx, start: DateTime, end: DateTime, timezone: str, duration: int | None = None
    ) -> SlotList:
        window = SlotWindow(start=start, end=end, timezone=timezone, duration=duration)
        snapshot = await slot_resolvers.query_slots(info.context, self._view, window)
        return SlotList.from_domain(snapshot, timezone)


@strawberry.type(name="Calendar")
class CalendarType:
    id: strawberry.ID
    name: str
    is_primary: bool
    integrated: bool
    status: CalendarStatus
    inactive_reason: str | None
    access_role: str

    @classmethod
    def from_domain(cls, row: CalendarRow) -> CalendarType:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            is_primary=row.is_primary,
            integrated=row.integrated,
            status=CalendarStatus(row.status),
            inactive_reason=row.inactive_reason,
            access_role=row.access_role,
        )


@strawberry.type(description="A calendar's status changed; `calendar` is as it was then.")
class CalendarStatusEvent:
    calendar: CalendarType
    status: CalendarStatus
    reason: str | None

    @classmethod
    def from_domain(cls, event: CalendarStatusChanged) -> CalendarStatusEvent:
        status = CalendarStatus(event.status)
        calendar = CalendarType(
            id=strawberry.ID(str(event.calendar_id)),
            name=event.name,
            is_primary=event.is_primary,
            integrated=event.integrated,
            status=status,
            inactive_reason=event.reason,
            access_role=event.access_role,
        )
        return cls(calendar=calendar, status=status, reason=event.reason)


@strawberry.type(name="CalendarConnection")
class CalendarConnectionType:
    id: strawberry.ID
    provider: CalendarProvider
    account_email: str
    calendar_sync: bool
    scheduling_pages: bool
    calendars: list[CalendarType]

    @classmethod
    def from_domain(cls, view: ConnectionView) -> CalendarConnectionType:
        connection = view.connection
        return cls(
            id=strawberry.ID(str(connection.id)),
            provider=CalendarProvider(connection.provider),
            account_email=connection.account_email,
            calendar_sync=connection.calendar_sync,
            scheduling_pages=connection.scheduling_pages,
            calendars=[CalendarType.from_domain(row) for row in view.calendars],
        )


@strawberry.type(name="Domain")
class DomainType:
    host: str

    @classmethod
    def from_domain(cls, row: DomainRow) -> DomainType:
        return cls(host=row.host)


@strawberry.type(name="ApiToken", description="A bearer token of the owner; its secret is shown only once.")
class ApiTokenType:
    id: strawberry.ID
    name: str
    created_at: DateTime
    expires_at: DateTime | None
    last_used_at: DateTime | None

    @classmethod
    def from_row(cls, row: ApiTokenRow) -> ApiTokenType:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.label,
            created_at=DateTime(row.created_at),
            expires_at=None if row.expires_at is None else DateTime(row.expires_at),
            last_used_at=None if row.last_used_at is None else DateTime(row.last_used_at),
        )


@strawberry.type(name="CreatedApiToken")
class CreatedApiTokenType:
    api_token: ApiTokenType
    secret: str = strawberry.field(description="The bearer secret; shown once, never again.")


@strawberry.type(name="Deleted")
class DeletedType:
    id: strawberry.ID


DeleteResult = Annotated[DeletedType | NotFoundError, strawberry.union("DeleteResult")]


@strawberry.type(name="User")
class UserType:
    id: strawberry.ID
    email: str
    name: str
    timezone: str
    personal_email_access: bool
    hide_from_search_engines: bool
    meetings_link_base: str
    seat: Seat = strawberry.field(description="Your seat: task sync into your calendar needs a paid one.")
    _row: strawberry.Private[UserRow]

    @classmethod
    def from_domain(cls, row: UserRow, link_base: str) -> UserType:
        return cls(
            id=strawberry.ID(str(row.id)),
            email=row.email,
            name=row.name,
            timezone=row.timezone,
            personal_email_access=row.personal_email_access,
            hide_from_search_engines=row.hide_from_search_engines,
            meetings_link_base=row.meetings_link_base or link_base,
            seat=Seat(row.seat),
            _row=row,
        )

    @strawberry.field
    async def scheduling_pages(self, info: Ctx) -> list[SchedulingPageType]:
        views = await page_resolvers.owner_pages(info.context, self._row)
        return [SchedulingPageType.from_domain(view) for view in views]

    @strawberry.field(description="The default page, used in sales email templates.")
    async def default_scheduling_page(self, info: Ctx) -> SchedulingPageType | None:
        view = await page_resolvers.default_page(info.context, self._row)
        return None if view is None else SchedulingPageType.from_domain(view)

    @strawberry.field(description="The default page's link, for inserting into email templates.")
    async def default_meeting_link(self, info: Ctx) -> str | None:
        view = await page_resolvers.default_page(info.context, self._row)
        return None if view is None else view.url

    @strawberry.field
    async def connections(self, info: Ctx) -> list[CalendarConnectionType]:
        views = await user_resolvers.connections(info.context, self._row)
        return [CalendarConnectionType.from_domain(view) for view in views]

    @strawberry.field(description="The owner's unrevoked bearer tokens (never their secrets).")
    async def api_tokens(self, info: Ctx) -> list[ApiTokenType]:
        return [ApiTokenType.from_row(row) for row in await user_resolvers.api_tokens(info.context, self._row)]

    @strawberry.field
    async def bookings(self, info: Ctx, status: BookingStatus | None = None) -> list[BookingType]:
        rows = await user_resolvers.bookings(info.context, self._row, status)
        return [BookingType.from_row(row, info.context) for row in rows]

    @strawberry.field(
        description="Your contacts, by email. `search` keeps those whose email or name holds it, ignoring case."
    )
    async def contacts(self, info: Ctx, search: str | None = None) -> list[ContactType]:
        return [ContactType.from_row(row) for row in await crm_resolvers.contacts(info.context, self._row, search)]

    @strawberry.field(description="Your contact with this email address (in any case), or null.")
    async def contact(self, info: Ctx, email: str) -> ContactType | None:
        row = await crm_resolvers.contact_by_email(info.context, self._row, email)
        return None if row is None else ContactType.from_row(row)

    @strawberry.field(description="Your tasks: open ones first, then by due time (those without one last).")
    async def tasks(self, info: Ctx) -> list[TaskType]:
        return [TaskType.from_row(row) for row in await crm_resolvers.tasks(info.context, self._row)]

    @strawberry.field(
        description="What calendar sync decided about the events in your calendar, newest first: the `last` "
        "decisions (default 50, at most 200)."
    )
    async def calendar_imports(self, info: Ctx, last: int | None = None) -> list[CalendarImportType]:
        rows = await crm_resolvers.calendar_imports(info.context, self._row, last)
        return [CalendarImportType.from_row(row) for row in rows]
