"""What operators may see of the platform: counts and state, never tenant content."""

from __future__ import annotations

from typing import Any

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core.audit import PLATFORM
from enclave.core.authz import Authorizer
from enclave.core.principal import Principal


class PlatformHealth:
    def __init__(self, db: Database, authz: Authorizer) -> None:
        self._db = db
        self._authz = authz

    async def probe(self) -> bool:
        """Liveness of the database, for /healthz (no principal: it reveals nothing)."""
        try:
            async with transaction(self._db) as tx:
                await tx.tenants.by_id("")
        except Exception:
            return False
        return True

    async def tenant_counts(self) -> dict[str, int]:
        """Tenants by status, for the metrics endpoint."""
        async with transaction(self._db) as tx:
            rows = await tx.tenants.all()
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        return counts

    async def report(self, principal: Principal) -> dict[str, Any]:
        await self._authz.platform(principal, "platform.health", "platform")
        async with transaction(self._db) as tx:
            tenants = await tx.tenants.all()
            users = 0
            for tenant in tenants:
                users += await (await tx.scoped(TenantScope(tenant["id"]))).users.count()
            operators = await tx.operators.all()
            head = await tx.audit.last(PLATFORM)
        return {
            "database": "ok",
            "tenants": {
                "total": len(tenants),
                "active": sum(1 for t in tenants if t["status"] == "active"),
                "suspended": sum(1 for t in tenants if t["status"] == "suspended"),
            },
            "users": users,
            "operators": len(operators),
            "platform_audit_seq": int(head["seq"]) if head else 0,
        }
