"""Statements built once and run many times with their values as parameters.

Building a SQLAlchemy statement (``select(t).where(t.c.id == x)``: coercions, a bound
parameter per value, the cache key) costs several times more than running a small one on
SQLite; a statement object built once keeps its cache key, so running it again skips both.
The common shapes (rows whose columns equal given values; an update or delete of them) are
built here per table and column set; anything else is a builder without captured values,
built once per call site (``built``).

Tenant tables stay scoped by construction: a prebuilt statement on one filters on the
``SCOPE_KEY`` parameter, which ``ScopedRepo`` always supplies, and ``built`` refuses a
tenant statement without that filter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    Executable,
    Insert,
    Table,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Dialect

SCOPE_KEY = "scope_tenant_id"
WHERE_PREFIX = "where_"  # an UPDATE's own parameters are the columns it sets

T = TypeVar("T")
_built: dict[Any, Any] = {}


def in_scope(table: Table) -> ColumnElement[bool]:
    """The tenant filter of a prebuilt statement: the scope comes as a parameter."""
    return table.c.tenant_id == bindparam(SCOPE_KEY, type_=table.c.tenant_id.type)


def equal(table: Table, name: str, key: str | None = None) -> ColumnElement[bool]:
    column = table.c[name]
    return column == bindparam(key or name, type_=column.type)


def built(key: Any, build: Callable[[], T], *, scoped: bool) -> T:
    """The statement ``build`` makes (or its driver SQL), built on first use under ``key``."""
    statement = _built.get(key)
    if statement is None:
        statement = build()
        if scoped and SCOPE_KEY not in cast(ClauseElement, statement).compile().params:
            raise AssertionError(f"prebuilt tenant statement without the tenant filter: {key}")
        _built[key] = statement
    return cast(T, statement)


def _filters(table: Table, names: Iterable[str], scoped: bool, prefix: str = "") -> list[Any]:
    found = [equal(table, name, prefix + name) for name in names]
    return [in_scope(table), *found] if scoped else found


def matching(table: Table, names: tuple[str, ...], *, scoped: bool) -> Executable:
    """SELECT the rows of ``table`` whose ``names`` columns equal parameters of those names."""
    return built(
        (table.name, "select", names, scoped),
        lambda: select(table).where(*_filters(table, names, scoped)),
        scoped=scoped,
    )


def updating(table: Table, names: tuple[str, ...], *, scoped: bool) -> Executable:
    """UPDATE the rows matching ``where_<name>`` parameters; the other parameters are the
    columns to set."""
    return built(
        (table.name, "update", names, scoped),
        lambda: update(table).where(*_filters(table, names, scoped, WHERE_PREFIX)),
        scoped=scoped,
    )


def deleting(table: Table, names: tuple[str, ...], *, scoped: bool) -> Executable:
    return built(
        (table.name, "delete", names, scoped),
        lambda: delete(table).where(*_filters(table, names, scoped)),
        scoped=scoped,
    )


def inserting(table: Table) -> Insert:
    """INSERT into ``table``, its values passed as parameters (``.values()`` built for each
    row costs more than running the statement). Tenant rows get ``tenant_id`` among them."""
    return built((table.name, "insert"), lambda: insert(table), scoped=False)


def inserting_returning_id(table: Table) -> Insert:
    return built(  # RETURNING: SQLite 3.35, PostgreSQL
        (table.name, "insert-id"), lambda: insert(table).returning(table.c.id), scoped=False
    )


def positional_insert(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    """The INSERT of these columns as the driver takes it (its own placeholders, values in
    ``columns`` order), for the driver's executemany."""

    def build() -> str:
        values: dict[str, Any] = {name: bindparam(name) for name in columns}
        compiled = insert(table).values(values).compile(dialect=dialect)
        if tuple(compiled.positiontup or ()) != columns:
            raise ValueError(f"{dialect.name} does not take positional parameters")
        return str(compiled)

    return built((table.name, "positional", columns, dialect.name), build, scoped=False)
