"""Owners created through the real user service, as the API would create them."""

from __future__ import annotations

from db.models import User
from scheduling.services import Services
from scheduling.users import NewUser


async def make_owner(services: Services, email: str, timezone: str = "Europe/Helsinki") -> tuple[User, str]:
    created = await services.users.create(email=email, name=email.split("@")[0], timezone=timezone)
    assert isinstance(created, NewUser), created
    return created.user, created.token
