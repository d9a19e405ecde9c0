"""Every expected failure as a GraphQL type, and the one mapping from the domain's failures.

A mutation's result is a union of its success type and some of these; each implements ``Error``
(a ``message`` clients can show) and nothing was changed when one comes back. Python names end
in ``Error``; the GraphQL names are the domain's (``SlotUnavailable``, ``NotFound``, ...).
``error_from_domain`` turns any domain failure into its GraphQL type: add a failure to the
table and every mutation that can return it maps it the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, overload

import strawberry

from common.values import CalendarProvider, ConnectionFailure
from scheduling import errors as domain
from schema import enums as _enums  # noqa: F401  (registers the enums)
from schema.slot_types import Slot, slots_in_zone


@strawberry.interface(description="An expected failure; nothing was changed.")
class Error:
    message: str


@strawberry.type(name="NotFound", description="The object does not exist or belongs to someone else.")
class NotFoundError(Error):
    pass


@strawberry.type(name="InvalidInput", description="A value was refused; `field` names the input field.")
class InvalidInputError(Error):
    field: str | None


@strawberry.type(name="SlugTaken", description="Another page, on any domain, already uses this slug.")
class SlugTakenError(Error):
    slug: str


@strawberry.type(name="SlotUnavailable", description="The time was taken or is not bookable; nothing was stored.")
class SlotUnavailableError(Error):
    alternatives: list[Slot] = strawberry.field(
        description="Up to three nearest free slots, in the invitee's time zone."
    )


@strawberry.type(
    name="CalendarInactive",
    description="An integrated calendar of the owner is inactive; nobody can book for now.",
)
class CalendarInactiveError(Error):
    pass


@strawberry.type(
    name="CalendarUnreachable",
    description="The owner's calendar could not be checked just now and nothing was booked; try again shortly.",
)
class CalendarUnreachableError(Error):
    retry_after_seconds: int


@strawberry.type(
    name="RateLimited",
    description="Too many requests from this client or on this page; nothing was changed. "
    "Try again after `retryAfterSeconds`.",
)
class RateLimitedError(Error):
    retry_after_seconds: int


@strawberry.type(name="PageNotFound", description="No page with that slug is served on that domain.")
class PageNotFoundError(Error):
    pass


@strawberry.type(
    name="PrimaryCalendarNotRemovable",
    description="The primary calendar receives your bookings and goes only with its account: "
    "use disconnectCalendarConnection with `connectionId`.",
)
class PrimaryCalendarNotRemovableError(Error):
    connection_id: strawberry.ID


@strawberry.type(name="PermissionRequired", description="A setting must be turned on first; `setting` names it.")
class PermissionRequiredError(Error):
    setting: str


@strawberry.type(name="ProviderNotConfigured", description="The operator has not configured this calendar provider.")
class ProviderNotConfiguredError(Error):
    provider: CalendarProvider


@strawberry.type(name="ConnectionLimitReached", description="The account holds as many calendar connections as it may.")
class ConnectionLimitReachedError(Error):
    pass


@strawberry.type(
    name="CalendarConnectionFailed", description="The provider refused or could not be reached; `reason` says which."
)
class CalendarConnectionFailedError(Error):
    reason: ConnectionFailure


@strawberry.type(
    name="ContactExists", description="You have a contact with this email address already; `contactId` names it."
)
class ContactExistsError(Error):
    contact_id: strawberry.ID


_TABLE: dict[type[Any], Callable[[Any], Error]] = {
    domain.NotFound: lambda error: NotFoundError(message=error.message),
    domain.InvalidInput: lambda error: InvalidInputError(message=error.message, field=error.field),
    domain.SlugTaken: lambda error: SlugTakenError(message=error.message, slug=error.slug),
    domain.SlotUnavailable: lambda error: SlotUnavailableError(
        message=error.message, alternatives=slots_in_zone(error.alternatives, error.timezone)
    ),
    domain.CalendarInactive: lambda error: CalendarInactiveError(message=error.message),
    domain.CalendarUnreachable: lambda error: CalendarUnreachableError(
        message=error.message, retry_after_seconds=error.retry_after_seconds
    ),
    domain.PageNotFound: lambda error: PageNotFoundError(message=error.message),
    domain.RateLimited: lambda error: RateLimitedError(
        message=error.message, retry_after_seconds=error.retry_after_seconds
    ),
    domain.PrimaryCalendarNotRemovable: lambda error: PrimaryCalendarNotRemovableError(
        message=error.message, connection_id=strawberry.ID(str(error.connection_id))
    ),
    domain.PermissionRequired: lambda error: PermissionRequiredError(message=error.message, setting=error.setting),
    domain.ProviderNotConfigured: lambda error: ProviderNotConfiguredError(
        message=error.message, provider=error.provider
    ),
    domain.ConnectionLimitReached: lambda error: ConnectionLimitReachedError(message=error.message),
    domain.ConnectionFailed: lambda error: CalendarConnectionFailedError(message=error.message, reason=error.reason),
    domain.ContactExists: lambda error: ContactExistsError(
        message=error.message, contact_id=strawberry.ID(str(error.contact_id))
    ),
}


# The overloads give each domain failure its GraphQL type, so a union of failures maps to the
# union of their types (mypy checks every mutation's result union against them).
@overload
def error_from_domain(error: domain.NotFound) -> NotFoundError: ...
@overload
def error_from_domain(error: domain.InvalidInput) -> InvalidInputError: ...
@overload
def error_from_domain(error: domain.SlugTaken) -> SlugTakenError: ...
@overload
def error_from_domain(error: domain.SlotUnavailable) -> SlotUnavailableError: ...
@overload
def error_from_domain(error: domain.CalendarInactive) -> CalendarInactiveError: ...
@overload
def error_from_domain(error: domain.CalendarUnreachable) -> CalendarUnreachableError: ...
@overload
def error_from_domain(error: domain.PageNotFound) -> PageNotFoundError: ...
@overload
def error_from_domain(error: domain.RateLimited) -> RateLimitedError: ...
@overload
def error_from_domain(error: domain.PrimaryCalendarNotRemovable) -> PrimaryCalendarNotRemovableError: ...
@overload
def error_from_domain(error: domain.PermissionRequired) -> PermissionRequiredError: ...
@overload
def error_from_domain(error: domain.ProviderNotConfigured) -> ProviderNotConfiguredError: ...
@overload
def error_from_domain(error: domain.ConnectionLimitReached) -> ConnectionLimitReachedError: ...
@overload
def error_from_domain(error: domain.ConnectionFailed) -> CalendarConnectionFailedError: ...
@overload
def error_from_domain(error: domain.ContactExists) -> ContactExistsError: ...
def error_from_domain(error: domain.Expected) -> Error:
    """The GraphQL type of a domain failure, with its fields (alternatives in the invitee's zone)."""
    return _TABLE[type(error)](error)


# Registered with the schema, so each exists there even before a union uses it.
ERROR_TYPES: tuple[type[Error], ...] = (
    NotFoundError,
    InvalidInputError,
    SlugTakenError,
    SlotUnavailableError,
    CalendarInactiveError,
    CalendarUnreachableError,
    PageNotFoundError,
    RateLimitedError,
    PrimaryCalendarNotRemovableError,
    PermissionRequiredError,
    ProviderNotConfiguredError,
    ConnectionLimitReachedError,
    CalendarConnectionFailedError,
    ContactExistsError,
)
