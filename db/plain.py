"""Statements run straight on the driver, for the hot public paths: a slots query and a booking.

A booking makes about ten statements. Through an ORM session each one cost about four times
what the driver alone costs (the execution context, parameter and result handling, a greenlet
switch per call, the session's own bookkeeping), so a booking spent most of its time there.

Here a Core statement (``Plain``) is compiled once per dialect, and each run sends its SQL text
and parameters on the pooled connection's driver connection (asyncpg or aiosqlite). Parameters
and result columns go through the very type processors SQLAlchemy applies, so values are stored
and read exactly as the ORM stores and reads them. Statements must not use expanding IN
parameters (a list bound at run time); a subquery or fixed alternatives serve instead.

``Rows`` is what the shared read and write helpers take: a ``PlainConnection`` on the hot paths,
``SessionRows`` inside an ORM session or transaction elsewhere, with the same statements.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import asyncpg
from pydantic_core import PydanticUndefined
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlmodel.ext.asyncio.session import AsyncSession

Processor = Callable[[Any], Any]
Row = Sequence[Any]  # a tuple, or the driver's own record (indexed and unpacked alike)
T = TypeVar("T")


def new_row(cls: type[T], **values: Any) -> T:
    """A new instance of the table class ``cls`` with ``values`` and every other field's default,
    as ``__init__`` gives them, but built as ``as_read`` builds one (``__init__`` cost a booking
    a tenth of a millisecond per row)."""
    fixed, made = _defaults(cls)
    row = {**fixed, **values}
    for name, factory in made.items():
        if name not in row:
            row[name] = factory()
    return as_read(cls, row.keys(), row.values())


def _defaults(cls: type[Any]) -> tuple[dict[str, Any], dict[str, Callable[[], Any]]]:
    """The fields' fixed defaults, and the factories of those made anew for each row."""
    found = _DEFAULTS.get(cls)
    if found is not None:
        return found
    fixed: dict[str, Any] = {}
    made: dict[str, Callable[[], Any]] = {}
    for name, field in cls.model_fields.items():
        if field.default_factory is not None:
            made[name] = cast(Callable[[], Any], field.default_factory)
        elif field.default is not PydanticUndefined:
            fixed[name] = field.default
    found = _DEFAULTS[cls] = (fixed, made)
    return found


_DEFAULTS: dict[type[Any], tuple[dict[str, Any], dict[str, Callable[[], Any]]]] = {}
_MANAGERS: dict[type[Any], Any] = {}


def as_read(cls: type[T], columns: Iterable[str], values: Iterable[Any]) -> T:
    """An instance of the table class ``cls`` holding one row's values, built as the ORM builds a
    loaded row: no ``__init__`` (no defaults, no validation; a page and its owner cost 250 µs
    that way), not attached to any session."""
    instance: T = _manager(cls).new_instance()
    instance.__dict__.update(zip(columns, values, strict=True))
    return instance


def _manager(cls: type[Any]) -> Any:
    """The class's ORM instrumentation, its mappers configured (as a first query or ``__init__``
    would: until then its attributes cannot be read)."""
    manager = _MANAGERS.get(cls)
    if manager is None:
        configure_mappers()
        manager = _MANAGERS[cls] = manager_of_class(cls)
    return manager


@dataclass(frozen=True)
class DriverStatement:
    """One statement's SQL text for one dialect, its parameters in order with their bind
    processors, the values of its literal parameters, and its result columns' processors."""

    sql: str
    names: tuple[str, ...]
    binds: tuple[Processor | None, ...]
    literals: dict[str, Any]
    results: tuple[tuple[int, Processor], ...]  # the result columns that have a processor

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for name, bind in zip(self.names, self.binds, strict=True):
            value = params[name] if name in params else self.literals[name]
            values.append(bind(value) if bind is not None and value is not None else value)
        return values

    def row(self, values: Sequence[Any]) -> Row:
        processed = list(values)
        for index, result in self.results:
            if processed[index] is not None:
                processed[index] = result(processed[index])
        return tuple(processed)


class Plain:
    """A Core statement to be run on the driver; compiled on first use per dialect.

    ``columns``: an INSERT's columns, each bound under its own name (as SQLAlchemy binds an
    INSERT given a dict of values).
    """

    def __init__(self, statement: Executable, *, columns: Sequence[str] | None = None) -> None:
        self.statement = statement
        self._columns = list(columns) if columns is not None else None
        self._compiled: dict[str, DriverStatement] = {}

    def compiled(self, dialect: Dialect) -> DriverStatement:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _compile(self.statement, dialect, self._columns)
        return found


