"""The calendar event a booking writes: what the owner's mailbox will send the invitee."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from db.models import Booking, SchedulingPage, User
from scheduling.calendars.writes import MAX_EVENT_DESCRIPTION, event_for

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def booking_with(answers: dict[str, str]) -> tuple[Booking, SchedulingPage, User]:
    owner = User(email="owner@example.com", name="Olga Owner")
    page = SchedulingPage(owner_id=owner.id, slug="intro", name="Intro call", timezone="Europe/Helsinki")
    booking = Booking(
        owner_id=owner.id,
        page_id=page.id,
        start_at=START,
        end_at=START + timedelta(minutes=30),
        invitee_name="Vera Visitor",
        invitee_email="vera@example.com",
        invitee_timezone="Europe/Helsinki",
        answers=answers,
    )
    return booking, page, owner


def test_the_event_carries_the_answers_as_plain_lines() -> None:
    # covers: BOOK-2
    draft = event_for(*booking_with({"Topic": "Pricing", "Company": "Acme"}))
    assert draft.description == (
        "Booked through Intro call by Vera Visitor <vera@example.com>.\n\nTopic: Pricing\nCompany: Acme"
    )
    assert draft.summary == "Intro call: Vera Visitor"
    assert draft.idempotency_key == draft.idempotency_key.lower()
    assert uuid.UUID(draft.idempotency_key)


def test_visitor_text_in_the_event_is_cut_short() -> None:
    # covers: SEC-2
    # Each answer may be 2,000 characters; a page with many fields must not make the owner's
    # mailbox send pages of a visitor's text.
    answers = {f"Question {number}": "x" * 2_000 for number in range(6)}
    draft = event_for(*booking_with(answers))
    assert draft.description is not None
    assert len(draft.description) == MAX_EVENT_DESCRIPTION
    assert draft.description.endswith("…")
    assert draft.description.startswith("Booked through Intro call by Vera Visitor")
