"""Reading, checkpointing and exporting audit logs, for those allowed to."""

from __future__ import annotations

from typing import Any

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import transaction
from enclave.core.audit import PLATFORM, AuditEvent, AuditLog
from enclave.core.authz import Authorizer
from enclave.core.principal import Principal
from enclave.core.tenancy import find_tenant


class AuditAccess:
    def __init__(self, db: Database, audit: AuditLog, authz: Authorizer) -> None:
        self._db = db
        self._audit = audit
        self._authz = authz

    async def _log_of(self, principal: Principal, tenant: str | None, action: str) -> str:
        if tenant is None:
            # The platform log names tenants' users (host-console actions on them), so it is
            # read only on the host console, never by operators over the network.
            await self._authz.host_console(principal, action, "audit:platform")
            return PLATFORM
        async with transaction(self._db) as tx:
            found = await find_tenant(tx, tenant)
        await self._authz.audit_reader(principal, found.id, action)
        return found.id

    async def entries(
        self, principal: Principal, tenant: str | None, after: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        log = await self._log_of(principal, tenant, "audit.read")
        async with transaction(self._db) as tx:
            rows = await tx.audit.entries(log, after=after, limit=min(max(limit, 1), 1000))
        return [{k: v for k, v in row.items() if k != "id"} for row in rows]

    async def checkpoint(self, principal: Principal, tenant: str | None) -> int:
        log = await self._log_of(principal, tenant, "audit.checkpoint")
        async with transaction(self._db, write=True) as tx:
            return await self._audit.checkpoint(tx, log)

    async def export(self, principal: Principal, tenant: str | None) -> list[str]:
        """The export is itself audited, then the head is signed, so the file is complete."""
        log = await self._log_of(principal, tenant, "audit.export")
        async with transaction(self._db, write=True) as tx:
            event = AuditEvent.by(
                principal,
                "audit.export",
                f"audit:{tenant or PLATFORM}",
                tenant_id=None if log == PLATFORM else log,
            )
            await self._audit.record(tx, event)
            await self._audit.checkpoint(tx, log)
            return list(await self._audit.export(tx, log))
