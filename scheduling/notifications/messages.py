"""The emails bookings send, built from plain values.

Every builder returns an ``EmailMessage`` (policy ``SMTP``) with To, Subject and usually
Reply-To set; From, Date and Message-ID are left to the ``Mailer`` unless the caller sets them.
Times are shown in the reader's IANA zone. Names and page titles come from visitors and owners:
they pass through ``one_line`` (no CR/LF or other control characters) and addresses through
``email.headerregistry.Address``, which quotes or RFC 2047-encodes display names, so no value
can add a header.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scheduling.notifications.invitations import Invitation, invitation_ics, normalise_email, one_line

__all__ = [
    "ICS_FILENAME",
    "MeetingFacts",
    "booking_cancelled",
    "booking_confirmation",
    "calendar_inactive_attempt",
    "format_when",
    "mailbox",
    "owner_move_not_followed",
    "owner_moved_outside_rules",
    "owner_new_booking",
    "owner_new_request",
    "request_declined",
    "request_received",
]

ICS_FILENAME = "invite.ics"
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def mailbox(name: str, email: str) -> Address:
    """A header address; the display name made one line, the address checked (ValueError)."""
    return Address(display_name=one_line(name), addr_spec=normalise_email(email))


def _url(url: str) -> str:
    """A link shown in a body: one token, no spaces or control characters (ValueError)."""
    if not url or any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        raise ValueError("links must not contain spaces or control characters")
    return url


def _optional_url(url: str | None) -> str | None:
    return None if url is None else _url(url)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {one_line(name, max_length=64)!r}") from None


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be aware datetimes")
    return moment.astimezone(zone)


def _date(moment: datetime, *, short: bool) -> str:
    day, month = _DAYS[moment.weekday()], _MONTHS[moment.month - 1]
    if short:
        day, month = day[:3], month[:3]
    return f"{day} {moment.day} {month} {moment.year}"


def format_when(start: datetime, end: datetime, time_zone: str, *, short: bool = False) -> str:
    """``start``-``end`` in ``time_zone``, e.g. ``Monday 2 March 2026, 09:00-09:30 (America/New_York)``.

    ``short`` gives the start only, for subjects: ``Mon 2 Mar 2026, 09:00 (America/New_York)``.
    """
    zone = _zone(time_zone)
    local_start, local_end = _local(start, zone), _local(end, zone)
    if short:
        return f"{_date(local_start, short=True)}, {local_start:%H:%M} ({time_zone})"
    if local_start.date() == local_end.date():
        return f"{_date(local_start, short=False)}, {local_start:%H:%M}-{local_end:%H:%M} ({time_zone})"
    first = f"{_date(local_start, short=False)}, {local_start:%H:%M}"
    return f"{first} - {_date(local_end, short=False)}, {local_end:%H:%M} ({time_zone})"


def _message(*, to: Address, subject: str, body: str, reply_to: Address | None = None) -> EmailMessage:
    message = EmailMessage(policy=policy.SMTP)
    message["To"] = to
    if reply_to is not None:
        message["Reply-To"] = reply_to
    message["Subject"] = one_line(subject, max_length=250)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


def _attach_ics(message: EmailMessage, ics: bytes, method: str) -> None:
    message.add_attachment(
        ics,
        maintype="text",
        subtype="calendar",
        filename=ICS_FILENAME,
        params={"method": method, "charset": "utf-8"},
    )


def _lines(*parts: str | None) -> str:
    return "\n".join(part for part in parts if part is not None) + "\n"


def _answers_block(answers: Mapping[str, str]) -> str | None:
    if not answers:
        return None
    rows = ["", "Answers:"]
    for label, value in answers.items():
        # Multi-line answers are indented so they cannot pass for lines of ours.
        text = "\n    ".join(line.rstrip() for line in str(value).strip().splitlines()) or "-"
        rows.append(f"- {one_line(label, max_length=100)}: {text}")
    return "\n".join(rows)


@dataclass(frozen=True, kw_only=True)
class MeetingFacts:
    """What every booking email tells: what, with whom and when; each reader sees the time in
    their own zone."""

    page_name: str
    owner_name: str
    owner_email: str
    invitee_name: str
    invitee_email: str
    start: datetime
    end: datetime
    invitee_time_zone: str = "UTC"
    owner_time_zone: str = "UTC"
    answers: Mapping[str, str] = field(default_factory=dict)


def _meeting_title(page_name: str, owner_name: str) -> str:
    return f"{one_line(page_name, max_length=100)} with {one_line(owner_name, max_length=100)}"


def booking_confirmation(
    meeting: MeetingFacts,
    *,
    uid: str,
    cancel_url: str,
    reschedule_url: str,
    location_url: str | None = None,
    sequence: int = 0,
    rescheduled: bool = False,
    stamp: datetime | None = None,
) -> EmailMessage:
    """To the invitee: the meeting is booked (or moved, with ``rescheduled`` and a higher
    ``sequence``), with the manage links and a METHOD:REQUEST invitation attached.
    """
    cancel_url, reschedule_url = _url(cancel_url), _url(reschedule_url)
    location_url = _optional_url(location_url)
    title = _meeting_title(meeting.page_name, meeting.owner_name)
    verb = "Rescheduled" if rescheduled else "Confirmed"
    when = format_when(meeting.start, meeting.end, meeting.invitee_time_zone)
    body = _lines(
        f"Hello {one_line(meeting.invitee_name)},",
        "",
        "Your meeting has been moved to a new time." if rescheduled else "Your meeting is confirmed.",
        "",
        f"What:  {title}",
        f"When:  {when}",
        f"Where: {location_url}" if location_url else None,
        "",
        "Need to change it?",
        f"Reschedule: {reschedule_url}",
        f"Cancel:     {cancel_url}",
        "",
        f"The invitation is attached ({ICS_FILENAME}); open it to add the meeting to your calendar.",
    )
    message = _message(
        to=mailbox(meeting.invitee_name, meeting.invitee_email),
        reply_to=mailbox(meeting.owner_name, meeting.owner_email),
        subject=f"{verb}: {title} on {format_when(meeting.start, meeting.end, meeting.invitee_time_zone, short=True)}",
        body=body,
    )
    invitation = Invitation(
        uid=uid,
        sequence=sequence,
        method="REQUEST",
        summary=title,
        description=_lines(
            f"Booked with Kokous by {one_line(meeting.invitee_name)}.",
            f"Reschedule: {reschedule_url}",
            f"Cancel: {cancel_url}",
        ).rstrip("\n"),
        start=meeting.start,
        end=meeting.end,
        organizer_email=meeting.owner_email,
        organizer_name=meeting.owner_name,
        attendee_email=meeting.invitee_email,
        attendee_name=meeting.invitee_name,
        location_url=location_url,
        status="CONFIRMED",
    )
    _attach_ics(message, invitation_ics(invitation, stamp=stamp), "REQUEST")
    return message


def booking_cancelled(
    meeting: MeetingFacts,
    *,
    uid: str,
    sequence: int,
    reason: str | None = None,
    book_again_url: str | None = None,
    stamp: datetime | None = None,
) -> EmailMessage:
    """To the invitee: the meeting is cancelled, with a METHOD:CANCEL invitation attached
    (same ``uid``, a ``sequence`` above the last one sent) so calendars remove it.
    """
    book_again_url = _optional_url(book_again_url)
    title = _meeting_title(meeting.page_name, meeting.owner_name)
    when = format_when(meeting.start, meeting.end, meeting.invitee_time_zone)
    reason_text = one_line(reason, max_length=500) if reason else ""
    body = _lines(
        f"Hello {one_line(meeting.invitee_name)},",
        "",
        "This meeting has been cancelled:",
        "",
        f"What: {title}",
        f"When: {when}",
        f"Reason: {reason_text}" if reason_text else None,
        "",
        f"Book another time: {book_again_url}" if book_again_url else None,
        f"The attached {ICS_FILENAME} removes it from your calendar.",
    )
    message = _message(
        to=mailbox(meeting.invitee_name, meeting.invitee_email),
        reply_to=mailbox(meeting.owner_name, meeting.owner_email),
        subject=f"Cancelled: {title} on {format_when(meeting.start, meeting.end, meeting.invitee_time_zone, short=True)}",
        body=body,
    )
    invitation = Invitation(
        uid=uid,
        sequence=sequence,
        method="CANCEL",
        summary=title,
        description=f"Cancelled. {reason_text}".strip(),
        start=meeting.start,
        end=meeting.end,
        organizer_email=meeting.owner_email,
        organizer_name=meeting.owner_name,
        attendee_email=meeting.invitee_email,
        attendee_name=meeting.invitee_name,
        status="CANCELLED",
    )
    _attach_ics(message, invitation_ics(invitation, stamp=stamp), "CANCEL")
    return message


def owner_new_booking(
    meeting: MeetingFacts,
    *,
    booking_url: str | None = None,
) -> EmailMessage:
    """To the owner: someone booked a page (the calendar event is written separately).
    Reply-To is the invitee, so a reply goes to them.
    """
    booking_url = _optional_url(booking_url)
    invitee = one_line(meeting.invitee_name)
    body = _lines(
        f"Hello {one_line(meeting.owner_name)},",
        "",
        f"{invitee} <{normalise_email(meeting.invitee_email)}> booked {one_line(meeting.page_name, max_length=100)}.",
        "",
        f"When: {format_when(meeting.start, meeting.end, meeting.owner_time_zone)}",
        _answers_block(meeting.answers),
        "",
        f"Details: {booking_url}" if booking_url else None,
    )
    return _message(
        to=mailbox(meeting.owner_name, meeting.owner_email),
        reply_to=mailbox(meeting.invitee_name, meeting.invitee_email),
        subject=(
            f"New booking: {invitee} - {one_line(meeting.page_name, max_length=100)} "
            f"on {format_when(meeting.start, meeting.end, meeting.owner_time_zone, short=True)}"
        ),
        body=body,
    )


def owner_new_request(
    meeting: MeetingFacts,
    *,
    requests_url: str,
) -> EmailMessage:
    """To the owner: a request from an offline page, to accept or decline."""
    requests_url = _url(requests_url)
    invitee = one_line(meeting.invitee_name)
    body = _lines(
        f"Hello {one_line(meeting.owner_name)},",
        "",
        f"{invitee} <{normalise_email(meeting.invitee_email)}> asked to meet: {one_line(meeting.page_name, max_length=100)}.",
        "",
        f"Requested time: {format_when(meeting.start, meeting.end, meeting.owner_time_zone)}",
        _answers_block(meeting.answers),
        "",
        "Nothing is in your calendar yet: accepting the request creates the event and tells",
        f"{invitee}; declining tells them it did not work out. Accept or decline it here:",
        requests_url,
    )
    return _message(
        to=mailbox(meeting.owner_name, meeting.owner_email),
        reply_to=mailbox(meeting.invitee_name, meeting.invitee_email),
        subject=(
            f"Request: {invitee} - {one_line(meeting.page_name, max_length=100)} "
            f"on {format_when(meeting.start, meeting.end, meeting.owner_time_zone, short=True)}"
        ),
        body=body,
    )


def request_received(
    meeting: MeetingFacts,
    *,
    moved: bool = False,
) -> EmailMessage:
    """To the invitee: their request reached the owner (or, with ``moved``, now asks for another
    time), who will accept or decline it. No invitation: nothing is booked yet."""
    title = _meeting_title(meeting.page_name, meeting.owner_name)
    opening = (
        f"Your request to {one_line(meeting.owner_name)} now asks for a new time. It is still waiting for an"
        if moved
        else f"Your request was sent to {one_line(meeting.owner_name)}. You will get an email when it is"
    )
    closing = (
        "answer: you will get an email when it is accepted (with a calendar invitation) or declined."
        if moved
        else "accepted (with a calendar invitation) or declined."
    )
    body = _lines(
        f"Hello {one_line(meeting.invitee_name)},",
        "",
        opening,
        closing,
        "",
        f"What: {title}",
        f"When: {format_when(meeting.start, meeting.end, meeting.invitee_time_zone)}",
    )
    verb = "Request moved" if moved else "Requested"
    return _message(
        to=mailbox(meeting.invitee_name, meeting.invitee_email),
        reply_to=mailbox(meeting.owner_name, meeting.owner_email),
        subject=f"{verb}: {title} on {format_when(meeting.start, meeting.end, meeting.invitee_time_zone, short=True)}",
        body=body,
    )


def request_declined(
    meeting: MeetingFacts,
    *,
    book_again_url: str | None = None,
) -> EmailMessage:
    """To the invitee: the owner declined their request."""
    book_again_url = _optional_url(book_again_url)
    title = _meeting_title(meeting.page_name, meeting.owner_name)
    body = _lines(
        f"Hello {one_line(meeting.invitee_name)},",
        "",
        f"{one_line(meeting.owner_name)} could not accept your request:",
        "",
        f"What: {title}",
        f"When: {format_when(meeting.start, meeting.end, meeting.invitee_time_zone)}",
        "",
        f"Ask for another time: {book_again_url}" if book_again_url else None,
    )
    return _message(
        to=mailbox(meeting.invitee_name, meeting.invitee_email),
        reply_to=mailbox(meeting.owner_name, meeting.owner_email),
        subject=f"Declined: {title} on {format_when(meeting.start, meeting.end, meeting.invitee_time_zone, short=True)}",
        body=body,
    )


def owner_moved_outside_rules(meeting: MeetingFacts, *, booking_url: str | None = None) -> EmailMessage:
    """To the owner: they moved a booked meeting in their calendar to a time the page would not
    offer (outside the hours, too soon, within a buffer); it is kept there all the same."""
    booking_url = _optional_url(booking_url)
    invitee = one_line(meeting.invitee_name)
    when = format_when(meeting.start, meeting.end, meeting.owner_time_zone)
    body = _lines(
        f"Hello {one_line(meeting.owner_name)},",
        "",
        f"You moved your meeting with {invitee} <{normalise_email(meeting.invitee_email)}> in your calendar to:",
        "",
        f"When: {when}",
        "",
        f"That time is outside what {one_line(meeting.page_name, max_length=100)} offers (its hours, its notice",
        f"or its buffers). The meeting stays at the new time and {invitee} has been told;",
        "move it again if that was not what you meant.",
        "",
        f"Details: {booking_url}" if booking_url else None,
    )
    return _message(
        to=mailbox(meeting.owner_name, meeting.owner_email),
        subject=f"Moved outside your page's times: {invitee} on {format_when(meeting.start, meeting.end, meeting.owner_time_zone, short=True)}",
        body=body,
    )


def owner_move_not_followed(meeting: MeetingFacts, *, booking_url: str | None = None) -> EmailMessage:
    """To the owner: they moved a booked meeting in their calendar onto another booking's time;
    the booking keeps its time (two bookings never hold one time)."""
    booking_url = _optional_url(booking_url)
    invitee = one_line(meeting.invitee_name)
    body = _lines(
        f"Hello {one_line(meeting.owner_name)},",
        "",
        f"You moved your meeting with {invitee} <{normalise_email(meeting.invitee_email)}> in your calendar",
        "onto the time of another booking. Two bookings never hold one time, so this one keeps its time:",
        "",
        f"When: {format_when(meeting.start, meeting.end, meeting.owner_time_zone)}",
        "",
        "Move the event in your calendar back, or reschedule one of the two meetings.",
        f"Details: {booking_url}" if booking_url else None,
    )
    return _message(
        to=mailbox(meeting.owner_name, meeting.owner_email),
        subject=f"Not moved: your meeting with {invitee} overlaps another booking",
        body=body,
    )


def calendar_inactive_attempt(
    *,
    owner_name: str,
    owner_email: str,
    calendars: list[tuple[str, str, str | None]],
    settings_url: str,
) -> EmailMessage:
    """To the owner: someone tried to book, which calendars lost access, how to fix it.

    ``calendars`` holds (calendar name, account, reason code) of each inactive calendar.
    """
    settings_url = _url(settings_url)
    listed = [
        f"- {one_line(name, max_length=100)} ({normalise_email(account)})" + (f": {one_line(reason)}" if reason else "")
        for name, account, reason in calendars
    ]
    body = _lines(
        f"Hello {one_line(owner_name)},",
        "",
        "Someone just tried to book a meeting with you, but Kokous cannot reach this calendar:",
        *listed,
        "",
        "Until that is fixed nobody can book with you. Two ways to fix it:",
        "1. Reconnect the calendar's account (or ask whoever shared the calendar to restore access).",
        "2. Remove the inactive calendar from your calendar settings.",
        "",
        f"Calendar settings: {settings_url}",
    )
    return _message(
        to=mailbox(owner_name, owner_email),
        subject="Action needed: your calendar is inactive and bookings are blocked",
        body=body,
    )
