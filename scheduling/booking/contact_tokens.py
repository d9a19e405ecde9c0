"""A visitor's signed contact token: the browser that booked is recognised next time, and its
form is filled from what that contact answered before (and from nothing else)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from db.engine import Database
from db.models import Booking, Contact
from scheduling.signing import Signer

CONTACT_PURPOSE = "contact"
CONTACT_TOKEN_LIFETIME = timedelta(days=365)


@dataclass(frozen=True)
class Prefill:
    """What a returning visitor typed last time: their name, email and answers by field key."""

    name: str
    email: str
    answers: dict[str, Any]


def contact_token(signer: Signer, booking: Booking, now: datetime) -> str | None:
    """The token given to the visitor who made ``booking``; None when it names no contact."""
    if booking.contact_id is None:
        return None
    return signer.sign(CONTACT_PURPOSE, booking.contact_id.hex, now + CONTACT_TOKEN_LIFETIME)


async def prefill(db: Database, signer: Signer, token: str, owner_id: uuid.UUID, now: datetime) -> Prefill | None:
    """The contact's last name, email and answers as they typed them, when the token is genuine
    and names a contact of this page's owner (a token from another owner's page reveals nothing
    here)."""
    subject = signer.verify(CONTACT_PURPOSE, token, now)
    try:
        contact_id = uuid.UUID(hex=subject or "")
    except ValueError:
        return None
    async with db.session() as session:
        contact = await session.get(Contact, contact_id)
        if contact is None or contact.owner_id != owner_id:
            return None
        last = (
            await session.exec(
                select(Booking)
                .where(Booking.contact_id == contact_id)
                .order_by(col(Booking.created_at).desc())
                .limit(1)
            )
        ).first()
    if last is None:
        return None
    # What the visitor typed, never what the owner recorded on the contact.
    return Prefill(name=last.invitee_name, email=last.invitee_email, answers=dict(last.answers))
