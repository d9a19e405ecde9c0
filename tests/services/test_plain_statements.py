"""Statements sent straight to the driver (``db/plain.py``), on SQLite and PostgreSQL: they store
and read values exactly as the ORM does, a failed transaction leaves nothing behind and its
connection clean, a lost race answers SQLAlchemy's ``IntegrityError``, and a statement that
would need a list expanded at run time is refused when it is compiled.
"""

from __future__ import annotations

import asyncio
import importlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import bindparam, func, insert, literal, select
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_dialect
from sqlalchemy.dialects.sqlite import aiosqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel import select as orm_select

from db.engine import Database
from db.models import Booking, Contact, User
from db.plain import Plain, as_read, new_row, watched
from scheduling.crm.contacts import record_booker

HELSINKI = ZoneInfo("Europe/Helsinki")
_USERS = User.metadata.tables["users"]
_CONTACTS = Contact.metadata.tables["contacts"]
CONTACT_KEYS = [column.name for column in _CONTACTS.columns]
_INSERT_USER = Plain(insert(_USERS), columns=_USERS.columns.keys())
_CONTACT = Plain(select(*_CONTACTS.columns).where(_CONTACTS.c.id == bindparam("id")))


async def new_owner(db: Database) -> User:
    async with db.transaction() as session:
        user = User(email=f"o-{uuid.uuid4().hex[:8]}@example.com", name="Owner", timezone="Europe/Helsinki")
        session.add(user)
    return user


async def contacts_of(db: Database, owner: User) -> list[Contact]:
    async with db.session() as session:
        return list((await session.exec(orm_select(Contact).where(col(Contact.owner_id) == owner.id))).all())


async def test_values_written_on_the_driver_read_back_as_the_orm_reads_them(db: Database) -> None:
    # covers: BOOK-1
    owner = await new_owner(db)
    booked_at = datetime(2026, 12, 1, 10, 30, 15, 123_456, tzinfo=HELSINKI)
    async with db.plain_transaction() as plain:
        contact_id = await record_booker(
            plain, owner.id, email="ada@example.com", name="Ada", answers={"topic": "Plans ä"}, now=booked_at
        )
    (stored,) = await contacts_of(db, owner)
    assert stored.id == contact_id
    assert (stored.email, stored.name, stored.properties) == ("ada@example.com", "Ada", {"topic": "Plans ä"})
    assert stored.created_at == booked_at  # to the microsecond
    assert stored.created_at.tzinfo == UTC
    # Read on the driver, built as the ORM builds a loaded row: the same values, the same types.
    async with db.plain() as plain:
        (row,) = await plain.rows(_CONTACT, {"id": contact_id})
    read = as_read(Contact, CONTACT_KEYS, row)
    assert {key: getattr(read, key) for key in CONTACT_KEYS} == {key: getattr(stored, key) for key in CONTACT_KEYS}
    assert isinstance(read.id, uuid.UUID)
    assert isinstance(read.owner_id, uuid.UUID)


async def test_a_known_booker_gets_only_the_gaps_filled(db: Database) -> None:
    # covers: BOOK-1
    owner = await new_owner(db)
    first = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    async with db.plain_transaction() as plain:
        contact_id = await record_booker(plain, owner.id, email="b@example.com", name="", answers={"a": "1"}, now=first)
    later = first + timedelta(days=1)
    async with db.plain_transaction() as plain:
        again = await record_booker(
            plain, owner.id, email="b@example.com", name="Bea", answers={"a": "2", "b": "3"}, now=later
        )
    (stored,) = await contacts_of(db, owner)
    assert again == contact_id == stored.id
    assert (stored.name, stored.properties, stored.updated_at) == ("Bea", {"a": "1", "b": "3"}, later)


