"""Inputs for booking a meeting."""

from __future__ import annotations

import strawberry

from common.values import BookingSource
from scheduling.booking.rules import BookingDraft
from schema.scalars import DateTime


@strawberry.input
class InviteeInput:
    name: str
    email: str


@strawberry.input(description="An answer to one of the page's form fields.")
class AnswerInput:
    key: str
    value: str


@strawberry.input
class BookMeetingInput:
    slug: str
    domain: str | None = None
    start: DateTime
    duration: int | None = strawberry.field(default=None, description="Minutes; default the page's first duration.")
    timezone: str = strawberry.field(description="The invitee's IANA zone, for emails and display.")
    invitee: InviteeInput
    answers: list[AnswerInput] | None = None
    idempotency_key: str | None = strawberry.field(
        default=None, description="Retrying with the same key returns the first result and books nothing twice."
    )
    source: BookingSource | None = strawberry.field(
        default=None, description="Where the visitor booked: PAGE (default), EMBED (the widget on another site), CHAT."
    )

    def to_draft(self) -> BookingDraft:
        return BookingDraft(
            slug=self.slug,
            domain=self.domain,
            start=self.start,
            duration=self.duration,
            timezone=self.timezone,
            invitee_name=self.invitee.name,
            invitee_email=self.invitee.email,
            answers={answer.key: answer.value for answer in self.answers or []},
            idempotency_key=self.idempotency_key,
            source=self.source or BookingSource.PAGE,
        )
