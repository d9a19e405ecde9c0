"""Connecting and disconnecting calendars.

Google and Microsoft connect through OAuth: ``scheduling.calendars.oauth_flow`` has its steps,
up to a grant the owner has confirmed.

Exchange and CalDAV connect with a form that is tested against the server before anything is
saved. Either way (for OAuth, on confirmation) the account's calendars are listed (only those
whose details the owner can read), the primary one is integrated, and busy time is fetched at once. Connecting the same account again replaces its credentials and
makes its calendars active again: that is how an inactive calendar is repaired.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.values import CalendarProvider, CalendarStatus, ConnectionFailure
from db.models import BusyInterval, Calendar, CalendarConnection, User
from providers.base import CalendarClient, ConnectedAccount, ProviderCalendar
from providers.caldav import connect as connect_caldav_server
from providers.errors import ProviderAuthError, ProviderError, ProviderUnavailable, ProviderUnsupported
from providers.exchange import connect as connect_exchange_server
from scheduling.calendars.access import ProviderAccess
from scheduling.calendars.busy_sync import BusySync
from scheduling.calendars.clients import OAUTH_PROVIDERS
from scheduling.calendars.directory import ConnectionView
from scheduling.calendars.oauth_flow import OAuthConnecting
from scheduling.calendars.public_urls import points_inside
from scheduling.calendars.rules import (
    ONE_CONNECTION_CUTOVER,
    CalDAVAccountForm,
    ExchangeAccountForm,
    checked_caldav,
    checked_exchange,
    connection_limit,
    limit_reached,
)
from scheduling.calendars.status import status_changed
from scheduling.calendars.vault import CredentialsUnreadable
from scheduling.clock import Clock
from scheduling.errors import (
    ConnectionFailed,
    ConnectionLimitReached,
    InvalidInput,
    NotFound,
    PermissionRequired,
    PrimaryCalendarNotRemovable,
    Refused,
    ValidationFailed,
)
from scheduling.events import AvailabilityChanged, CalendarStatusChanged, EventBus
from scheduling.signing import Signer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Disconnected:
    connection_id: uuid.UUID
    calendar_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class CalendarRemoved:
    calendar_id: uuid.UUID


ConnectResult = ConnectionView | PermissionRequired | ConnectionLimitReached | ConnectionFailed | InvalidInput
ConfirmResult = ConnectResult | NotFound  # confirming an OAuth grant (``oauth_flow``)


def failure_of(error: ProviderError) -> ConnectionFailed:
    """A provider's refusal as the typed error the owner sees, with what to do about it.

    The owner gets our own sentence; what the far side said goes to the log only.
    """
    logger.info("connection not made: %s", error)
    if isinstance(error, ProviderAuthError):
        return ConnectionFailed(message=error.message, reason=ConnectionFailure.AUTHENTICATION_FAILED)
    if isinstance(error, ProviderUnsupported):
        return ConnectionFailed(message=error.message, reason=ConnectionFailure.VERSION_UNSUPPORTED)
    if isinstance(error, ProviderUnavailable):
        return ConnectionFailed(message=error.message, reason=ConnectionFailure.UNREACHABLE)
    return ConnectionFailed(message=error.message, reason=ConnectionFailure.REFUSED)


class ConnectionService(OAuthConnecting):
    def __init__(
        self,
        *,
        access: ProviderAccess,
        busy: BusySync,
        bus: EventBus,
        signer: Signer,
        clock: Clock,
        dashboard_url: str,
    ) -> None:
        busy.also_each_pass(self.expire_pending)
        self._access = access
        self._db = access.db
        self._vault = access.vault
        self._clients = access.clients
        self._busy = busy
        self._bus = bus
        self._signer = signer
        self._clock = clock
        self._dashboard_url = dashboard_url

    def _failure(self, error: ProviderError) -> ConnectionFailed:
        """For ``OAuthConnecting``: a refusal as ``failure_of`` tells it."""
        return failure_of(error)

    # -- forms ------------------------------------------------------------------------------------

    async def connect_exchange(self, owner: User, form: ExchangeAccountForm) -> ConnectResult:
        """Tested against the server before anything is saved."""
        try:
            checked = checked_exchange(form)
        except ValidationFailed as failure:
            return failure.as_result()
        config = self._clients.settings.exchange
        return await self._connect_with_form(
            owner,
            CalendarProvider.EXCHANGE,
            ("ewsUrl", checked.ews_url),
            lambda: connect_exchange_server(checked, config),
        )

    async def connect_caldav(self, owner: User, form: CalDAVAccountForm) -> ConnectResult:
        try:
            checked = checked_caldav(form)
        except ValidationFailed as failure:
            return failure.as_result()
        config = self._clients.settings.caldav
        return await self._connect_with_form(
            owner, CalendarProvider.CALDAV, ("url", checked.url), lambda: connect_caldav_server(checked, config)
        )

    async def _connect_with_form(
        self,
        owner: User,
        provider: CalendarProvider,
        typed_url: tuple[str, str | None],
        test_connection: Callable[[], Awaitable[ConnectedAccount]],
    ) -> ConnectResult:
        """The rules first, then the server is tried; only a working account is saved."""
        problem = await self._may_connect(owner, provider) or await self._outside_only(*typed_url)
        if problem is not None:
            return problem
        try:
            account = await test_connection()
        except ProviderError as exc:
            return failure_of(exc)
        return await self._save(owner, provider, account.to_json(), account.account_email)

    # -- the rules and the saving -----------------------------------------------------------------

    async def _outside_only(self, field: str, url: str | None) -> InvalidInput | None:
        policy = self._clients.settings.outbound
        if url is None or not policy.restrict or not await points_inside(url, policy):
            return None
        return InvalidInput(message=f"{field} must be a server on the internet, not a private address", field=field)

    async def _may_connect(
        self, owner: User, provider: CalendarProvider
    ) -> PermissionRequired | ConnectionLimitReached | None:
        if not owner.personal_email_access:  # connecting reads the owner's mail and calendar
            return PermissionRequired(
                message="turn on personal email access in your settings before connecting a calendar",
                setting="personalEmailAccess",
            )
        async with self._db.session() as session:
            connections = (
                await session.exec(select(CalendarConnection).where(CalendarConnection.user_id == owner.id))
            ).all()
        if len(connections) < connection_limit(owner) or any(c.provider == provider for c in connections):
            return None  # room for one more, or perhaps reconnecting an account of this provider
        return limit_reached(owner)

    async def _save(
        self, owner: User, provider: CalendarProvider, credentials_json: str, account_email: str
    ) -> ConnectResult:
        try:
            async with self._unsaved_client(provider, credentials_json) as client:
                calendars = await client.list_calendars()
        except ProviderError as exc:
            return failure_of(exc)
        sealed = self._vault.seal(credentials_json)
        try:
            async with self._db.transaction(write=True) as session:
                connection = await self._connection_for(session, owner, provider, account_email, sealed)
                changes = await _store_calendars(session, connection, calendars)
                connection_id = connection.id
        except Refused as refused:
            result = refused.result
            assert isinstance(result, ConnectionLimitReached)
            return result
        await self._bus.publish(AvailabilityChanged(owner_id=owner.id, reason="calendar_connected"))
        for change in changes:
            await self._bus.publish(change)
        await self._busy.refresh(connection_id)
        return await self._view(connection_id)

    @asynccontextmanager
    async def _unsaved_client(self, provider: CalendarProvider, credentials_json: str) -> AsyncIterator[CalendarClient]:
        """A client for credentials that are not (or no longer) stored: failures mark nothing inactive."""
        client = self._clients.client(provider, credentials_json)
        try:
            yield client
        finally:
            await client.aclose()

    async def _connection_for(
        self, session: AsyncSession, owner: User, provider: CalendarProvider, email: str, sealed: bytes
    ) -> CalendarConnection:
        """The account's existing connection (reconnecting), or a new one if the rules allow it."""
        existing = (
            await session.exec(
                select(CalendarConnection).where(
                    CalendarConnection.user_id == owner.id,
                    CalendarConnection.provider == provider,
                    func.lower(CalendarConnection.account_email) == email.lower(),
                )
            )
        ).first()
        if existing is not None:
            existing.credentials = sealed
            session.add(existing)
            return existing
        count = (
            await session.exec(
                select(func.count()).select_from(CalendarConnection).where(CalendarConnection.user_id == owner.id)
            )
        ).one()
        fresh = await session.get(User, owner.id)
        if fresh is None or count >= connection_limit(fresh):
            raise Refused(limit_reached(owner))
        connection = CalendarConnection(
            user_id=owner.id,
            provider=provider,
            account_email=email,
            credentials=sealed,
            calendar_sync=provider in OAUTH_PROVIDERS,  # on by default for Google and Microsoft 365
            scheduling_pages=True,
            created_at=self._clock(),
        )
        session.add(connection)
        await session.flush()
        return connection

    async def _view(self, connection_id: uuid.UUID) -> ConnectionView:
        async with self._db.session() as session:
            connection = await session.get(CalendarConnection, connection_id)
            assert connection is not None
            calendars = (
                await session.exec(
                    select(Calendar).where(Calendar.connection_id == connection_id).order_by(col(Calendar.name))
                )
            ).all()
        return ConnectionView(connection=connection, calendars=tuple(calendars))

    # -- choosing and removing ------------------------------------------------------------------

    async def _revoke(self, provider: CalendarProvider, sealed: bytes) -> None:
        """Best effort, after the credentials are already gone here: a failure is only logged."""
        try:
            credentials_json = self._vault.open(sealed)
        except CredentialsUnreadable as exc:
            logger.info("%s grant not revoked at the provider: %s", provider.value, exc)
            return
        await self._revoke_json(provider, credentials_json)

    async def _revoke_json(self, provider: CalendarProvider, credentials_json: str) -> None:
        try:
            async with self._unsaved_client(provider, credentials_json) as client:
                await client.revoke()
        except (ProviderError, ValueError) as exc:
            logger.info("%s grant not revoked at the provider: %s", provider.value, exc)

    async def reseal_credentials(self) -> tuple[int, int]:
        """After a key rotation: every stored credential sealed with the newest key (see ``ProviderAccess``)."""
        return await self._access.reseal_all()

    async def set_integrated(
        self, owner_id: uuid.UUID, calendar_id: uuid.UUID, integrated: bool
    ) -> Calendar | NotFound:
        """Whether the calendar's busy time counts against the owner's availability."""
        async with self._db.transaction() as session:
            calendar = await _owned_calendar(session, owner_id, calendar_id)
            if calendar is None:
                return NotFound(message="calendar not found")
            calendar.integrated = integrated
            session.add(calendar)
        if integrated:
            await self._busy.refresh(calendar.connection_id)
        else:
            await self._stop_channels(calendar)
        await self._bus.publish(AvailabilityChanged(owner_id=owner_id, reason="integrated_calendars"))
        return calendar

    async def _stop_channels(self, calendar: Calendar) -> None:
        """A calendar that no longer counts needs no change notifications."""
        async with self._db.session() as session:
            connection = await session.get(CalendarConnection, calendar.connection_id)
        if connection is not None:
            await self._busy.stop_channels(connection, [calendar.id])

    async def remove_calendar(
        self, owner_id: uuid.UUID, calendar_id: uuid.UUID
    ) -> CalendarRemoved | PrimaryCalendarNotRemovable | NotFound:
        """Take one calendar out of the owner's calendars; the connection and its other
        calendars stay.

        Its busy time is dropped and it no longer counts, so an owner whose only inactive
        calendar it was can be booked again at once. It stays in the connection's calendar list
        (not integrated), from where the owner may add it again later. The primary calendar,
        where bookings are written, goes only with its whole connection (``disconnect``).
        """
        async with self._db.transaction() as session:
            calendar = await _owned_calendar(session, owner_id, calendar_id)
            if calendar is None:
                return NotFound(message="calendar not found")
            if calendar.is_primary:
                return PrimaryCalendarNotRemovable(
                    message="the primary calendar receives your bookings and cannot be removed alone; "
                    "disconnect its account instead",
                    connection_id=calendar.connection_id,
                )
            await session.exec(delete(BusyInterval).where(col(BusyInterval.calendar_id) == calendar.id))
            calendar.integrated = False
            calendar.status = CalendarStatus.ACTIVE
            calendar.inactive_reason = calendar.inactive_since = calendar.inactive_notified_at = None
            calendar.busy_synced_at = calendar.covered_from = calendar.covered_until = calendar.busy_failed_at = None
            session.add(calendar)
        await self._stop_channels(calendar)
        await self._bus.publish(AvailabilityChanged(owner_id=owner_id, reason="calendar_removed"))
        await self._bus.publish(status_changed(owner_id, calendar, CalendarStatus.REMOVED))
        return CalendarRemoved(calendar_id=calendar.id)

    async def disconnect(self, owner_id: uuid.UUID, connection_id: uuid.UUID) -> Disconnected | NotFound:
        """The whole account: the connection and its credentials are deleted at once.

        Its calendars and cached busy time go with it, and the grant is revoked where the provider
        allows; pages fall back to offline when no other connection takes bookings. An account
        allowed two connections keeps one from then on.
        """
        now = self._clock()
        async with self._db.session() as session:
            leaving = await session.get(CalendarConnection, connection_id)
            if leaving is not None and leaving.user_id == owner_id:
                ids = (await session.exec(select(Calendar.id).where(Calendar.connection_id == connection_id))).all()
        if leaving is not None and leaving.user_id == owner_id:
            await self._busy.stop_channels(leaving, list(ids))  # while its credentials still work
        async with self._db.transaction() as session:
            connection = await session.get(CalendarConnection, connection_id)
            if connection is None or connection.user_id != owner_id:
                return NotFound(message="calendar connection not found")
            removed = (await session.exec(select(Calendar).where(Calendar.connection_id == connection.id))).all()
            changes = [status_changed(owner_id, each, CalendarStatus.REMOVED) for each in removed]
            owner = await session.get(User, owner_id)
            if (
                owner is not None
                and owner.created_at < ONE_CONNECTION_CUTOVER
                and owner.single_connection_since is None
            ):
                owner.single_connection_since = now
                session.add(owner)
            provider, sealed = CalendarProvider(connection.provider), connection.credentials
            connection.credentials = None  # gone even if a delete cascade were to fail
            await session.delete(connection)
        await self._bus.publish(AvailabilityChanged(owner_id=owner_id, reason="calendar_disconnected"))
        for change in changes:
            await self._bus.publish(change)
        if sealed is not None:
            await self._revoke(provider, sealed)
        return Disconnected(connection_id=connection.id, calendar_ids=tuple(change.calendar_id for change in changes))


