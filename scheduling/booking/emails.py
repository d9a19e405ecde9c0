"""Outbox handlers that compose and send booking emails at delivery time.

Each reads the booking as it is now, so a retried email never shows stale times, and raises
on delivery failure so the outbox retries with backoff.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from db.engine import Database
from db.models import Booking, SchedulingPage, User
from scheduling import outbox
from scheduling.booking import manage_links
from scheduling.clock import Clock
from scheduling.notifications import messages
from scheduling.notifications.mailer import Mailer
from scheduling.outbox import Handler
from scheduling.pages.links import LinkBuilder
from scheduling.signing import Signer


@dataclass(frozen=True)
class _Context:
    booking: Booking
    page: SchedulingPage
    owner: User
    page_url: str

    @property
    def uid(self) -> str:
        return f"{self.booking.id.hex}@kokous"

    def meeting(self) -> messages.MeetingFacts:
        booking = self.booking
        return messages.MeetingFacts(
            page_name=self.page.name,
            owner_name=self.owner.name or self.owner.email,
            owner_email=self.owner.email,
            owner_time_zone=self.owner.timezone,
            invitee_name=booking.invitee_name,
            invitee_email=booking.invitee_email,
            invitee_time_zone=booking.invitee_timezone,
            start=booking.start_at,
            end=booking.end_at,
            answers=booking.answers,
        )


class BookingEmails:
    def __init__(
        self,
        *,
        db: Database,
        mailer: Mailer,
        signer: Signer,
        links: LinkBuilder,
        clock: Clock,
        dashboard_url: str,
    ) -> None:
        self._db = db
        self._mailer = mailer
        self._signer = signer
        self._links = links
        self._clock = clock
        self._dashboard_url = dashboard_url

    def handlers(self) -> dict[str, Handler]:
        return {
            outbox.EMAIL_BOOKING_CONFIRMED: self._confirmed,
            outbox.EMAIL_BOOKING_RESCHEDULED: self._rescheduled,
            outbox.EMAIL_BOOKING_CANCELLED: self._cancelled,
            outbox.EMAIL_REQUEST_RECEIVED: self._request_received,
            outbox.EMAIL_REQUEST_DECLINED: self._request_declined,
            outbox.EMAIL_REQUEST_MOVED: self._request_moved,
            outbox.EMAIL_OWNER_NEW_BOOKING: self._owner_new_booking,
            outbox.EMAIL_OWNER_NEW_REQUEST: self._owner_new_request,
            outbox.EMAIL_OWNER_MOVED_OUTSIDE_RULES: self._owner_moved_outside_rules,
            outbox.EMAIL_OWNER_MOVE_NOT_FOLLOWED: self._owner_move_not_followed,
        }

    async def _load(self, payload: dict[str, Any]) -> _Context | None:
        """The booking and what the email needs of it; None if it was deleted meanwhile."""
        async with self._db.session() as session:
            booking = await session.get(Booking, uuid.UUID(payload["booking_id"]))
            if booking is None:
                return None
            page = await session.get(SchedulingPage, booking.page_id)
            owner = await session.get(User, booking.owner_id)
        if page is None or owner is None:
            return None
        return _Context(booking=booking, page=page, owner=owner, page_url=self._links.page_url(page, owner))

    async def _send(self, message: EmailMessage | None) -> None:
        if message is not None:
            await self._mailer.send(message)

    def _sequence(self) -> int:
        """Later invitations must carry a higher SEQUENCE; minutes since the epoch always grow."""
        return int(self._clock().timestamp() // 60)

    def _confirmation(self, context: _Context, *, rescheduled: bool) -> EmailMessage:
        token = manage_links.manage_token(self._signer, context.booking)
        return messages.booking_confirmation(
            context.meeting(),
            uid=context.uid,
            cancel_url=manage_links.manage_url(context.page_url, token, "cancel"),
            reschedule_url=manage_links.manage_url(context.page_url, token, "reschedule"),
            sequence=self._sequence() if rescheduled else 0,
            rescheduled=rescheduled,
        )

    async def _confirmed(self, payload: dict[str, Any]) -> None:
        context = await self._load(payload)
        await self._send(None if context is None else self._confirmation(context, rescheduled=False))

    async def _rescheduled(self, payload: dict[str, Any]) -> None:
        context = await self._load(payload)
        await self._send(None if context is None else self._confirmation(context, rescheduled=True))

    async def _cancelled(self, payload: dict[str, Any]) -> None:
        context = await self._load(payload)
        if context is not None:
            await self._send(
                messages.booking_cancelled(
                    context.meeting(), uid=context.uid, sequence=self._sequence(), book_again_url=context.page_url
                )
            )

    async def _request_received(self, payload: dict[str, Any]) -> None:
        context = await self._load(payload)
        await self._send(None if context is None else messages.request_received(context.meeting()))

    async def _request_moved(self, payload: dict[str, Any]) -> None:
        context = await self._load(payload)
        await self._send(None if context is None else messages.request_received(context.meeting(), moved=True))

    async def _request_declined(self, payload: dict[str, Any]) -> None:
        context = await self._load(payload)
        if context is not None:
            await self._send(messages.request_declined(context.meeting(), book_again_url=context.page_url))

    async def _owner_new_booking(self, payload: dict[str, Any]) -> None:
        context = await self._load(payload)
        if context is not None:
            await self._send(messages.owner_new_booking(context.meeting(), booking_url=self._dashboard_url))

    async def _owner_new_request(self, payload: dict[str, Any]) -> None:
        context = await self._load(payload)
        if context is not None:
            await self._send(messages.owner_new_request(context.meeting(), requests_url=self._dashboard_url))

    async def _owner_moved_outside_rules(self, payload: dict[str, Any]) -> None:
        context = await self._load(payload)
        if context is not None:
            await self._send(messages.owner_moved_outside_rules(context.meeting(), booking_url=self._dashboard_url))

    async def _owner_move_not_followed(self, payload: dict[str, Any]) -> None:
        context = await self._load(payload)
        if context is not None:
            await self._send(messages.owner_move_not_followed(context.meeting(), booking_url=self._dashboard_url))
