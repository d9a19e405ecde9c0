"""An owner's contacts: one per email address (compared lower-cased), with a name and properties.

Contacts come from bookings and requests (``record_booker``, inside the booking's transaction)
and from the owner (``ContactService``). What the owner recorded wins: a booking fills in a
name only where there is none and properties only under keys not present yet; its answers
stay on the booking itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import bindparam, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import Database
from db.models import Contact, User
from db.plain import Plain, Row, Rows, new_row
from scheduling import validation
from scheduling.clock import Clock
from scheduling.crm import rules
from scheduling.crm.values import ContactChange, ContactDraft
from scheduling.errors import ContactExists, InvalidInput, NotFound, Refused, ValidationFailed

MAX_SEARCH = 200
_NOT_FOUND = NotFound(message="contact not found")


async def record_booker(
    rows: Rows, owner_id: uuid.UUID, *, email: str, name: str, answers: Mapping[str, str], now: datetime
) -> uuid.UUID:
    """The person who booked (``email`` already normalised) as a contact of the owner: a new
    one, or the existing one with only its gaps filled. Runs in the booking's transaction.

    A new contact costs one plain INSERT that does nothing on the owner's (owner, email) key;
    only when the address is known already is the contact read, and written if it has gaps."""
    new = new_row(
        Contact, owner_id=owner_id, email=email, name=name, properties=dict(answers), created_at=now, updated_at=now
    )
    values = {column.name: getattr(new, column.name) for column in _CONTACTS.columns}
    known: Row | None = None
    for _attempt in range(2):  # again only if the contact the INSERT met was deleted meanwhile
        if await rows.rows(_INSERT_NEW[rows.dialect.name], values):
            return new.id
        found = await rows.rows(_KNOWN, {"owner_id": owner_id, "email": email})
        if found:
            known = found[0]
            break
    if known is None:
        raise LookupError(f"the contact {email} of owner {owner_id} was neither stored nor found")
    contact_id, known_name, properties = known
    filled = {**answers, **properties}
    if known_name and filled == properties:
        return cast(uuid.UUID, contact_id)  # nothing to fill in: no write
    changes = {
        "contact_id": contact_id,
        "new_name": known_name or name,
        "new_properties": filled,
        "new_updated_at": now,
    }
    await rows.run(_FILL_IN, changes)
    return cast(uuid.UUID, contact_id)


_CONTACTS = Contact.metadata.tables["contacts"]
# Built once per dialect: the new contact, or nothing when the owner has one with that address.
_INSERT_NEW = {
    "sqlite": Plain(
        sqlite_insert(_CONTACTS).on_conflict_do_nothing(index_elements=["owner_id", "email"]).returning(_CONTACTS.c.id),
        columns=_CONTACTS.columns.keys(),
    ),
    "postgresql": Plain(
        postgresql_insert(_CONTACTS)
        .on_conflict_do_nothing(index_elements=["owner_id", "email"])
        .returning(_CONTACTS.c.id),
        columns=_CONTACTS.columns.keys(),
    ),
}
_KNOWN = Plain(
    select(_CONTACTS.c.id, _CONTACTS.c.name, _CONTACTS.c.properties).where(
        _CONTACTS.c.owner_id == bindparam("owner_id"), _CONTACTS.c.email == bindparam("email")
    )
)
_FILL_IN = Plain(
    update(_CONTACTS)
    .where(_CONTACTS.c.id == bindparam("contact_id"))
    .values(
        name=bindparam("new_name", type_=_CONTACTS.c.name.type),
        properties=bindparam("new_properties", type_=_CONTACTS.c.properties.type),
        updated_at=bindparam("new_updated_at", type_=_CONTACTS.c.updated_at.type),
    )
)


class ContactService:
    def __init__(self, *, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def search(self, owner_id: uuid.UUID, text: str | None) -> list[Contact] | InvalidInput:
        """The owner's contacts by email; ``text`` matches part of an email or name, in any case."""
        statement = select(Contact).where(Contact.owner_id == owner_id)
        wanted = (text or "").strip().lower()
        if len(wanted) > MAX_SEARCH:
            return InvalidInput(message=f"search must be at most {MAX_SEARCH} characters", field="search")
        if wanted:
            pattern = "%" + wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            statement = statement.where(
                or_(col(Contact.email).ilike(pattern, escape="\\"), col(Contact.name).ilike(pattern, escape="\\"))
            )
        async with self._db.session() as session:
            return list((await session.exec(statement.order_by(col(Contact.email)))).all())

    async def by_email(self, owner_id: uuid.UUID, email: str) -> Contact | None:
        try:
            normalised = validation.email("email", email)
        except ValidationFailed:
            return None
        async with self._db.session() as session:
            return await _by_email(session, owner_id, normalised)

    async def by_ids(self, owner_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Contact]:
        """The owner's contacts among ``ids``, in one query (another owner's are left out)."""
        statement = select(Contact).where(Contact.owner_id == owner_id, col(Contact.id).in_(list(ids)))
        async with self._db.session() as session:
            return {contact.id: contact for contact in (await session.exec(statement)).all()}

    async def create(self, owner_id: uuid.UUID, draft: ContactDraft) -> Contact | InvalidInput | ContactExists:
        try:
            email = validation.email("email", draft.email)
            name = rules.name(draft.name)
            properties = rules.properties(draft.properties)
        except ValidationFailed as failure:
            return failure.as_result()
        now = self._clock()
        async with self._db.transaction() as session:
            # Bookings insert contacts with the owner locked: so does this, so neither trips over the other.
            await session.exec(select(User.id).where(User.id == owner_id).with_for_update())
            existing = await _by_email(session, owner_id, email)
            if existing is not None:
                return ContactExists(message=f"{email} is a contact already", contact_id=existing.id)
            contact = Contact(
                owner_id=owner_id, email=email, name=name, properties=properties, created_at=now, updated_at=now
            )
            session.add(contact)
        return contact

    async def update(
        self, owner_id: uuid.UUID, contact_id: uuid.UUID, change: ContactChange
    ) -> Contact | InvalidInput | NotFound:
        try:
            async with self._db.transaction() as session:
                contact = await session.get(Contact, contact_id)
                if contact is None or contact.owner_id != owner_id:
                    raise Refused(_NOT_FOUND)
                if change.name is not None:
                    contact.name = rules.name(change.name)
                if change.properties is not None:
                    contact.properties = rules.properties(change.properties)
                contact.updated_at = self._clock()
                session.add(contact)
        except Refused as refused:
            return cast(InvalidInput | NotFound, refused.result)
        return contact


async def _by_email(session: AsyncSession, owner_id: uuid.UUID, email: str) -> Contact | None:
    statement = select(Contact).where(Contact.owner_id == owner_id, Contact.email == email)
    return (await session.exec(statement)).first()