async def _owned_calendar(session: AsyncSession, owner_id: uuid.UUID, calendar_id: uuid.UUID) -> Calendar | None:
    calendar = await session.get(Calendar, calendar_id)
    if calendar is None:
        return None
    connection = await session.get(CalendarConnection, calendar.connection_id)
    return calendar if connection is not None and connection.user_id == owner_id else None


async def _store_calendars(
    session: AsyncSession, connection: CalendarConnection, listed: list[ProviderCalendar]
) -> list[CalendarStatusChanged]:
    """Calendars whose details the owner can read; the primary is integrated by default.

    On a reconnect, known calendars keep the owner's choices and become active again; calendars
    the account no longer offers are removed with their busy time. Returns the status changes
    to announce.
    """
    changes: list[CalendarStatusChanged] = []
    known = {
        calendar.external_id: calendar
        for calendar in (await session.exec(select(Calendar).where(Calendar.connection_id == connection.id))).all()
    }
    # The tasks calendar (task sync) holds no busy time and never becomes one of the owner's.
    offered = [
        calendar
        for calendar in listed
        if calendar.access.may_integrate and calendar.external_id != connection.tasks_calendar_id
    ]
    for item in offered:
        calendar = known.pop(item.external_id, None)
        if calendar is None:
            calendar = Calendar(
                connection_id=connection.id,
                external_id=item.external_id,
                integrated=item.primary,
            )
        calendar.name = item.name[:300]
        calendar.access_role = item.access.value.lower()
        calendar.is_primary = item.primary
        was_inactive = calendar.status == CalendarStatus.INACTIVE
        calendar.status = CalendarStatus.ACTIVE
        calendar.inactive_reason = None
        calendar.inactive_since = None
        session.add(calendar)
        if was_inactive:
            changes.append(status_changed(connection.user_id, calendar))
    for gone in known.values():
        changes.append(status_changed(connection.user_id, gone, CalendarStatus.REMOVED))
        await session.delete(gone)
    return changes
