"""Owners: creation, authentication by token, and personal settings."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from common.values import Seat
from db.engine import Database
from db.models import ApiToken, SchedulingPage, User
from scheduling import api_tokens, validation
from scheduling.calendars.directory import OwnerChangeHook
from scheduling.clock import Clock
from scheduling.errors import InvalidInput, NotFound, Refused, ValidationFailed
from scheduling.events import ApiTokenRevoked, AvailabilityChanged, EventBus
from scheduling.pages.links import LinkBuilder


@dataclass(frozen=True)
class NewUser:
    user: User
    token: str


@dataclass(frozen=True)
class Caller:
    """The owner behind a valid bearer token, and which token it was."""

    user: User
    token_id: uuid.UUID


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret: str  # shown once; only its digest is stored


# lastUsedAt is written at most this often per token, so requests are not writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_TOKEN_DAYS = 3650


@dataclass(frozen=True)
class SettingsChange:
    """Fields left as None keep their current value."""

    personal_email_access: bool | None = None
    timezone: str | None = None
    hide_from_search_engines: bool | None = None
    meetings_link_base: str | None = None
    default_page_id: uuid.UUID | None = None


class UserService:
    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        links: LinkBuilder,
        clock: Clock,
        wake_outbox: Callable[[], None],
        on_seat_changed: OwnerChangeHook,
    ) -> None:
        self._db = db
        self._bus = bus
        self._links = links
        self._clock = clock
        self._wake_outbox = wake_outbox
        self._on_seat_changed = on_seat_changed

    async def create(self, *, email: str, name: str = "", timezone: str = "UTC") -> NewUser | InvalidInput:
        """Create an owner and their first API token (returned once, stored hashed)."""
        try:
            user = User(
                email=validation.email("email", email),
                name=validation.text("name", name, max_length=200, required=False),
                timezone=validation.timezone("timezone", timezone),
                created_at=self._clock(),
            )
        except ValidationFailed as failure:
            return failure.as_result()
        token = api_tokens.new_token()
        try:
            async with self._db.transaction() as session:
                session.add(user)
                await session.flush()
                session.add(ApiToken(user_id=user.id, token_hash=api_tokens.digest(token), label="cli"))
        except IntegrityError:
            return InvalidInput(message=f"a user with email {user.email} exists", field="email")
        return NewUser(user=user, token=token)

    async def issue_token(self, user_id: uuid.UUID, *, label: str = "") -> str:
        token = api_tokens.new_token()
        async with self._db.transaction() as session:
            session.add(
                ApiToken(user_id=user_id, token_hash=api_tokens.digest(token), label=label, created_at=self._clock())
            )
        return token

    async def authenticate(self, token: str) -> User | None:
        """The owner of a valid token: known, unrevoked and unexpired."""
        caller = await self.identify(token)
        return None if caller is None else caller.user

    async def identify(self, token: str) -> Caller | None:
        """The owner and token id of a valid token; notes its use at most once a minute."""
        now = self._clock()
        async with self._db.session() as session:
            statement = (
                select(User, ApiToken)
                .join(ApiToken, ApiToken.user_id == User.id)  # type: ignore[arg-type]
                .where(ApiToken.token_hash == api_tokens.digest(token))
                .where(ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
            )
            found = (await session.exec(statement)).first()
        if found is None:
            return None
        user, row = found
        if row.expires_at is not None and row.expires_at <= now:
            return None
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            await self._note_use(row.id, now)
        return Caller(user=user, token_id=row.id)

    async def _note_use(self, token_id: uuid.UUID, now: datetime) -> None:
        stale = now - LAST_USED_RESOLUTION
        async with self._db.transaction() as session:
            await session.exec(
                update(ApiToken)
                .where(col(ApiToken.id) == token_id)
                .where(
                    or_(
                        col(ApiToken.last_used_at).is_(None),
                        col(ApiToken.last_used_at) < stale,
                    )
                )
                .values(last_used_at=now)
            )

    async def list_tokens(self, user_id: uuid.UUID) -> list[ApiToken]:
        """The owner's unrevoked tokens, oldest first (expired ones too, so they can be revoked)."""
        async with self._db.session() as session:
            statement = (
                select(ApiToken)
                .where(ApiToken.user_id == user_id)
                .where(ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
                .order_by(ApiToken.created_at, ApiToken.id)  # type: ignore[arg-type]
            )
            return list((await session.exec(statement)).all())

    async def create_token(
        self, user_id: uuid.UUID, *, name: str, expires_in_days: int | None = None
    ) -> CreatedToken | InvalidInput:
        try:
            label = validation.text("name", name, max_length=100)
            days = (
                None
                if expires_in_days is None
                else validation.integer("expiresInDays", expires_in_days, low=1, high=MAX_TOKEN_DAYS)
            )
        except ValidationFailed as failure:
            return failure.as_result()
        now = self._clock()
        secret = api_tokens.new_token()
        row = ApiToken(
            user_id=user_id,
            token_hash=api_tokens.digest(secret),
            label=label,
            created_at=now,
            expires_at=None if days is None else now + timedelta(days=days),
        )
        async with self._db.transaction() as session:
            session.add(row)
        return CreatedToken(token=row, secret=secret)

    async def revoke_token(self, user_id: uuid.UUID, token_id: uuid.UUID) -> ApiToken | NotFound:
        """Revoke one of the owner's tokens; another owner's, or a revoked one, is not found."""
        async with self._db.transaction() as session:
            row = await session.get(ApiToken, token_id)
            if row is None or row.user_id != user_id or row.revoked_at is not None:
                return NotFound(message="API token not found")
            row.revoked_at = self._clock()
            session.add(row)
        await self._bus.publish(ApiTokenRevoked(owner_id=user_id, token_id=token_id))
        return row

    async def get(self, user_id: uuid.UUID) -> User | None:
        async with self._db.session() as session:
            return await session.get(User, user_id)

    async def find_by_email(self, email: str) -> User | None:
        async with self._db.session() as session:
            return (await session.exec(select(User).where(User.email == email.strip().lower()))).first()

    async def set_seat(self, user_id: uuid.UUID, seat: Seat) -> User | NotFound:
        """The owner's seat (set by the operator): task sync needs a paid one, so
        ``on_seat_changed`` queues its events' making or removal with the change."""
        async with self._db.transaction() as session:
            user = await session.get(User, user_id)
            if user is None:
                return NotFound(message="user not found")
            user.seat = seat
            session.add(user)
            await session.flush()
            queued = await self._on_seat_changed(session, user.id, self._clock())
        if queued:
            self._wake_outbox()
        return user

    async def update_settings(self, user_id: uuid.UUID, change: SettingsChange) -> User | InvalidInput | NotFound:
        try:
            async with self._db.transaction() as session:
                user = await session.get(User, user_id)
                if user is None:
                    raise Refused(NotFound(message="user not found"))
                previous_base = user.meetings_link_base
                if change.timezone is not None:
                    user.timezone = validation.timezone("timezone", change.timezone)
                if change.personal_email_access is not None:
                    user.personal_email_access = change.personal_email_access
                if change.hide_from_search_engines is not None:
                    user.hide_from_search_engines = change.hide_from_search_engines
                if change.meetings_link_base is not None:
                    user.meetings_link_base = await self._links.normalise_link_base(session, change.meetings_link_base)
                if change.default_page_id is not None:
                    page = await session.get(SchedulingPage, change.default_page_id)
                    if page is None or page.owner_id != user.id:
                        raise ValidationFailed("defaultSchedulingPageId", "default page not found")
                    user.default_page_id = page.id
                session.add(user)
        except Refused as refused:
            return cast(User | InvalidInput | NotFound, refused.result)
        if user.meetings_link_base != previous_base:
            await self._bus.publish(AvailabilityChanged(owner_id=user.id, reason="links"))
        return user
