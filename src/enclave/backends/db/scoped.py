"""Repositories for tenant tables. Each is bound to one TenantScope when it is built, and every
statement it runs passes through ``ScopedRepo``'s final helpers, which add the tenant filter (and
stamp ``tenant_id`` on inserts). There is no way to query these tables without a scope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, final

from sqlalchemy import (
    Delete,
    Executable,
    Select,
    Table,
    Update,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from enclave.backends.db import schema as s
from enclave.backends.db.prebuilt import (
    SCOPE_KEY,
    WHERE_PREFIX,
    built,
    deleting,
    in_scope,
    inserting,
    inserting_returning_id,
    matching,
    positional_insert,
    updating,
)


@dataclass(frozen=True)
class TenantScope:
    tenant_id: str


ROWS_PER_STATEMENT = 2000


class ScopedRepo:
    table: Table

    def __init__(self, conn: AsyncConnection, scope: TenantScope) -> None:
        self._conn = conn
        self._scope = scope

    @property
    def _tenant_id(self) -> str:
        """The scope's tenant, for statements built by hand (joins of aliased tables)."""
        return self._scope.tenant_id

    @final
    def _select(self, *columns: Any) -> Select[Any]:
        query = select(*columns) if columns else select(self.table)
        return query.where(self.table.c.tenant_id == self._scope.tenant_id)

    @final
    def _select_from(self, table: Table, *columns: Any) -> Select[Any]:
        """A query on another tenant table (for subqueries), filtered to the same scope."""
        return select(*columns).where(table.c.tenant_id == self._scope.tenant_id)

    @final
    def _update(self) -> Update:
        return update(self.table).where(self.table.c.tenant_id == self._scope.tenant_id)

    @final
    def _delete(self) -> Delete:
        return delete(self.table).where(self.table.c.tenant_id == self._scope.tenant_id)

    @final
    async def _insert(self, **values: Any) -> None:
        values["tenant_id"] = self._scope.tenant_id
        await self._conn.execute(inserting(self.table), values)

    @final
    async def _insert_rows(self, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Many rows of plain values (no type processing: bytes, ints, text) through the
        driver's executemany, each stamped with the scope: for hundreds of rows at once,
        where SQLAlchemy's per-row parameter handling would cost more than the inserts."""
        if not rows:
            return
        sql = positional_insert(self.table, ("tenant_id", *columns), self._conn.dialect)
        tenant = self._scope.tenant_id
        for start in range(0, len(rows), ROWS_PER_STATEMENT):  # the loop gets turns between
            chunk = rows[start : start + ROWS_PER_STATEMENT]
            await self._conn.exec_driver_sql(sql, [(tenant, *row) for row in chunk])

    @final
    async def _insert_returning_id(self, **values: Any) -> Any:
        """Insert one row and return the id the database gave it."""
        values["tenant_id"] = self._scope.tenant_id
        return (await self._conn.execute(inserting_returning_id(self.table), values)).scalar_one()

    @final
    async def _insert_many(self, rows: list[dict[str, Any]]) -> None:
        """Several rows in one statement (executemany), each stamped with the scope."""
        if rows:
            stamped = [{**row, "tenant_id": self._scope.tenant_id} for row in rows]
            await self._conn.execute(inserting(self.table), stamped)

    # Prebuilt statements (``prebuilt``): built once per table and column set, or per call
    # site, and run with the scope's tenant as a parameter. For the hot paths.

    @final
    def _params(self, values: dict[str, Any]) -> dict[str, Any]:
        values[SCOPE_KEY] = self._scope.tenant_id
        return values

    @final
    async def _first_where(self, **equals: Any) -> RowMapping | None:
        """The first row whose columns equal ``equals``."""
        query = matching(self.table, tuple(equals), scoped=True)
        row: RowMapping | None = (
            (await self._conn.execute(query, self._params(equals))).mappings().first()
        )
        return row

    @final
    async def _update_where(self, where: dict[str, Any], **values: Any) -> int:
        """Set ``values`` on the rows whose columns equal ``where``; returns how many."""
        query = updating(self.table, tuple(where), scoped=True)
        params = {WHERE_PREFIX + name: value for name, value in where.items()}
        result = await self._conn.execute(query, self._params({**params, **values}))
        return result.rowcount

    @final
    async def _delete_where(self, **equals: Any) -> int:
        query = deleting(self.table, tuple(equals), scoped=True)
        return (await self._conn.execute(query, self._params(equals))).rowcount

    @final
    async def _prebuilt(self, build: Callable[[], Executable], **params: Any) -> Any:
        """Run the statement ``build`` makes, built on first use at this call site. ``build``
        must capture no values (they change between calls: pass them as ``params`` and name
        them with ``bindparam``) and must filter on ``in_scope``."""
        if build.__closure__:
            raise TypeError("a prebuilt statement must take its values as parameters")
        statement = built(build.__code__, build, scoped=True)
        return await self._conn.execute(statement, self._params(params))

    @final
    async def _one(self, query: Select[Any]) -> RowMapping | None:
        row: RowMapping | None = (await self._conn.execute(query)).mappings().first()
        return row

    @final
    async def _all(self, query: Select[Any]) -> list[RowMapping]:
        return list((await self._conn.execute(query)).mappings().all())

    @final
    async def _tuples(self, query: Select[Any]) -> list[Any]:
        """Rows as tuples: for large answers, several times cheaper than mappings."""
        return list((await self._conn.execute(query)).all())


class UsersRepo(ScopedRepo):
    table = s.users

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def by_email(self, email: str) -> RowMapping | None:
        return await self._first_where(email=email)

    async def by_id(self, user_id: str) -> RowMapping | None:
        return await self._first_where(id=user_id)

    async def all(self) -> list[RowMapping]:
        return await self._all(self._select().order_by(s.users.c.email))

    async def change(self, user_id: str, **values: Any) -> int:
        result = await self._conn.execute(
            self._update().where(s.users.c.id == user_id).values(**values)
        )
        return result.rowcount

    async def count(self) -> int:
        return int((await self._conn.execute(self._select(func.count()))).scalar_one())


class GroupsRepo(ScopedRepo):
    table = s.groups

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def by_name(self, name: str) -> RowMapping | None:
        return await self._first_where(name=name)

    async def by_address(self, address: str) -> RowMapping | None:
        return await self._first_where(address=address)

    async def by_id(self, group_id: str) -> RowMapping | None:
        return await self._first_where(id=group_id)

    async def all(self) -> list[RowMapping]:
        return await self._all(self._select().order_by(s.groups.c.name))


class GroupMembersRepo(ScopedRepo):
    table = s.group_members

    async def add(self, group_id: str, user_id: str) -> None:
        await self._insert(group_id=group_id, user_id=user_id)

    async def remove(self, group_id: str, user_id: str) -> int:
        query = self._delete().where(
            s.group_members.c.group_id == group_id, s.group_members.c.user_id == user_id
        )
        return (await self._conn.execute(query)).rowcount

    async def groups_of(self, user_id: str) -> list[str]:
        rows = await self._all(
            self._select(s.group_members.c.group_id).where(s.group_members.c.user_id == user_id)
        )
        return [row["group_id"] for row in rows]

    async def members(self, group_id: str) -> list[str]:
        rows = await self._all(
            self._select(s.group_members.c.user_id).where(s.group_members.c.group_id == group_id)
        )
        return [row["user_id"] for row in rows]


class AppPasswordsRepo(ScopedRepo):
    table = s.app_passwords

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def for_user(self, user_id: str) -> list[RowMapping]:
        query = self._select().where(s.app_passwords.c.user_id == user_id)
        return await self._all(query.order_by(s.app_passwords.c.created_at))

    async def remove(self, user_id: str, app_id: str) -> int:
        query = self._delete().where(
            s.app_passwords.c.user_id == user_id, s.app_passwords.c.id == app_id
        )
        return (await self._conn.execute(query)).rowcount

    async def touch(self, app_id: str, when: datetime) -> None:
        query = self._update().where(s.app_passwords.c.id == app_id)
        await self._conn.execute(query.values(last_used_at=when))


class RecoveryCodesRepo(ScopedRepo):
    table = s.recovery_codes

    async def replace(self, user_id: str, code_hashes: list[str]) -> None:
        await self._conn.execute(self._delete().where(s.recovery_codes.c.user_id == user_id))
        for code_hash in code_hashes:
            await self._insert(user_id=user_id, code_hash=code_hash)

    async def use(self, user_id: str, code_hash: str, when: datetime) -> bool:
        query = self._update().where(
            s.recovery_codes.c.user_id == user_id,
            s.recovery_codes.c.code_hash == code_hash,
            s.recovery_codes.c.used_at.is_(None),
        )
        return (await self._conn.execute(query.values(used_at=when))).rowcount == 1

    async def clear(self, user_id: str) -> None:
        await self._conn.execute(self._delete().where(s.recovery_codes.c.user_id == user_id))


class BlobsRepo(ScopedRepo):
    table = s.blobs

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def get(self, name: str) -> RowMapping | None:
        return await self._first_where(name=name)

    async def by_names(self, names: list[str]) -> list[RowMapping]:
        rows: list[RowMapping] = []
        for start in range(0, len(names), 500):  # stay under SQLite's parameter limit
            query = self._select().where(s.blobs.c.name.in_(names[start : start + 500]))
            rows += await self._all(query)
        return rows

    async def incref(self, name: str, delta: int) -> int:
        result = await self._prebuilt(
            lambda: (
                update(s.blobs)
                .where(in_scope(s.blobs), s.blobs.c.name == bindparam("blob_name"))
                .values(refcount=s.blobs.c.refcount + bindparam("delta"))
            ),
            blob_name=name,
            delta=delta,
        )
        return int(result.rowcount)

    async def unreferenced(self) -> list[RowMapping]:
        return await self._all(self._select().where(s.blobs.c.refcount <= 0))

    async def remove(self, name: str) -> None:
        query = self._delete().where(s.blobs.c.name == name, s.blobs.c.refcount <= 0)
        await self._conn.execute(query)

    async def all(self) -> list[RowMapping]:
        return await self._all(self._select())

    async def rewrap(self, name: str, kek_version: int, wrapped_key: bytes) -> None:
        query = self._update().where(s.blobs.c.name == name)
        await self._conn.execute(query.values(kek_version=kek_version, wrapped_key=wrapped_key))

    async def file_keys(self) -> set[str]:
        rows = await self._all(self._select(s.blobs.c.name, s.blobs.c.object_id))
        return {f"{row['name']}.{row['object_id']}" for row in rows}

    async def total_size(self) -> int:
        query = self._select(func.coalesce(func.sum(s.blobs.c.size), 0))
        return int((await self._conn.execute(query)).scalar_one())
