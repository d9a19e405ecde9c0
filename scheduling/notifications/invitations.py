"""Calendar invitations (iTIP over email, RFC 5546): one VEVENT in a REQUEST or CANCEL .ics.

Names, summaries and descriptions come from visitors and owners. ``icalendar`` escapes text
values (a line break becomes ``\\n``) and quotes parameters, so none of them can start a new
property; addresses and URLs are checked here as well and refused when they hold control
characters. The one-line and address helpers are shared with the email builders.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from icalendar import Calendar, Event, vCalAddress, vText

__all__ = [
    "PRODUCT_ID",
    "Invitation",
    "InvitationMethod",
    "InvitationStatus",
    "invitation_ics",
    "normalise_email",
    "one_line",
]

PRODUCT_ID = "-//Kokous//Kokous scheduling//EN"

InvitationMethod = Literal["REQUEST", "CANCEL"]
InvitationStatus = Literal["CONFIRMED", "CANCELLED"]

_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029]")
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def one_line(text: str, *, max_length: int = 200) -> str:
    """``text`` as one line of plain text: control and line-break characters become spaces,
    bidirectional overrides are dropped, runs of space collapse, and it is cut to ``max_length``.
    """
    cleaned = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
    cleaned = _SPACES.sub(" ", cleaned.translate(_BIDI_CONTROLS)).strip()
    if len(cleaned) > max_length:
        cleaned = cleaned[: max_length - 1].rstrip() + "…"
    return cleaned


def normalise_email(address: str) -> str:
    """``address`` as a plain ASCII ``local@domain`` (an internationalised domain becomes
    punycode); ValueError when it is not one address or holds control characters or spaces.
    """
    address = address.strip()
    if not address or len(address) > 254 or _CONTROL.search(address):
        raise ValueError("not a valid email address")
    local, separator, domain = address.rpartition("@")
    if not separator or not _LOCAL_PART.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValueError("not a valid email address")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError("not a valid email address") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise ValueError("not a valid email address")
    return f"{local}@{ascii_domain}"


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")


@dataclass(frozen=True, kw_only=True)
class Invitation:
    """One meeting as the invitee's calendar should see it.

    ``uid`` stays the same for the life of a booking; ``sequence`` goes up by one with every
    change the invitee is sent (a reschedule, a cancellation), so calendars apply the latest.
    A REQUEST carries status CONFIRMED, a CANCEL status CANCELLED.
    """

    uid: str
    sequence: int
    method: InvitationMethod
    summary: str
    description: str
    start: datetime
    end: datetime
    organizer_email: str
    organizer_name: str
    attendee_email: str
    attendee_name: str
    location_url: str | None = None
    status: InvitationStatus

    def __post_init__(self) -> None:
        if not self.uid or _CONTROL.search(self.uid):
            raise ValueError("uid must be non-empty, without spaces or control characters")
        if self.sequence < 0:
            raise ValueError("sequence must not be negative")
        if self.method not in ("REQUEST", "CANCEL"):
            raise ValueError("method must be REQUEST or CANCEL")
        if self.status not in ("CONFIRMED", "CANCELLED"):
            raise ValueError("status must be CONFIRMED or CANCELLED")
        if (self.method == "CANCEL") != (self.status == "CANCELLED"):
            raise ValueError("a CANCEL carries status CANCELLED, a REQUEST status CONFIRMED")
        _require_aware("start", self.start)
        _require_aware("end", self.end)
        if self.start >= self.end:
            raise ValueError("start must be before end")
        normalise_email(self.organizer_email)
        normalise_email(self.attendee_email)
        if self.location_url is not None and (not self.location_url or _CONTROL.search(self.location_url)):
            raise ValueError("location_url must be a URL without spaces or control characters")


def _address(email: str, name: str, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{normalise_email(email)}")
    display = one_line(name)
    if display:
        address.params["CN"] = vText(display)
    for key, value in params.items():
        address.params[key] = value
    return address


def invitation_ics(invitation: Invitation, *, stamp: datetime | None = None) -> bytes:
    """The invitation as an iCalendar object (``text/calendar``), times in UTC.

    ``stamp`` is the DTSTAMP (when this version was made); the current time when omitted.
    """
    if stamp is None:
        stamp = datetime.now(UTC)
    _require_aware("stamp", stamp)
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", invitation.method)

    event = Event()
    event.add("uid", invitation.uid)
    event.add("sequence", invitation.sequence)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", invitation.start.astimezone(UTC))
    event.add("dtend", invitation.end.astimezone(UTC))
    event.add("summary", one_line(invitation.summary, max_length=500))
    event.add("description", invitation.description)
    event.add("organizer", _address(invitation.organizer_email, invitation.organizer_name))
    event.add(
        "attendee",
        _address(
            invitation.attendee_email,
            invitation.attendee_name,
            CUTYPE="INDIVIDUAL",
            ROLE="REQ-PARTICIPANT",
            PARTSTAT="NEEDS-ACTION",
            RSVP="TRUE",
        ),
    )
    event.add("status", invitation.status)
    event.add("transp", "OPAQUE")
    if invitation.location_url:
        event.add("url", invitation.location_url)
        event.add("location", invitation.location_url)
    calendar.add_component(event)
    return bytes(calendar.to_ical())