def _compile(statement: Executable, dialect: Dialect, columns: list[str] | None) -> DriverStatement:
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect, column_keys=columns)
    assert isinstance(compiled, SQLCompiler)
    if "POSTCOMPILE" in compiled.string:
        raise ValueError("a plain statement cannot expand a list parameter at run time")
    names = tuple(compiled.positiontup or ())
    literals = {name: compiled.binds[name].value for name in names if compiled.binds[name].value is not None}
    binds = tuple(compiled.binds[name].type._cached_bind_processor(dialect) for name in names)
    exported = getattr(statement, "exported_columns", None)
    selected: Sequence[Any] = list(exported) if exported is not None else []
    processors = [column.type._cached_result_processor(dialect, None) for column in selected]
    results = tuple((index, result) for index, result in enumerate(processors) if result is not None)
    return DriverStatement(sql=compiled.string, names=names, binds=binds, literals=literals, results=results)


class Rows(Protocol):
    """Runs ``Plain`` statements: on the driver (the hot paths) or in an ORM session."""

    dialect: Dialect

    async def rows(self, statement: Plain, params: Mapping[str, Any]) -> list[Row]: ...

    async def run(self, statement: Plain, params: Mapping[str, Any]) -> None: ...


Sent = Callable[[str, float], None]  # told of a statement sent: its SQL, the seconds it took
Sending = Callable[[str, Any], Awaitable[None]]  # told before: its SQL and the driver connection
_SENT: list[Sent] = []
_SENDING: list[Sending] = []


@contextmanager
def watched(sent: Sent | None = None, *, sending: Sending | None = None) -> Iterator[None]:
    """While the block runs, ``sent(sql, seconds)`` hears of every statement sent on the driver
    (SQLAlchemy's events do not see them) and ``sending(sql, driver)`` is awaited before each:
    tests and benchmarks count, time and interrupt them."""
    if sent is not None:
        _SENT.append(sent)
    if sending is not None:
        _SENDING.append(sending)
    try:
        yield
    finally:
        if sent is not None:
            _SENT.remove(sent)
        if sending is not None:
            _SENDING.remove(sending)


class PlainConnection:
    """A pooled connection's driver connection (``Database.plain`` hands one out)."""

    def __init__(self, driver: Any, dialect: Dialect) -> None:
        self._driver = driver
        self.dialect = dialect
        self._postgres = dialect.name == "postgresql"

    async def rows(self, statement: Plain, params: Mapping[str, Any]) -> list[Row]:
        compiled = statement.compiled(self.dialect)
        arguments = compiled.arguments(params)
        try:
            found = await self._sent(compiled.sql, arguments)
        except (asyncpg.IntegrityConstraintViolationError, sqlite3.IntegrityError) as refused:
            # As SQLAlchemy raises it: callers handle a lost race on a unique or exclusion constraint.
            raise IntegrityError(compiled.sql, arguments, refused) from refused
        if not compiled.results:
            return list(found)  # nothing to convert: a thousand busy rows are taken as they came
        return [compiled.row(values) for values in found]

    async def run(self, statement: Plain, params: Mapping[str, Any]) -> None:
        await self.rows(statement, params)

    async def send(self, command: str) -> None:
        """A bare command of the transaction (BEGIN, COMMIT, ROLLBACK)."""
        await self._sent(command, [])

    async def _sent(self, sql: str, arguments: list[Any]) -> Sequence[Sequence[Any]]:
        for sending in list(_SENDING):
            await sending(sql, self._driver)
        began = time.perf_counter() if _SENT else 0.0
        try:
            if self._postgres:
                return cast(Sequence[Sequence[Any]], await self._driver.fetch(sql, *arguments))
            return cast(Sequence[Sequence[Any]], await self._driver.execute_fetchall(sql, arguments))
        except asyncpg.InternalClientError as broken:
            # The connection is not in a state to send anything: the server's "terminating
            # connection" reached it while it sat in the pool, before the socket closed.
            raise ConnectionResetError("the database connection is broken") from broken
        except asyncpg.InterfaceError as refused:
            if self._driver.is_closed():  # the server ended it before this statement went out
                raise ConnectionResetError("the database connection is closed") from refused
            raise
        finally:
            for sent in list(_SENT):
                sent(sql, time.perf_counter() - began)


class SessionRows:
    """``Plain`` statements run through an ORM session's connection, in its transaction; the
    session's pending changes are flushed first, as its autoflush would."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect

    async def rows(self, statement: Plain, params: Mapping[str, Any]) -> list[Row]:
        session = self.session
        if session.new or session.dirty or session.deleted:
            await session.flush()
        result = await (await session.connection()).execute(statement.statement, params)
        return [tuple(row) for row in result.all()] if result.returns_rows else []

    async def run(self, statement: Plain, params: Mapping[str, Any]) -> None:
        await self.rows(statement, params)
