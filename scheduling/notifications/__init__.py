"""Notifications for bookings: invitations (.ics), the emails that carry them, and the mailer.

Building blocks only, with no database: the outbox handlers (``booking.emails``, ``calendars.status``)
load what an email tells into a ``MeetingFacts``, call a builder from ``messages`` and hand the result to
``Mailer.send``.
"""

from __future__ import annotations

from scheduling.notifications.invitations import Invitation, invitation_ics, normalise_email, one_line
from scheduling.notifications.mailer import MailDeliveryError, Mailer, SmtpTarget, parse_smtp_url
from scheduling.notifications.messages import (
    MeetingFacts,
    booking_cancelled,
    booking_confirmation,
    format_when,
    mailbox,
    owner_new_booking,
    owner_new_request,
    request_declined,
    request_received,
)

__all__ = [
    "Invitation",
    "MailDeliveryError",
    "Mailer",
    "MeetingFacts",
    "SmtpTarget",
    "booking_cancelled",
    "booking_confirmation",
    "format_when",
    "invitation_ics",
    "mailbox",
    "normalise_email",
    "one_line",
    "owner_new_booking",
    "owner_new_request",
    "parse_smtp_url",
    "request_declined",
    "request_received",
]
