"""Repositories for platform tables (tenants, keys, domains, operators, sessions, audit), and
``Tx``, the handle a core service gets for one transaction. Tenant tables are reached only
through ``Tx.scoped(scope)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, insert, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from enclave.backends.db import schema as s
from enclave.backends.db.documents import (
    GrantsRepo,
    LabelsRepo,
    LibrariesRepo,
    LocksRepo,
    NodesRepo,
    PropsRepo,
    VersionsRepo,
)
from enclave.backends.db.engine import Database
from enclave.backends.db.mail import (
    AliasesRepo,
    ExpungedRepo,
    MailboxesRepo,
    MessagesRepo,
    OutboundRepo,
    SubscriptionsRepo,
)
from enclave.backends.db.prebuilt import matching
from enclave.backends.db.scoped import (
    AppPasswordsRepo,
    BlobsRepo,
    GroupMembersRepo,
    GroupsRepo,
    RecoveryCodesRepo,
    TenantScope,
    UsersRepo,
)
from enclave.backends.db.search import (
    SearchEntriesRepo,
    SearchJobsRepo,
    SearchKeysRepo,
    SearchPostingsRepo,
)

DuplicateKey = IntegrityError


class _Repo:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _one(self, query: Any) -> RowMapping | None:
        return (await self._conn.execute(query)).mappings().first()

    async def _first_where(self, table: Table, **equals: Any) -> RowMapping | None:
        """The first row of ``table`` whose columns equal ``equals`` (a prebuilt statement)."""
        query = matching(table, tuple(equals), scoped=False)
        return (await self._conn.execute(query, equals)).mappings().first()

    async def _all(self, query: Any) -> list[RowMapping]:
        return list((await self._conn.execute(query)).mappings().all())


class TenantsRepo(_Repo):
    async def add(self, **values: Any) -> None:
        await self._conn.execute(insert(s.tenants).values(**values))

    async def by_name(self, name: str) -> RowMapping | None:
        return await self._first_where(s.tenants, name=name)

    async def by_id(self, tenant_id: str) -> RowMapping | None:
        return await self._first_where(s.tenants, id=tenant_id)

    async def all(self) -> list[RowMapping]:
        return await self._all(select(s.tenants).order_by(s.tenants.c.name))

    async def change(self, tenant_id: str, **values: Any) -> None:
        await self._conn.execute(
            update(s.tenants).where(s.tenants.c.id == tenant_id).values(**values)
        )

    async def remove(self, tenant_id: str) -> None:
        await self._conn.execute(delete(s.tenants).where(s.tenants.c.id == tenant_id))


class TenantKeysRepo(_Repo):
    async def add(self, tenant_id: str, version: int, wrapped: bytes, when: datetime) -> None:
        await self._conn.execute(
            insert(s.tenant_keys).values(
                tenant_id=tenant_id,
                version=version,
                wrapped_key=wrapped,
                state="active",
                created_at=when,
            )
        )

    async def active(self, tenant_id: str) -> RowMapping | None:
        return await self._first_where(s.tenant_keys, tenant_id=tenant_id, state="active")

    async def get(self, tenant_id: str, version: int) -> RowMapping | None:
        return await self._first_where(s.tenant_keys, tenant_id=tenant_id, version=version)

    async def retire(self, tenant_id: str, version: int) -> None:
        query = update(s.tenant_keys).where(
            s.tenant_keys.c.tenant_id == tenant_id, s.tenant_keys.c.version == version
        )
        await self._conn.execute(query.values(state="retired", wrapped_key=None))

    async def destroy(self, tenant_id: str) -> None:
        await self._conn.execute(
            delete(s.tenant_keys).where(s.tenant_keys.c.tenant_id == tenant_id)
        )

    async def versions(self, tenant_id: str) -> list[RowMapping]:
        query = select(s.tenant_keys).where(s.tenant_keys.c.tenant_id == tenant_id)
        return await self._all(query.order_by(s.tenant_keys.c.version))


class DomainsRepo(_Repo):
    async def add(self, name: str, tenant_id: str, when: datetime) -> None:
        await self._conn.execute(
            insert(s.domains).values(name=name, tenant_id=tenant_id, created_at=when)
        )

    async def tenant_of(self, name: str) -> str | None:
        row = await self._first_where(s.domains, name=name)
        return None if row is None else str(row["tenant_id"])

    async def of_tenant(self, tenant_id: str) -> list[str]:
        query = select(s.domains.c.name).where(s.domains.c.tenant_id == tenant_id)
        return list((await self._conn.execute(query.order_by(s.domains.c.name))).scalars())


class DkimKeysRepo(_Repo):
    async def add(self, **values: Any) -> None:
        await self._conn.execute(insert(s.dkim_keys).values(**values))

    async def get(self, domain: str) -> RowMapping | None:
        return await self._first_where(s.dkim_keys, domain=domain)


class OperatorsRepo(_Repo):
    async def add(self, **values: Any) -> None:
        await self._conn.execute(insert(s.operators).values(**values))

    async def by_username(self, username: str) -> RowMapping | None:
        return await self._first_where(s.operators, username=username)

    async def by_id(self, operator_id: str) -> RowMapping | None:
        return await self._first_where(s.operators, id=operator_id)

    async def all(self) -> list[RowMapping]:
        return await self._all(select(s.operators).order_by(s.operators.c.username))

    async def change(self, operator_id: str, **values: Any) -> None:
        query = update(s.operators).where(s.operators.c.id == operator_id)
        await self._conn.execute(query.values(**values))


class SessionsRepo(_Repo):
    async def add(self, **values: Any) -> None:
        await self._conn.execute(insert(s.sessions).values(**values))

    async def get(self, session_id: str) -> RowMapping | None:
        return await self._first_where(s.sessions, id=session_id)

    async def of_subject(self, realm: str, subject_id: str) -> list[RowMapping]:
        query = select(s.sessions).where(
            s.sessions.c.realm == realm, s.sessions.c.subject_id == subject_id
        )
        return await self._all(query.order_by(s.sessions.c.created_at))

    async def seen(self, session_id: str, when: datetime) -> None:
        query = update(s.sessions).where(s.sessions.c.id == session_id)
        await self._conn.execute(query.values(last_seen_at=when))

    async def revoke(self, session_ids: list[str], when: datetime) -> int:
        query = update(s.sessions).where(
            s.sessions.c.id.in_(session_ids), s.sessions.c.revoked_at.is_(None)
        )
        return (await self._conn.execute(query.values(revoked_at=when))).rowcount

    async def revoke_subject(self, realm: str, subject_id: str, when: datetime) -> int:
        query = update(s.sessions).where(
            s.sessions.c.realm == realm,
            s.sessions.c.subject_id == subject_id,
            s.sessions.c.revoked_at.is_(None),
        )
        return (await self._conn.execute(query.values(revoked_at=when))).rowcount

    async def purge_expired(self, now: datetime) -> int:
        query = delete(s.sessions).where(s.sessions.c.expires_at < now)
        return (await self._conn.execute(query)).rowcount


class AuditRepo(_Repo):
    async def last(self, log: str) -> RowMapping | None:
        query = select(s.audit_entries).where(s.audit_entries.c.log == log)
        return await self._one(query.order_by(s.audit_entries.c.seq.desc()).limit(1))

    async def append(self, **values: Any) -> None:
        await self._conn.execute(insert(s.audit_entries).values(**values))

    async def entries(self, log: str, after: int = 0, limit: int | None = None) -> list[RowMapping]:
        query = select(s.audit_entries).where(
            s.audit_entries.c.log == log, s.audit_entries.c.seq > after
        )
        query = query.order_by(s.audit_entries.c.seq)
        return await self._all(query if limit is None else query.limit(limit))

    async def add_checkpoint(self, **values: Any) -> None:
        await self._conn.execute(insert(s.audit_checkpoints).values(**values))

    async def checkpoints(self, log: str) -> list[RowMapping]:
        query = select(s.audit_checkpoints).where(s.audit_checkpoints.c.log == log)
        return await self._all(query.order_by(s.audit_checkpoints.c.seq))

    async def last_checkpoint(self, log: str) -> RowMapping | None:
        query = select(s.audit_checkpoints).where(s.audit_checkpoints.c.log == log)
        return await self._one(query.order_by(s.audit_checkpoints.c.seq.desc()).limit(1))


class Scoped:
    """The repositories of one tenant, inside one transaction."""

    def __init__(self, conn: AsyncConnection, scope: TenantScope) -> None:
        self.scope = scope
        self.users = UsersRepo(conn, scope)
        self.groups = GroupsRepo(conn, scope)
        self.group_members = GroupMembersRepo(conn, scope)
        self.app_passwords = AppPasswordsRepo(conn, scope)
        self.recovery_codes = RecoveryCodesRepo(conn, scope)
        self.blobs = BlobsRepo(conn, scope)
        self.aliases = AliasesRepo(conn, scope)
        self.mailboxes = MailboxesRepo(conn, scope)
        self.messages = MessagesRepo(conn, scope)
        self.outbound = OutboundRepo(conn, scope)
        self.expunged = ExpungedRepo(conn, scope)
        self.subscriptions = SubscriptionsRepo(conn, scope)
        self.libraries = LibrariesRepo(conn, scope)
        self.nodes = NodesRepo(conn, scope)
        self.versions = VersionsRepo(conn, scope)
        self.grants = GrantsRepo(conn, scope)
        self.locks = LocksRepo(conn, scope)
        self.props = PropsRepo(conn, scope)
        self.labels = LabelsRepo(conn, scope)
        self.search_keys = SearchKeysRepo(conn, scope)
        self.search_entries = SearchEntriesRepo(conn, scope)
        self.search_postings = SearchPostingsRepo(conn, scope)
        self.search_jobs = SearchJobsRepo(conn, scope)


class Tx:
    """One transaction: platform repositories, plus scoped ones on request."""

    def __init__(self, conn: AsyncConnection, is_sqlite: bool) -> None:
        self.conn = conn
        self._is_sqlite = is_sqlite
        self.tenants = TenantsRepo(conn)
        self.tenant_keys = TenantKeysRepo(conn)
        self.domains = DomainsRepo(conn)
        self.dkim_keys = DkimKeysRepo(conn)
        self.operators = OperatorsRepo(conn)
        self.sessions = SessionsRepo(conn)
        self.audit = AuditRepo(conn)
        self._committed: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this transaction has committed (never if it rolls back):
        for telling other tasks about a change only when they can see it."""
        self._committed.append(callback)

    async def scoped(self, scope: TenantScope) -> Scoped:
        if not self._is_sqlite:  # the second wall: PostgreSQL row-level security
            await self.conn.execute(
                text("SELECT set_config('enclave.tenant_id', :t, true)"), {"t": scope.tenant_id}
            )
        return Scoped(self.conn, scope)


@asynccontextmanager
async def transaction(db: Database, *, write: bool = False) -> AsyncIterator[Tx]:
    async with db.transaction(write=write) as conn:
        tx = Tx(conn, db.is_sqlite)
        yield tx
    for callback in tx._committed:
        callback()