async def test_a_failed_transaction_stores_nothing_and_its_connection_is_clean(db: Database) -> None:
    # covers: BOOK-3
    owner = await new_owner(db)
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    async def change_of_mind() -> None:
        async with db.plain_transaction() as plain:
            await record_booker(plain, owner.id, email="c@example.com", name="C", answers={}, now=now)
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await change_of_mind()
    assert await contacts_of(db, owner) == []
    # The connection went back to the pool outside any transaction: the next work commits alone.
    sent: list[str] = []
    with watched(lambda text, _seconds: sent.append(text)):
        async with db.plain_transaction() as plain:
            await record_booker(plain, owner.id, email="d@example.com", name="D", answers={}, now=now)
    assert [contact.email for contact in await contacts_of(db, owner)] == ["d@example.com"]
    assert sent[0].startswith("BEGIN")
    assert sent[-1] == "COMMIT"


async def test_a_lost_race_on_a_unique_key_is_sqlalchemys_integrity_error(db: Database) -> None:
    # covers: BOOK-3
    owner = await new_owner(db)
    values = {column.name: getattr(owner, column.name) for column in _USERS.columns}
    with pytest.raises(IntegrityError):
        async with db.plain_transaction() as plain:
            await plain.run(_INSERT_USER, values)
    async with db.plain() as plain:
        assert len(await plain.rows(Plain(select(_USERS.c.id)), {})) == 1


def test_a_list_expanded_at_run_time_is_refused_when_compiled() -> None:
    # covers: BOOK-1
    expanding = Plain(select(col(User.id)).where(col(User.id).in_(bindparam("ids", expanding=True))))
    with pytest.raises(ValueError, match="expand a list"):
        expanding.compiled(sqlite_dialect.dialect())


@pytest.mark.parametrize(
    "module",
    [
        "scheduling.booking.book",
        "scheduling.calendars.busy_check",
        "scheduling.crm.contacts",
        "scheduling.outbox",
        "scheduling.pages.availability",
        "scheduling.pages.service",
    ],
)
def test_every_plain_statement_compiles_for_both_databases(module: str) -> None:
    # covers: BOOK-1
    statements = [value for value in vars(importlib.import_module(module)).values() if isinstance(value, Plain)]
    assert statements or module == "scheduling.outbox"
    for statement in statements:
        for dialect in (sqlite_dialect.dialect(), postgresql_dialect.dialect()):  # type: ignore[no-untyped-call]
            assert statement.compiled(dialect).sql


def test_a_new_row_has_the_defaults_its_constructor_gives() -> None:
    # covers: BOOK-1
    given: dict[str, Any] = {
        "owner_id": uuid.uuid4(),
        "page_id": uuid.uuid4(),
        "start_at": datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
        "end_at": datetime(2026, 12, 1, 8, 30, tzinfo=UTC),
        "invitee_name": "Ada",
        "invitee_email": "ada@example.com",
        "invitee_timezone": "Europe/Helsinki",
    }
    built, constructed = new_row(Booking, **given), Booking(**given)
    columns = [column.name for column in Booking.metadata.tables["bookings"].columns]
    made_per_row = {"id", "created_at"}  # a new id and time for each row
    assert {name: getattr(built, name) for name in columns if name not in made_per_row} == {
        name: getattr(constructed, name) for name in columns if name not in made_per_row
    }
    assert built.id != constructed.id
    assert isinstance(built.id, uuid.UUID)
    assert built.answers == {}
    assert built.answers is not new_row(Booking, **given).answers  # each row its own dict


async def test_a_statement_cancelled_half_way_leaves_no_busy_connection_in_the_pool(postgres_url: str) -> None:
    # covers: OPS-4
    # A client that goes away cancels its request mid-statement; the next request must not be
    # handed that connection while the driver still waits for the cut-off statement's answer.
    db = Database(postgres_url)
    try:

        async def sleeping() -> None:
            async with db.plain() as plain:
                await plain.rows(Plain(select(func.pg_sleep(2))), {})

        cut_off = asyncio.create_task(sleeping())
        await asyncio.sleep(0.3)
        cut_off.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cut_off
        async with db.plain() as plain:
            assert await plain.rows(Plain(select(literal(1))), {}) == [(1,)]
    finally:
        await db.dispose()
