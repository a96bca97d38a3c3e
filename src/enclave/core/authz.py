"""Authorisation: every core service asks here before acting. Refusals are audited.

Rules:
- platform actions (tenants, operators, health): operators who meet the eligibility policy now,
  and the host console;
- tenant administration: that tenant's admins, and the host console;
- reading a tenant's audit log: that tenant's admins and auditors, and the host console;
- acting on one's own account: the user, that tenant's admins, and the host console;
- reading the platform audit log: the host console only (it names tenants' users).
Operators hold no tenant rights at all: content access comes only through a lockbox grant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from enclave.core.audit import AuditEvent, AuditLog
from enclave.core.errors import Forbidden
from enclave.core.principal import Principal, Realm, Role

# Returns why an operator may not act now, or None when they may.
EligibilityCheck = Callable[[Principal], Awaitable[str | None]]


class Authorizer:
    def __init__(self, audit: AuditLog, eligibility: EligibilityCheck) -> None:
        self._audit = audit
        self._eligibility = eligibility

    async def _deny(
        self, principal: Principal, action: str, target: str, reason: str, tenant_id: str | None
    ) -> Forbidden:
        await self._audit.record_now(
            AuditEvent.by(
                principal, action, target, outcome="denied", reason=reason, tenant_id=tenant_id
            )
        )
        return Forbidden(reason)

    async def platform(self, principal: Principal, action: str, target: str) -> None:
        if principal.realm is Realm.SYSTEM:
            return
        if principal.realm is Realm.OPERATOR:
            problem = await self._eligibility(principal)
            if problem is None:
                return
            raise await self._deny(principal, action, target, f"not eligible: {problem}", None)
        raise await self._deny(principal, action, target, "platform operators only", None)

    async def host_console(self, principal: Principal, action: str, target: str) -> None:
        if principal.realm is not Realm.SYSTEM:
            raise await self._deny(principal, action, target, "host console only", None)

    def _in_tenant(self, principal: Principal, tenant_id: str, roles: set[Role]) -> bool:
        return (
            principal.realm is Realm.TENANT
            and principal.tenant_id == tenant_id
            and not principal.restricted
            and bool(principal.roles & roles)
        )

    async def tenant_admin(
        self, principal: Principal, tenant_id: str, action: str, target: str
    ) -> None:
        if principal.realm is Realm.SYSTEM or self._in_tenant(principal, tenant_id, {Role.ADMIN}):
            return
        raise await self._deny(principal, action, target, "tenant administrators only", tenant_id)

    async def audit_reader(self, principal: Principal, tenant_id: str, action: str) -> None:
        if principal.realm is Realm.SYSTEM or self._in_tenant(
            principal, tenant_id, {Role.ADMIN, Role.AUDITOR}
        ):
            return
        raise await self._deny(
            principal, action, f"audit:{tenant_id}", "tenant admins and auditors only", tenant_id
        )

    async def self_or_admin(
        self, principal: Principal, tenant_id: str, user_id: str, action: str, target: str
    ) -> None:
        if principal.realm is Realm.TENANT and principal.id == user_id:
            return
        await self.tenant_admin(principal, tenant_id, action, target)
