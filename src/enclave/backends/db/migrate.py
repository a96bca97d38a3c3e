"""Schema migrations (Alembic), run programmatically on the engine's own connection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from enclave.backends.db.engine import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision (a no-op when it is already there)."""
    await run_migration(db, lambda connection: command.upgrade(alembic_config(connection), "head"))


async def run_migration(db: Database, migration: Callable[[Connection], None]) -> None:
    """Run ``migration`` in one transaction. On SQLite with foreign keys off meanwhile, and
    checked after: Alembic rebuilds a table to drop a column, and dropping the old table with
    foreign keys on deletes every row that references it (ON DELETE CASCADE), so a migration
    of ``mailboxes`` would empty ``messages``."""
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            await conn.run_sync(_foreign_keys, "OFF")
        try:
            async with conn.begin():
                await conn.run_sync(migration)
                if db.is_sqlite:
                    broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                    if broken:
                        raise RuntimeError(f"migration left broken references: {broken[:5]}")
        finally:
            if db.is_sqlite:
                await conn.run_sync(_foreign_keys, "ON")


def _foreign_keys(connection: Connection, state: str) -> None:
    # On the driver's connection, outside any transaction: inside one SQLite ignores it.
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA foreign_keys={state}")
    finally:
        cursor.close()


async def current_revision(db: Database) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(read)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
