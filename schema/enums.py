"""Registers the domain enums with strawberry, so fields and inputs use the domain types."""

from __future__ import annotations

import strawberry

from common.values import (
    BookingStatus,
    CalendarProvider,
    CalendarStatus,
    ConnectionFailure,
    FormFieldKind,
    MeetingSource,
    PageStatus,
    Seat,
    Weekday,
)

ENUMS = (
    CalendarProvider,
    CalendarStatus,
    PageStatus,
    BookingStatus,
    Weekday,
    FormFieldKind,
    ConnectionFailure,
    Seat,
    MeetingSource,
)
for _enum in ENUMS:
    strawberry.enum(_enum)
