"""The invitee's signed links to manage a booking, and the URLs emails carry."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from db.models import Booking
from scheduling.signing import Signer

MANAGE_PURPOSE = "manage-booking"
MANAGE_LINK_LIFETIME = timedelta(days=400)


@dataclass(frozen=True)
class ManageLink:
    booking_id: uuid.UUID
    version: int

    def is_current(self, booking: Booking) -> bool:
        """False once the booking was rescheduled after this link was issued."""
        return booking.id == self.booking_id and booking.manage_version == self.version


def manage_token(signer: Signer, booking: Booking) -> str:
    """Valid until well after the meeting, so a late cancellation link still names it.

    The subject names the booking's manage version (a booking never rescheduled keeps the bare
    id, as links issued before versions did), so each reschedule retires the older links.
    """
    subject = booking.id.hex if booking.manage_version == 0 else f"{booking.id.hex}:{booking.manage_version}"
    return signer.sign(MANAGE_PURPOSE, subject, booking.end_at + MANAGE_LINK_LIFETIME)


def read_manage_token(signer: Signer, token: str, now: datetime) -> ManageLink | None:
    """The booking and version a genuine, unexpired link names; None for anything else."""
    subject = signer.verify(MANAGE_PURPOSE, token, now)
    if subject is None:
        return None
    booking_hex, separator, version_text = subject.partition(":")
    if separator and not (version_text.isascii() and version_text.isdigit()):
        return None
    try:
        booking_id = uuid.UUID(hex=booking_hex)
    except ValueError:
        return None
    return ManageLink(booking_id=booking_id, version=int(version_text) if separator else 0)


def manage_url(page_url: str, token: str, action: str) -> str:
    """The public page opened on this booking; the widget offers ``action`` (cancel or reschedule)."""
    return f"{page_url}?{urlencode({'booking': token, 'action': action})}"
