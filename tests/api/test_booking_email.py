"""Booking emails reach a real SMTP server (aiosmtpd) with a valid invitation (BOOK-2, OPS-5)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from pathlib import Path

import icalendar

from tests.support.booking_helpers import NOW, book, owner_with_page
from tests.support.live_server import start_live_server
from tests.support.settings import sqlite_settings
from tests.support.smtp_sink import SmtpSink, smtp_sink


async def wait_for_mail(sink: SmtpSink, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(sink.messages) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(sink.messages)} of {count} emails within {timeout} s: {sink.messages}")
        await asyncio.sleep(0.05)


async def test_confirmation_with_invitation_over_smtp(sqlite_url: str, tmp_path: Path) -> None:
    # covers: BOOK-2, OPS-5, SYNC-1
    with smtp_sink() as sink:
        settings = sqlite_settings(sqlite_url, tmp_path, smtp_url=sink.url)
        async with start_live_server(settings, clock=lambda: NOW) as server:
            owner = await owner_with_page(server)
            booked = await book(server, "2026-12-01T10:00:00+02:00", email="vera@example.com")
            assert booked["__typename"] == "Booking"
            await wait_for_mail(sink, 2)
    by_recipient = {mail.rcpt_tos[0]: mail.message for mail in sink.messages}
    assert set(by_recipient) == {"vera@example.com", owner.user.email}
    confirmation = by_recipient["vera@example.com"]
    assert confirmation["Subject"].startswith("Confirmed: Intro call")
    body = confirmation.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "10:00" in text
    assert f"booking={booked['manageToken']}" in text.replace("%3D", "=")
    attachments = [part for part in confirmation.iter_attachments() if part.get_content_type() == "text/calendar"]
    assert len(attachments) == 1
    calendar = icalendar.Calendar.from_ical(attachments[0].get_payload(decode=True))
    assert str(calendar["METHOD"]) == "REQUEST"
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 1
    event = events[0]
    assert event["DTSTART"].dt.isoformat() == "2026-12-01T08:00:00+00:00"
    assert event["DTEND"].dt.isoformat() == "2026-12-01T08:30:00+00:00"
    assert str(event["ATTENDEE"]).lower() == "mailto:vera@example.com"
    assert str(event["ORGANIZER"]).lower() == f"mailto:{owner.user.email}"


async def test_without_smtp_emails_go_to_the_outbox_folder(sqlite_url: str, tmp_path: Path) -> None:
    # covers: OPS-5, PAGE-4
    settings = sqlite_settings(sqlite_url, tmp_path)
    async with start_live_server(settings, clock=lambda: NOW) as server:
        owner = await owner_with_page(server, online=False)
        requested = await book(server, "2026-12-01T10:00:00+02:00")
        assert requested["__typename"] == "BookingRequest"
        deadline = time.monotonic() + 10
        while len(list(settings.outbox_dir.glob("*.eml"))) < 2:
            assert time.monotonic() < deadline, list(settings.outbox_dir.iterdir())
            await asyncio.sleep(0.05)
    mails = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in settings.outbox_dir.glob("*.eml")
    ]
    assert sorted(str(mail["Subject"]).strip().split(":")[0] for mail in mails) == ["Request", "Requested"]
    recipients = {str(mail["To"]).split("<")[1].rstrip(">") for mail in mails}
    assert recipients == {"visitor@example.com", owner.user.email}
