"""What a visitor sends to book, checked against the page before anything is written."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from common.values import BookingSource, FormFieldKind
from db.models import SchedulingPage
from scheduling import validation
from scheduling.errors import ValidationFailed

_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:\-]{1,200}$")
_ANSWER_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_ANSWER_LENGTH = 2_000


@dataclass(frozen=True)
class BookingDraft:
    """A visitor's booking or request, as sent."""

    slug: str
    start: datetime
    timezone: str
    invitee_name: str
    invitee_email: str
    domain: str | None = None
    duration: int | None = None
    answers: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    source: BookingSource = BookingSource.PAGE


@dataclass(frozen=True)
class CheckedBooking:
    """A draft that passed every check, normalised: UTC times, lower-case email."""

    page_id: uuid.UUID
    start: datetime
    end: datetime
    duration: int
    timezone: str
    invitee_name: str
    invitee_email: str
    answers: dict[str, str]
    idempotency_key: str | None
    source: BookingSource
    request_only: bool  # stored as a request: asked for, or the page is offline
    asked_duration: int | None  # as sent (None: the page's first), for the fingerprint
    asked_request: bool  # ``requestMeeting`` rather than ``bookMeeting``

    def fingerprint(self) -> str:
        """Identifies the request, so a reused idempotency key with another request is refused."""
        # What was sent, not what it resolved to: a retry after the owner connected a calendar
        # (the page is no longer offline) or reordered durations is still the same request.
        body = {
            "page": self.page_id.hex,
            "start": self.start.isoformat(),
            "duration": self.asked_duration,
            "timezone": self.timezone,
            "name": self.invitee_name,
            "email": self.invitee_email,
            "answers": self.answers,
            "source": self.source.value,
            "request": self.asked_request,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def check(draft: BookingDraft, page: SchedulingPage, *, asked_request: bool, offline: bool) -> CheckedBooking:
    """Validate a draft against its page; raises ``ValidationFailed``."""
    duration = draft.duration if draft.duration is not None else page.durations[0]
    if duration not in page.durations:
        raise ValidationFailed("duration", f"duration must be one of {page.durations} minutes")
    if draft.start.tzinfo is None or draft.start.utcoffset() is None:
        raise ValidationFailed("start", "start needs a UTC offset")
    start = draft.start.astimezone(UTC)
    if start.second or start.microsecond:
        raise ValidationFailed("start", "start must be on a whole minute")
    key = draft.idempotency_key
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise ValidationFailed("idempotencyKey", "idempotencyKey must be 1-200 letters, digits or . _ : -")
    return CheckedBooking(
        page_id=page.id,
        start=start,
        end=start + timedelta(minutes=duration),
        duration=duration,
        timezone=validation.timezone("timezone", draft.timezone),
        invitee_name=validation.text("invitee.name", draft.invitee_name, max_length=200),
        invitee_email=validation.email("invitee.email", draft.invitee_email),
        answers=_answers(page, draft.answers),
        idempotency_key=key,
        source=draft.source,
        request_only=asked_request or offline,
        asked_duration=draft.duration,
        asked_request=asked_request,
    )


def _answers(page: SchedulingPage, answers: Mapping[str, str]) -> dict[str, str]:
    """Answers to the page's form fields: known keys only, required ones present."""
    fields = {row["key"]: row for row in page.form_fields}
    unknown = sorted(set(answers) - set(fields))
    if unknown:
        raise ValidationFailed("answers", f"unknown form fields: {', '.join(unknown)[:200]}")
    checked: dict[str, str] = {}
    for key, row in fields.items():
        value = answers.get(key, "").strip()
        if not value:
            if row["required"]:
                raise ValidationFailed("answers", f"{row['label']} is required")
            continue
        if len(value) > MAX_ANSWER_LENGTH or _ANSWER_CONTROL.search(value):
            raise ValidationFailed("answers", f"{row['label']} must be plain text of at most {MAX_ANSWER_LENGTH}")
        kind = FormFieldKind(row["kind"])
        if kind is FormFieldKind.EMAIL:
            value = validation.email("answers", value)
        elif kind is not FormFieldKind.TEXTAREA and "\n" in value:
            raise ValidationFailed("answers", f"{row['label']} must be one line")
        checked[key] = value
    return checked
