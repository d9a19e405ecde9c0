"""The invitee's signed links to manage a booking, and the URLs emails carry."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from db.models import Booking
from scheduling.signing import Signer

MANAGE_PURPOSE = "manage-booking"
MANAGE_LINK_LIFETIME = timedelta(days=400)


def manage_token(signer: Signer, booking: Booking) -> str:
    """Valid until well after the meeting, so a late cancellation link still names it."""
    return signer.sign(MANAGE_PURPOSE, booking.id.hex, booking.end_at + MANAGE_LINK_LIFETIME)


def manage_url(page_url: str, token: str, action: str) -> str:
    """The public page opened on this booking; the widget offers ``action`` (cancel or reschedule)."""
    return f"{page_url}?{urlencode({'booking': token, 'action': action})}"
