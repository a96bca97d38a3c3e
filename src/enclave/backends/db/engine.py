"""The database engine: SQLite (WAL, foreign keys, full fsync) or PostgreSQL, one interface.

``Database.transaction()`` is the only way in. A write transaction on SQLite starts with
``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout instead of failing when
they upgrade a read lock, and the writers of this process that queue behind each other share
one transaction, each in its own savepoint (``group_commit``). On PostgreSQL a tenant
transaction sets ``enclave.tenant_id`` for the row-level security policies (see
``platform.Tx.scoped``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import registry
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from enclave.backends.db.group_commit import GroupCommit


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred only).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",  # commit returns after fsync: acknowledged means durable
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=10000",
    ):
        cursor.execute(pragma)
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("enclave_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


WRITE_WAIT_SECONDS = 30

# Any SQLite URL runs on the driver with one thread hop per statement (see ``sqlite_driver``).
registry.register("sqlite.enclave", "enclave.backends.db.sqlite_driver", "SQLiteDialect_enclave")


def _engine_url(url: str) -> Any:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+enclave")
    return parsed


def _in_transaction(conn: AsyncConnection) -> bool:
    """Whether SQLite still has the transaction open (it ends one itself after some errors)."""
    raw = conn.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
    return bool(raw.raw.in_transaction)  # type: ignore[union-attr]


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 10}
        self.engine: AsyncEngine = create_async_engine(_engine_url(url), **kwargs)
        self._writers = GroupCommit(
            lambda: self._transaction(write=True), _in_transaction, WRITE_WAIT_SECONDS
        )
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)

    @asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        """One transaction; commits on success, rolls back on any exception."""
        if self.is_sqlite and write:
            async with self._writers.transaction() as conn:
                yield conn
            return
        async with self._transaction(write=write) as conn:
            yield conn

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            if self.is_sqlite and write:
                await conn.execution_options(enclave_begin="IMMEDIATE")
            async with conn.begin():
                yield conn

    async def close(self) -> None:
        await self.engine.dispose()
