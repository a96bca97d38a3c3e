"""Tenants: creation with their keys and domains, suspension, deletion by crypto-shredding."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from enclave.backends.blobs import BlobStore
from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Tx, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core import clock, names
from enclave.core.audit import AuditEvent, AuditLog
from enclave.core.authz import Authorizer
from enclave.core.errors import Conflict, Invalid, NotFound
from enclave.core.keys import KeyService
from enclave.core.principal import Principal

ACTIVE = "active"
SUSPENDED = "suspended"


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    status: str
    domains: tuple[str, ...]
    require_mfa: bool
    default_quota_bytes: int | None
    created_at: datetime
    users: int = 0


async def find_tenant(tx: Tx, name_or_id: str) -> Tenant:
    row = await tx.tenants.by_name(name_or_id.strip().lower()) or await tx.tenants.by_id(name_or_id)
    if row is None:
        raise NotFound(f"no tenant {name_or_id!r}")
    return Tenant(
        id=row["id"],
        name=row["name"],
        status=row["status"],
        domains=tuple(await tx.domains.of_tenant(row["id"])),
        require_mfa=bool(row["require_mfa"]),
        default_quota_bytes=row["default_quota_bytes"],
        created_at=row["created_at"],
    )


class TenantService:
    def __init__(
        self,
        db: Database,
        keys: KeyService,
        blobs: BlobStore,
        audit: AuditLog,
        authz: Authorizer,
    ) -> None:
        self._db = db
        self._keys = keys
        self._blobs = blobs
        self._audit = audit
        self._authz = authz

    async def create(
        self,
        principal: Principal,
        name: str,
        domains: list[str],
        default_quota_bytes: int | None = None,
    ) -> Tenant:
        name = names.tenant_name(name)
        await self._authz.platform(principal, "tenant.create", f"tenant:{name}")
        if not domains:
            raise Invalid("a tenant needs at least one mail domain")
        clean = [names.domain(d) for d in domains]
        tenant_id = str(uuid.uuid4())
        async with transaction(self._db, write=True) as tx:
            if await tx.tenants.by_name(name):
                raise Conflict(f"tenant {name!r} already exists")
            for domain in clean:
                if await tx.domains.tenant_of(domain):
                    raise Conflict(f"domain {domain!r} already belongs to a tenant")
            await tx.tenants.add(
                id=tenant_id,
                name=name,
                status=ACTIVE,
                require_mfa=False,
                default_quota_bytes=default_quota_bytes,
                wrapped_name_key=self._keys.new_name_key(tenant_id),
                created_at=clock.now(),
            )
            await self._keys.create_tenant_key(tx, tenant_id)
            for domain in clean:
                await tx.domains.add(domain, tenant_id, clock.now())
            await self._audit.record(
                tx,
                AuditEvent.by(
                    principal,
                    "tenant.create",
                    f"tenant:{name}",
                    tenant_id=tenant_id,
                    reason=f"domains {', '.join(clean)}",
                ),
            )
            return await find_tenant(tx, tenant_id)

    async def get(self, name: str) -> Tenant:
        async with transaction(self._db) as tx:
            return await find_tenant(tx, name)

    async def list_tenants(self, principal: Principal) -> list[Tenant]:
        await self._authz.platform(principal, "tenant.list", "tenants")
        async with transaction(self._db) as tx:
            result = []
            for row in await tx.tenants.all():
                tenant = await find_tenant(tx, row["id"])
                users = await (await tx.scoped(TenantScope(tenant.id))).users.count()
                result.append(Tenant(**{**tenant.__dict__, "users": users}))
            return result

    async def set_status(self, principal: Principal, name: str, status: str) -> Tenant:
        action = "tenant.suspend" if status == SUSPENDED else "tenant.resume"
        await self._authz.platform(principal, action, f"tenant:{name}")
        async with transaction(self._db, write=True) as tx:
            tenant = await find_tenant(tx, name)
            await tx.tenants.change(tenant.id, status=status)
            await self._audit.record(
                tx, AuditEvent.by(principal, action, f"tenant:{tenant.name}", tenant_id=tenant.id)
            )
            return await find_tenant(tx, tenant.id)

    async def add_domain(self, principal: Principal, name: str, domain: str) -> Tenant:
        await self._authz.platform(principal, "tenant.domain.add", f"tenant:{name}")
        clean = names.domain(domain)
        async with transaction(self._db, write=True) as tx:
            tenant = await find_tenant(tx, name)
            if await tx.domains.tenant_of(clean):
                raise Conflict(f"domain {clean!r} already belongs to a tenant")
            await tx.domains.add(clean, tenant.id, clock.now())
            await self._audit.record(
                tx,
                AuditEvent.by(
                    principal, "tenant.domain.add", f"domain:{clean}", tenant_id=tenant.id
                ),
            )
            return await find_tenant(tx, tenant.id)

    async def require_mfa(self, principal: Principal, name: str, required: bool) -> Tenant:
        async with transaction(self._db) as tx:
            tenant = await find_tenant(tx, name)
        await self._authz.tenant_admin(principal, tenant.id, "tenant.mfa-policy", tenant.name)
        async with transaction(self._db, write=True) as tx:
            await tx.tenants.change(tenant.id, require_mfa=required)
            await self._audit.record(
                tx,
                AuditEvent.by(
                    principal,
                    "tenant.mfa-policy",
                    f"tenant:{tenant.name}",
                    tenant_id=tenant.id,
                    reason="second factor required" if required else "second factor optional",
                ),
            )
            return await find_tenant(tx, tenant.id)

    async def delete(self, principal: Principal, name: str) -> None:
        """Destroy the tenant's keys first (its content is unreadable from that commit on),
        then its rows and its stored objects."""
        await self._authz.platform(principal, "tenant.delete", f"tenant:{name}")
        async with transaction(self._db, write=True) as tx:
            tenant = await find_tenant(tx, name)
            await self._keys.shred(tx, tenant.id)
            await tx.tenants.change(tenant.id, status="deleting", wrapped_name_key=b"")
            await self._audit.record(
                tx,
                AuditEvent.by(
                    principal,
                    "tenant.key.destroy",
                    f"tenant:{tenant.name}",
                    tenant_id=tenant.id,
                    reason="crypto-shredding before deletion",
                ),
            )
        await self._blobs.delete_tenant(tenant.id)
        async with transaction(self._db, write=True) as tx:
            await tx.tenants.remove(tenant.id)
            await self._audit.record(
                tx,
                AuditEvent.by(
                    principal,
                    "tenant.delete",
                    f"tenant:{tenant.name}",
                    tenant_id=None,
                    reason=f"id {tenant.id}",
                ),
            )

    async def rotate_key(self, principal: Principal, name: str) -> int:
        async with transaction(self._db) as tx:
            tenant = await find_tenant(tx, name)
        await self._authz.tenant_admin(principal, tenant.id, "key.rotate", f"tenant:{name}")
        async with transaction(self._db, write=True) as tx:
            version = await self._keys.rotate(tx, tenant.id)
            await self._audit.record(
                tx,
                AuditEvent.by(
                    principal,
                    "key.rotate",
                    f"tenant:{tenant.name}",
                    tenant_id=tenant.id,
                    reason=f"now version {version}; previous key destroyed",
                ),
            )
        return version
