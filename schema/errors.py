"""Expected failures as union members, each with a message clients can show."""

from __future__ import annotations

import strawberry

from scheduling import errors


@strawberry.interface(description="An expected failure; nothing was changed.")
class Error:
    message: str


@strawberry.type(description="The object does not exist or belongs to someone else.")
class NotFound(Error):
    pass


@strawberry.type(description="A value was refused; `field` names the input field.")
class InvalidInput(Error):
    field: str | None


@strawberry.type(description="Another page on some domain already uses this slug (PAGE-7).")
class SlugTaken(Error):
    slug: str


ErrorType = NotFound | InvalidInput | SlugTaken


DomainError = errors.NotFound | errors.InvalidInput | errors.SlugTaken


def from_domain(error: DomainError) -> ErrorType:
    if isinstance(error, errors.NotFound):
        return NotFound(message=error.message)
    if isinstance(error, errors.InvalidInput):
        return InvalidInput(message=error.message, field=error.field)
    return SlugTaken(message=error.message, slug=error.slug)
