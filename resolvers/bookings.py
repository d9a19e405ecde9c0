"""Booking, requests and their lifecycle: visitors, invitees by signed link, and owners.

A booking, and an owner's cancel or decline, runs once more when its database connection was
lost before anything committed (``resolvers/retry.py``). Rescheduling and accepting ask the
owner's calendars first, and an invitee's link counts against the limits first: those are not
run again.
"""

from __future__ import annotations

from datetime import datetime

from db.models import Booking
from resolvers.auth import require_user
from resolvers.context import RequestContext
from resolvers.ids import parse_id
from resolvers.retry import retried_if_lost, retry_once_if_lost
from scheduling.booking import contact_tokens, manage_links
from scheduling.booking.book import AdmittedBooking, BookingView, BookResult
from scheduling.booking.lifecycle import ChangeResult
from scheduling.booking.rules import BookingDraft
from scheduling.errors import NotFound, RateLimited
from scheduling.limits import client_key

_NOT_FOUND = NotFound(message="booking not found")


def contact_token(context: RequestContext, booking: Booking) -> str | None:
    """The visitor's signed token that lets their next booking be prefilled."""
    return contact_tokens.contact_token(context.services.signer, booking, context.services.clock())


def manage_token(context: RequestContext, booking: Booking) -> str:
    """The invitee's signed link token for cancelling or rescheduling this booking."""
    return manage_links.manage_token(context.services.signer, booking)


def client_address(context: RequestContext) -> str:
    """The caller's address as counted by the limits (uvicorn resolves X-Forwarded-For from
    trusted proxies into it)."""
    client = context.request.client
    return client_key(client.host if client is not None else None)


async def book(context: RequestContext, draft: BookingDraft, *, request_only: bool) -> BookResult:
    """The limits count once; the page's lookup and the booking itself may each run once more
    after a lost connection, the booking only if its transaction had not begun to commit."""
    client = client_address(context)
    limited = await context.services.limits.public_call(client)
    if limited is not None:
        return limited
    booking = context.services.booking
    found = await retry_once_if_lost(lambda: booking.page_of(draft))
    admitted = await booking.admit(found, draft, request_only=request_only, client=client)
    if not isinstance(admitted, AdmittedBooking):
        return admitted
    return await retry_once_if_lost(lambda: booking.book(admitted))


async def _by_token_limited(context: RequestContext, token: str) -> BookingView | NotFound | RateLimited:
    """The booking of an invitee's link token, once the caller's and the page's limits allow."""
    limited = await context.services.limits.public_call(client_address(context))
    if limited is not None:
        return limited
    view = await by_token(context, token)
    if view is None:
        return _NOT_FOUND
    return await context.services.limits.page_call(view.page.id) or view


async def by_token(context: RequestContext, token: str) -> BookingView | None:
    """The booking of a current manage link; a link retired by a reschedule names nothing."""
    link = manage_links.read_manage_token(context.services.signer, token, context.services.clock())
    if link is None:
        return None
    view = await context.services.lifecycle.get(link.booking_id, owner_id=None)
    return view if view is not None and link.is_current(view.booking) else None


async def cancel_by_token(context: RequestContext, token: str) -> ChangeResult:
    view = await _by_token_limited(context, token)
    if not isinstance(view, BookingView):
        return view
    return await context.services.lifecycle.cancel(
        view.booking.id, owner_id=None, link_version=view.booking.manage_version
    )


async def reschedule_by_token(context: RequestContext, token: str, start: datetime) -> ChangeResult:
    view = await _by_token_limited(context, token)
    if not isinstance(view, BookingView):
        return view
    return await context.services.lifecycle.reschedule(
        view.booking.id, start, owner_id=None, link_version=view.booking.manage_version
    )


@retried_if_lost
async def cancel(context: RequestContext, booking_id: str) -> ChangeResult:
    user = require_user(context)
    parsed = parse_id(booking_id)
    return _NOT_FOUND if parsed is None else await context.services.lifecycle.cancel(parsed, owner_id=user.id)


async def reschedule(context: RequestContext, booking_id: str, start: datetime) -> ChangeResult:
    user = require_user(context)
    parsed = parse_id(booking_id)
    if parsed is None:
        return _NOT_FOUND
    return await context.services.lifecycle.reschedule(parsed, start, owner_id=user.id)


async def accept(context: RequestContext, booking_id: str) -> ChangeResult:
    user = require_user(context)
    parsed = parse_id(booking_id)
    return _NOT_FOUND if parsed is None else await context.services.lifecycle.accept(parsed, owner_id=user.id)


@retried_if_lost
async def decline(context: RequestContext, booking_id: str) -> ChangeResult:
    user = require_user(context)
    parsed = parse_id(booking_id)
    return _NOT_FOUND if parsed is None else await context.services.lifecycle.decline(parsed, owner_id=user.id)
