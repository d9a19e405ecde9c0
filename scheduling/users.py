"""Owners: creation, authentication by token, and personal settings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from db.engine import Database
from db.models import ApiToken, SchedulingPage, User
from scheduling import api_tokens, validation
from scheduling.clock import Clock
from scheduling.errors import InvalidInput, NotFound, Refused, ValidationFailed
from scheduling.events import AvailabilityChanged, EventBus
from scheduling.pages.links import LinkBuilder


@dataclass(frozen=True)
class NewUser:
    user: User
    token: str


@dataclass(frozen=True)
class SettingsChange:
    """Fields left as None keep their current value."""

    personal_email_access: bool | None = None
    timezone: str | None = None
    hide_from_search_engines: bool | None = None
    meetings_link_base: str | None = None
    default_page_id: uuid.UUID | None = None


class UserService:
    def __init__(self, *, db: Database, bus: EventBus, links: LinkBuilder, clock: Clock) -> None:
        self._db = db
        self._bus = bus
        self._links = links
        self._clock = clock

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
            session.add(ApiToken(user_id=user_id, token_hash=api_tokens.digest(token), label=label))
        return token

    async def authenticate(self, token: str) -> User | None:
        """The owner of a valid, unrevoked token."""
        async with self._db.session() as session:
            statement = (
                select(User)
                .join(ApiToken, ApiToken.user_id == User.id)  # type: ignore[arg-type]
                .where(ApiToken.token_hash == api_tokens.digest(token))
                .where(ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
            )
            return (await session.exec(statement)).first()

    async def get(self, user_id: uuid.UUID) -> User | None:
        async with self._db.session() as session:
            return await session.get(User, user_id)

    async def find_by_email(self, email: str) -> User | None:
        async with self._db.session() as session:
            return (await session.exec(select(User).where(User.email == email.strip().lower()))).first()

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
