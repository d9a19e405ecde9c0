"""Domain management: hosts that may serve pages for any user."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from db.engine import Database
from db.models import Domain
from scheduling import validation
from scheduling.clock import Clock
from scheduling.errors import InvalidInput, ValidationFailed


class DomainService:
    def __init__(self, *, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def add(self, host: str) -> Domain | InvalidInput:
        try:
            domain = Domain(host=validation.host("host", host), created_at=self._clock())
        except ValidationFailed as failure:
            return failure.as_result()
        try:
            async with self._db.transaction() as session:
                session.add(domain)
        except IntegrityError:
            return InvalidInput(message=f"{domain.host} is already connected", field="host")
        return domain

    async def list_domains(self) -> list[Domain]:
        async with self._db.session() as session:
            return list((await session.exec(select(Domain).order_by(col(Domain.host)))).all())
