"""Following an owner's calendar status over a real WebSocket, and the emails an incident sends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gql import GraphQLRequest, gql

from tests.support.booking_helpers import Owner
from tests.support.live_server import LiveServer
from tests.support.polling import eventually
from tests.support.smtp_sink import SmtpSink
from tests.support.ws_client import Watcher, ws_session

STATUS_CHANGED = GraphQLRequest(
    gql(
        """
        subscription {
          calendarStatusChanged { status reason calendar { id name status inactiveReason isPrimary } }
        }
        """
    )
)


def inactive_mail(sink: SmtpSink) -> list[Any]:
    return [mail for mail in sink.messages if "calendar is inactive" in str(mail.message["Subject"])]


async def subscribed(server: LiveServer, count: int) -> None:
    """The protocol does not acknowledge a subscription: wait until the hub holds ``count``."""
    await eventually(lambda: _subscribers(server), lambda value: value >= count, "subscriptions on the hub")


async def _subscribers(server: LiveServer) -> int:
    return server.services.bus.hub.stats.subscribers


@asynccontextmanager
async def watching_status(server: LiveServer, owner: Owner) -> AsyncIterator[Watcher]:
    """The owner's ``calendarStatusChanged``, live on the server before the block starts."""
    before = server.services.bus.hub.stats.subscribers
    async with ws_session(server.ws_url, "graphql-transport-ws", token=owner.token) as socket:
        watcher = Watcher(socket, {}, STATUS_CHANGED)
        await subscribed(server, before + 1)
        try:
            yield watcher
        finally:
            await watcher.close()


async def status_event(watcher: Watcher) -> dict[str, Any]:
    """The next status change pushed to the owner."""
    pushed = await watcher.next()
    assert isinstance(pushed, dict), pushed
    return dict(pushed["calendarStatusChanged"])
