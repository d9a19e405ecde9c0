"""Input types, each with a conversion to the domain value the service takes."""

from __future__ import annotations

import datetime as dt

import strawberry

from common.values import FormFieldKind, Weekday
from resolvers.ids import parse_id
from scheduling.calendars.directory import ConnectionSettings
from scheduling.pages import rules as page_rules
from scheduling.pages.service import PageDraft
from scheduling.users import SettingsChange
from schema import enums as _enums  # noqa: F401  (registers the enums)


@strawberry.input
class WeeklyHoursInput:
    weekday: Weekday
    start: str = strawberry.field(description='Local time of day, "09:00".')
    end: str = strawberry.field(description='Local time of day, "17:00"; "24:00" is midnight.')


@strawberry.input
class TimeRangeInput:
    start: str
    end: str


@strawberry.input(description="Hours for one date instead of the weekly ones; no intervals: closed.")
class DateOverrideInput:
    date: dt.date
    intervals: list[TimeRangeInput]


@strawberry.input
class FormFieldInput:
    key: str
    label: str
    kind: FormFieldKind = FormFieldKind.TEXT
    required: bool = False


@strawberry.input(description="On update, optional fields left out keep their current values.")
class SchedulingPageInput:
    slug: str
    name: str
    durations: list[int] = strawberry.field(description="Meeting lengths in minutes.")
    start_increment: int | None = strawberry.field(default=None, description="Minutes, default 15.")
    buffer_minutes: int | None = strawberry.field(default=None, description="Default 0.")
    minimum_notice_minutes: int | None = strawberry.field(default=None, description="Default 0.")
    booking_horizon_days: int | None = strawberry.field(default=None, description="Rolling days, default 60.")
    timezone: str | None = strawberry.field(default=None, description="IANA zone; default the owner's.")
    weekly_hours: list[WeeklyHoursInput] | None = strawberry.field(
        default=None, description="Default Monday to Friday 09:00-17:00."
    )
    date_overrides: list[DateOverrideInput] | None = None
    form_fields: list[FormFieldInput] | None = None
    redirect_url: str | None = strawberry.field(default=None, description="http(s) URL; empty clears it.")
    domain: str | None = strawberry.field(default=None, description="A connected domain; empty: the default.")
    fixed_range_start: dt.date | None = strawberry.field(
        default=strawberry.UNSET,
        description="With fixedRangeEnd: a fixed bookable date range instead of the horizon; null for both clears it.",
    )
    fixed_range_end: dt.date | None = strawberry.UNSET
    enabled: bool | None = None

    def to_draft(self) -> PageDraft:
        return PageDraft(
            slug=self.slug,
            name=self.name,
            durations=list(self.durations),
            start_increment=self.start_increment,
            buffer_minutes=self.buffer_minutes,
            minimum_notice_minutes=self.minimum_notice_minutes,
            booking_horizon_days=self.booking_horizon_days,
            timezone=self.timezone,
            weekly_hours=None
            if self.weekly_hours is None
            else [page_rules.WeeklyHours(item.weekday, item.start, item.end) for item in self.weekly_hours],
            date_overrides=None
            if self.date_overrides is None
            else [
                page_rules.DateOverride(
                    item.date, tuple(page_rules.HoursRange(span.start, span.end) for span in item.intervals)
                )
                for item in self.date_overrides
            ],
            form_fields=None
            if self.form_fields is None
            else [page_rules.FormField(item.key, item.label, item.kind, item.required) for item in self.form_fields],
            redirect_url=self.redirect_url,
            domain=self.domain,
            fixed_range_start=_given(self.fixed_range_start),
            fixed_range_end=_given(self.fixed_range_end),
            clear_fixed_range=_given(self.fixed_range_start) is None
            and _given(self.fixed_range_end) is None
            and (self.fixed_range_start is None or self.fixed_range_end is None),
            enabled=self.enabled,
        )


def _given(value: dt.date | None) -> dt.date | None:
    """A date sent by the client; left out (UNSET) and null both read as None here."""
    return None if value is strawberry.UNSET else value


@strawberry.input
class UserSettingsInput:
    personal_email_access: bool | None = None
    timezone: str | None = None
    hide_from_search_engines: bool | None = None
    meetings_link_base: str | None = strawberry.field(
        default=None, description="https://<connected domain>/meetings; empty restores the app's."
    )
    default_scheduling_page_id: strawberry.ID | None = None

    def to_change(self) -> SettingsChange | None:
        """None when the default page id is not an id at all."""
        page_id = None
        if self.default_scheduling_page_id is not None:
            page_id = parse_id(self.default_scheduling_page_id)
            if page_id is None:
                return None
        return SettingsChange(
            personal_email_access=self.personal_email_access,
            timezone=self.timezone,
            hide_from_search_engines=self.hide_from_search_engines,
            meetings_link_base=self.meetings_link_base,
            default_page_id=page_id,
        )


@strawberry.input(description="Connection settings; fields left out keep their values.")
class CalendarConnectionSettingsInput:
    calendar_sync: bool | None = None
    scheduling_pages: bool | None = strawberry.field(
        default=None, description="Off: this connection's calendars take no bookings."
    )

    def to_settings(self) -> ConnectionSettings:
        return ConnectionSettings(calendar_sync=self.calendar_sync, scheduling_pages=self.scheduling_pages)
