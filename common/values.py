"""Value types shared by every layer, including ``db`` and ``providers`` (standard library only)."""

from __future__ import annotations

from enum import StrEnum


class CalendarProvider(StrEnum):
    GOOGLE = "GOOGLE"
    MICROSOFT = "MICROSOFT"
    EXCHANGE = "EXCHANGE"
    CALDAV = "CALDAV"


class CalendarStatus(StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    REMOVED = "REMOVED"  # only in calendarStatusChanged: the calendar was disconnected


class ConnectionFailure(StrEnum):
    """Why connecting a calendar failed, so clients can say what to do about it."""

    AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"  # wrong password, revoked or refused consent
    VERSION_UNSUPPORTED = "VERSION_UNSUPPORTED"  # Exchange older than 2010 SP2
    UNREACHABLE = "UNREACHABLE"  # timeout, network, server error: try again
    REFUSED = "REFUSED"  # the server will not do it as asked (not a calendar server, bad URL)


class PageStatus(StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"


class BookingStatus(StrEnum):
    CONFIRMED = "CONFIRMED"
    REQUESTED = "REQUESTED"
    CANCELLED = "CANCELLED"
    DECLINED = "DECLINED"


class CalendarWrite(StrEnum):
    """Where the booking's calendar event stands; owners see it."""

    NONE = "NONE"  # nothing to write (a request, or no calendar)
    PENDING = "PENDING"
    DONE = "DONE"
    FAILED = "FAILED"


BLOCKING_STATUSES = (BookingStatus.CONFIRMED, BookingStatus.REQUESTED)


class BookingSource(StrEnum):
    PAGE = "PAGE"
    EMBED = "EMBED"  # the widget on another site
    CHAT = "CHAT"
    API = "API"


class Seat(StrEnum):
    """The owner's seat: task sync into the calendar needs a paid one."""

    FREE = "FREE"
    SALES_PAID = "SALES_PAID"
    SERVICE_PAID = "SERVICE_PAID"


class MeetingSource(StrEnum):
    """Where a contact's meeting came from."""

    BOOKING = "BOOKING"  # booked on a scheduling page or its widget
    CALENDAR_SYNC = "CALENDAR_SYNC"  # made by the owner in the calendar, with the contact invited
    OWNER = "OWNER"  # made by the owner on the contact, through the API
    CHAT = "CHAT"  # booked through the chat link


class Weekday(StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"

    @property
    def iso_index(self) -> int:
        """Monday is 0, as ``date.weekday()`` counts."""
        return _ISO_INDEX[self]


_ISO_INDEX = {day: index for index, day in enumerate(Weekday)}


class FormFieldKind(StrEnum):
    TEXT = "TEXT"
    TEXTAREA = "TEXTAREA"
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    CHECKBOX = "CHECKBOX"
