"""Typed domain events, their channels and their JSON form on the pub/sub hub.

Events are published only after the database transaction that caused them has committed, so a
subscriber that reacts by reading the database always sees the change.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from pubsub import EventHub

logger = logging.getLogger(__name__)


# AvailabilityChanged reasons that change busy time only, never a page's rules or state.
BUSY_TIME_REASONS = frozenset({"booking", "booking_changed", "busy_time"})


@dataclass(frozen=True)
class AvailabilityChanged:
    """An owner's free time or page state may have changed (page edit, booking, calendar)."""

    kind: ClassVar[str] = "availability_changed"
    owner_id: uuid.UUID
    reason: str
    page_ids: tuple[uuid.UUID, ...] = ()  # empty: every page of the owner

    def affects(self, page_id: uuid.UUID) -> bool:
        return not self.page_ids or page_id in self.page_ids

    @property
    def changes_pages(self) -> bool:
        """False when only busy time changed (a booking, a calendar's events): pages stay as they were."""
        return self.reason not in BUSY_TIME_REASONS

    def channel_keys(self) -> tuple[str, ...]:
        """The owner's channel, and the one every process's answer cache listens to."""
        return owner_channel_key(self.owner_id), AVAILABILITY_KEY

    def to_json(self) -> dict[str, Any]:
        return {
            "owner_id": self.owner_id.hex,
            "reason": self.reason,
            "page_ids": [page_id.hex for page_id in self.page_ids],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AvailabilityChanged:
        return cls(
            owner_id=uuid.UUID(data["owner_id"]),
            reason=str(data["reason"]),
            page_ids=tuple(uuid.UUID(value) for value in data["page_ids"]),
        )


@dataclass(frozen=True)
class BookingCreated:
    """A booking or a request was stored for the owner."""

    kind: ClassVar[str] = "booking_created"
    owner_id: uuid.UUID
    booking_id: uuid.UUID

    def channel_keys(self) -> tuple[str, ...]:
        return (owner_channel_key(self.owner_id),)

    def to_json(self) -> dict[str, Any]:
        return {"owner_id": self.owner_id.hex, "booking_id": self.booking_id.hex}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BookingCreated:
        return cls(owner_id=uuid.UUID(data["owner_id"]), booking_id=uuid.UUID(data["booking_id"]))


@dataclass(frozen=True)
class CalendarStatusChanged:
    """A calendar of the owner turned inactive, active again, or was removed.

    It carries the calendar as it was, so a removed one can still be shown.
    """

    kind: ClassVar[str] = "calendar_status_changed"
    owner_id: uuid.UUID
    calendar_id: uuid.UUID
    name: str
    is_primary: bool
    integrated: bool
    access_role: str
    status: str
    reason: str | None = None

    def channel_keys(self) -> tuple[str, ...]:
        return (owner_channel_key(self.owner_id),)

    def to_json(self) -> dict[str, Any]:
        return {
            "owner_id": self.owner_id.hex,
            "calendar_id": self.calendar_id.hex,
            "name": self.name,
            "is_primary": self.is_primary,
            "integrated": self.integrated,
            "access_role": self.access_role,
            "status": self.status,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CalendarStatusChanged:
        return cls(
            owner_id=uuid.UUID(data["owner_id"]),
            calendar_id=uuid.UUID(data["calendar_id"]),
            name=str(data["name"]),
            is_primary=bool(data["is_primary"]),
            integrated=bool(data["integrated"]),
            access_role=str(data["access_role"]),
            status=str(data["status"]),
            reason=None if data["reason"] is None else str(data["reason"]),
        )


@dataclass(frozen=True)
class ApiTokenRevoked:
    """An owner revoked a bearer token: every process closes the sockets it opened."""

    kind: ClassVar[str] = "api_token_revoked"
    owner_id: uuid.UUID
    token_id: uuid.UUID

    def channel_keys(self) -> tuple[str, ...]:
        return (API_TOKENS_KEY,)

    def to_json(self) -> dict[str, Any]:
        return {"owner_id": self.owner_id.hex, "token_id": self.token_id.hex}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ApiTokenRevoked:
        return cls(owner_id=uuid.UUID(data["owner_id"]), token_id=uuid.UUID(data["token_id"]))


Event = AvailabilityChanged | BookingCreated | CalendarStatusChanged | ApiTokenRevoked
_EVENT_TYPES: dict[
    str, type[AvailabilityChanged] | type[BookingCreated] | type[CalendarStatusChanged] | type[ApiTokenRevoked]
] = {
    AvailabilityChanged.kind: AvailabilityChanged,
    BookingCreated.kind: BookingCreated,
    CalendarStatusChanged.kind: CalendarStatusChanged,
    ApiTokenRevoked.kind: ApiTokenRevoked,
}


# Every owner's AvailabilityChanged, for caches that must forget answers of any owner.
AVAILABILITY_KEY = "availability"
# Every revoked bearer token, for the processes holding its sockets.
API_TOKENS_KEY = "api_tokens"


def owner_channel_key(owner_id: uuid.UUID) -> str:
    return f"owner_{owner_id.hex}"


def encode(event: Event) -> str:
    return json.dumps({"kind": event.kind, "data": event.to_json()}, separators=(",", ":"))


def decode(message: str) -> Event | None:
    """The event in a message, or None for a message this version does not understand."""
    try:
        envelope = json.loads(message)
        return _EVENT_TYPES[envelope["kind"]].from_json(envelope["data"])
    except (ValueError, KeyError, TypeError):
        logger.warning("ignoring an undecodable pub/sub message", extra={"size": len(message)})
        return None


class EventBus:
    """Publishes and subscribes typed events over the hub, under a channel prefix."""

    def __init__(self, hub: EventHub, prefix: str) -> None:
        self.hub = hub
        self._prefix = prefix
        self._local_listeners: list[Callable[[Event], None]] = []

    def channel(self, key: str) -> str:
        return f"{self._prefix}_{key}"

    def on_local_publish(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with each event this process publishes, before the hub sees it.

        For state of this process that must follow its own changes even when the pub/sub
        link drops the message.
        """
        self._local_listeners.append(listener)

    async def publish(self, event: Event) -> None:
        for listener in self._local_listeners:
            listener(event)
        message = encode(event)
        for key in event.channel_keys():
            await self.hub.publish(self.channel(key), message)

    @asynccontextmanager
    async def subscribe(self, key: str) -> AsyncIterator[AsyncIterator[Event]]:
        """Events on one channel; raises ``PubSubUnavailable`` if the link is lost."""
        async with self.hub.subscribe(self.channel(key)) as messages:
            yield _decoded(messages)


async def _decoded(messages: AsyncIterator[str]) -> AsyncIterator[Event]:
    async for message in messages:
        event = decode(message)
        if event is not None:
            yield event
