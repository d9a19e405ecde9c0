"""Every table, imported here so ``SQLModel.metadata`` knows them all."""

from db.models.bookings import Booking, Contact
from db.models.busy import BusyInterval
from db.models.calendars import Calendar, CalendarConnection, ConnectionAttempt, PushChannel
from db.models.crm import CalendarImport, Meeting, Task
from db.models.outbox import OutboxMessage
from db.models.pages import Domain, SchedulingPage
from db.models.users import ApiToken, User

__all__ = [
    "ApiToken",
    "Booking",
    "BusyInterval",
    "Calendar",
    "CalendarConnection",
    "CalendarImport",
    "ConnectionAttempt",
    "Contact",
    "Domain",
    "Meeting",
    "OutboxMessage",
    "PushChannel",
    "SchedulingPage",
    "Task",
    "User",
]
