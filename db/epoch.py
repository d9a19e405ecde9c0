"""Stored timestamps read as integer microseconds since the epoch, computed by the database.

A slot query reads thousands of busy rows; turning each stored value into an aware datetime
(driver, SQLAlchemy's result processing, ``UTCDateTime``) costs far more than the slot engine
itself, which works on integers anyway. ``epoch_micros(column)`` lets the database hand back the
number directly, exact to the microsecond on both stores (``db.columns``): PostgreSQL keeps
``timestamptz``; SQLite keeps UTC text ``YYYY-MM-DD HH:MM:SS.ffffff``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnExpressionArgument
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class epoch_micros(FunctionElement[int]):
    """Microseconds since 1970-01-01 UTC of one ``UTCDateTime`` column, as a plain integer."""

    type = BigInteger()
    name = "epoch_micros"
    inherit_cache = True

    def __init__(self, column: ColumnExpressionArgument[Any]) -> None:
        super().__init__(column)


@compiles(epoch_micros, "postgresql")
def _postgresql(element: epoch_micros, compiler: SQLCompiler, **kw: Any) -> str:
    # EXTRACT gives an exact numeric (seconds with six decimals) since PostgreSQL 14.
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) * 1000000 AS BIGINT)"


@compiles(epoch_micros, "sqlite")
def _sqlite(element: epoch_micros, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's date functions keep milliseconds and round: .999999 would become the next second.
    # So whole seconds come from the first 19 characters and microseconds from the digits after
    # the dot (padded, so a value stored without a fraction reads as 0). unixepoch (3.38) parses
    # a third faster than strftime.
    value = compiler.process(element.clauses, **kw)
    version = compiler.dialect.server_version_info or (0,)
    seconds = (
        f"unixepoch(substr({value}, 1, 19))"
        if version >= (3, 38)
        else f"CAST(strftime('%s', substr({value}, 1, 19)) AS INTEGER)"
    )
    return f"({seconds} * 1000000 + CAST(substr({value} || '000000', 21, 6) AS INTEGER))"
