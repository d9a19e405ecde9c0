"""Expected failures, returned as values (the API turns each into a union member)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NotFound:
    message: str


@dataclass(frozen=True)
class InvalidInput:
    message: str
    field: str | None = None


@dataclass(frozen=True)
class SlugTaken:
    message: str
    slug: str


class ValidationFailed(Exception):
    """Raised inside validation helpers; services turn it into an ``InvalidInput`` value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def as_result(self) -> InvalidInput:
        return InvalidInput(message=self.message, field=self.field)
