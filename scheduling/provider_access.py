"""Using a stored connection: open its adapter, keep refreshed tokens, notice lost access.

Every caller that talks to a provider for a connection goes through ``ProviderAccess.client``,
so credentials are decrypted in one place, tokens a provider refreshed are stored again, and an
authentication failure turns the connection's calendars inactive at once (INACT-1).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlmodel import col, select

from db.engine import Database
from db.models import Calendar, CalendarConnection
from providers.base import CalendarClient
from providers.errors import ProviderAuthError, ProviderError
from scheduling.clock import Clock
from scheduling.events import AvailabilityChanged, EventBus
from scheduling.provider_clients import ProviderClients
from scheduling.values import CalendarStatus
from scheduling.vault import CredentialsUnreadable, CredentialVault

logger = logging.getLogger(__name__)


class ProviderAccess:
    def __init__(
        self, db: Database, vault: CredentialVault, clients: ProviderClients, bus: EventBus, clock: Clock
    ) -> None:
        self.db = db
        self.vault = vault
        self.clients = clients
        self._bus = bus
        self._clock = clock

    @asynccontextmanager
    async def client(self, connection: CalendarConnection) -> AsyncIterator[CalendarClient]:
        """An adapter for the connection; raises ``ProviderError`` (auth errors also mark it inactive)."""
        try:
            stored = self._credentials(connection)
            client = self.clients.client(connection.provider, stored)
        except ProviderAuthError as exc:
            await self.lose_access(connection, exc)
            raise
        try:
            yield client
        except ProviderAuthError as exc:
            await self.lose_access(connection, exc)
            raise
        finally:
            await self._keep_refreshed(connection.id, stored, client)
            await client.aclose()

    def _credentials(self, connection: CalendarConnection) -> str:
        if connection.credentials is None:
            raise ProviderAuthError("the calendar is disconnected", code="no_credentials")
        try:
            return self.vault.open(connection.credentials)
        except CredentialsUnreadable as exc:
            raise ProviderAuthError(
                "stored credentials cannot be read; reconnect", code="credentials_unreadable"
            ) from exc

    async def _keep_refreshed(self, connection_id: uuid.UUID, stored: str, client: CalendarClient) -> None:
        current = client.credentials_json()
        if current == stored:
            return
        async with self.db.transaction() as session:
            row = await session.get(CalendarConnection, connection_id)
            if row is not None and row.credentials is not None:  # not disconnected meanwhile
                row.credentials = self.vault.seal(current)
                session.add(row)

    async def lose_access(self, connection: CalendarConnection, error: ProviderError) -> None:
        """INACT-1: every calendar of the connection turns inactive, with the reason and the time."""
        now = self._clock()
        reason = (error.code or error.message)[:200]
        async with self.db.transaction() as session:
            calendars = (
                await session.exec(
                    select(Calendar).where(
                        Calendar.connection_id == connection.id, col(Calendar.status) == CalendarStatus.ACTIVE
                    )
                )
            ).all()
            for calendar in calendars:
                calendar.status = CalendarStatus.INACTIVE
                calendar.inactive_reason = reason
                calendar.inactive_since = now
                session.add(calendar)
        if calendars:
            logger.warning("calendar connection %s lost access: %s", connection.id, reason)
            await self._bus.publish(AvailabilityChanged(owner_id=connection.user_id, reason="calendar_inactive"))
