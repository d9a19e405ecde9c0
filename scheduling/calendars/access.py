"""Using a stored connection: open its adapter, keep refreshed tokens, notice lost access.

Every caller that talks to a provider for a connection goes through ``ProviderAccess.client``,
so credentials are decrypted in one place, tokens a provider refreshed are stored again, and an
authentication failure turns the connection's calendars inactive at once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlmodel import col, select

from common.values import CalendarProvider, CalendarStatus
from db.engine import Database
from db.models import Calendar, CalendarConnection, ConnectionAttempt
from providers.base import CalendarClient
from providers.errors import ProviderAuthError, ProviderError, ProviderUnavailable
from scheduling.calendars.clients import ProviderClients
from scheduling.calendars.status import status_changed
from scheduling.calendars.vault import CredentialsUnreadable, CredentialVault
from scheduling.clock import Clock
from scheduling.events import AvailabilityChanged, EventBus

logger = logging.getLogger(__name__)

EXCHANGE_AUTH_FAILURES = 2  # a single EWS 401 can be a fluke of NTLM negotiation


class RefusedOnce(ProviderUnavailable):
    """A login refused once where a second refusal in a row is needed to call access lost.

    Passing to a background caller (the next try decides); a caller that must decide now (the
    live check at booking time) asks again at once.
    """


class ProviderAccess:
    def __init__(
        self, *, db: Database, vault: CredentialVault, clients: ProviderClients, bus: EventBus, clock: Clock
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
            if await self._auth_failed(connection, exc):
                raise
            # Counted, not lost: to every caller (a write, the live check, the sync) this refusal
            # is a passing failure, retried like an outage.
            raise RefusedOnce(f"{exc.message} (once; access is lost if it repeats)", code=exc.code) from exc
        else:
            if connection.auth_failures:
                await self._set_auth_failures(connection.id, 0)
        finally:
            await self._keep_refreshed(connection.id, stored, client)
            await client.aclose()

    async def _auth_failed(self, connection: CalendarConnection, error: ProviderAuthError) -> bool:
        """Lost access (True), except that Exchange's first 401 in a row is only counted (the second in a row loses access)."""
        failures = await self._set_auth_failures(connection.id, None)
        if connection.provider == CalendarProvider.EXCHANGE and failures < EXCHANGE_AUTH_FAILURES:
            logger.info("Exchange connection %s refused a login (%d in a row)", connection.id, failures)
            return False
        await self.lose_access(connection, error)
        return True

    async def _set_auth_failures(self, connection_id: uuid.UUID, value: int | None) -> int:
        """Set the count (None: add one); returns the new count."""
        async with self.db.transaction() as session:
            row = await session.get(CalendarConnection, connection_id)
            if row is None:
                return 0
            row.auth_failures = row.auth_failures + 1 if value is None else value
            session.add(row)
            return row.auth_failures

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

    async def reseal_all(self) -> tuple[int, int]:
        """Re-encrypt every stored credential with the newest key; (re-sealed, unreadable).

        Run after putting a new key first in ``KOKOUS_SECRET_KEYS``; once it reports nothing
        unreadable, the old key can be dropped. Unreadable values are left as they are.
        """
        resealed = unreadable = 0
        async with self.db.transaction() as session:
            rows: list[CalendarConnection | ConnectionAttempt] = [
                *(await session.exec(select(CalendarConnection))).all(),
                *(await session.exec(select(ConnectionAttempt))).all(),
            ]
            for row in rows:
                sealed = row.credentials if isinstance(row, CalendarConnection) else row.verifier
                if sealed is None:
                    continue
                try:
                    fresh = self.vault.rotate(sealed)
                except CredentialsUnreadable:
                    unreadable += 1
                    continue
                if isinstance(row, CalendarConnection):
                    row.credentials = fresh
                else:
                    row.verifier = fresh
                session.add(row)
                resealed += 1
        return resealed, unreadable

    async def lose_access(
        self, connection: CalendarConnection, error: ProviderError, *, external_id: str | None = None
    ) -> None:
        """Every calendar of the connection (or only the one named) turns inactive, with
        the reason and the time."""
        now = self._clock()
        reason = (error.code or error.message)[:200]
        async with self.db.transaction() as session:
            query = select(Calendar).where(
                Calendar.connection_id == connection.id, col(Calendar.status) == CalendarStatus.ACTIVE
            )
            if external_id is not None:
                query = query.where(Calendar.external_id == external_id)
            calendars = (await session.exec(query)).all()
            for calendar in calendars:
                calendar.status = CalendarStatus.INACTIVE
                calendar.inactive_reason = reason
                calendar.inactive_since = now
                session.add(calendar)
        if calendars:
            logger.warning("calendar connection %s lost access: %s", connection.id, reason)
            await self._bus.publish(AvailabilityChanged(owner_id=connection.user_id, reason="calendar_inactive"))
            for calendar in calendars:
                await self._bus.publish(status_changed(connection.user_id, calendar))
