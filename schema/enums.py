"""Registers the domain enums with strawberry, so fields and inputs use the domain types."""

from __future__ import annotations

import strawberry

from scheduling.values import BookingStatus, CalendarProvider, CalendarStatus, FormFieldKind, PageStatus, Weekday

ENUMS = (CalendarProvider, CalendarStatus, PageStatus, BookingStatus, Weekday, FormFieldKind)
for _enum in ENUMS:
    strawberry.enum(_enum)
