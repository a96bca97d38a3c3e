"""Which local mailboxes an address reaches: a user, an alias of a user, or a group (a
distribution list of its members). Lookups stay within the tenant that owns the domain."""

from __future__ import annotations

from dataclasses import dataclass

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Tx, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core import clock, names
from enclave.core.audit import AuditEvent, AuditLog
from enclave.core.authz import Authorizer
from enclave.core.errors import Conflict, Invalid, NotFound
from enclave.core.identity import locate
from enclave.core.mail.store import MailStore
from enclave.core.principal import Principal
from enclave.core.tenancy import find_tenant


@dataclass(frozen=True)
class Recipient:
    address: str
    tenant_id: str
    user_ids: tuple[str, ...]


# Whether a user (in the scope given) has room for the message (``MailStore.has_room``).


@dataclass(frozen=True)
class Route:
    """Where an RCPT address goes: ``local`` (the domain is ours), the active users it
    reaches (None: no such address, or nobody active), ``full`` (one of them has no room)."""

    local: bool
    recipient: Recipient | None = None
    full: bool = False


async def _resolve(tx: Tx, clean: str, tenant_id: str | None) -> Recipient | None:
    """``MailRouter.resolve`` of a normalised address inside ``tx`` (``tenant_id``: the
    domain's tenant, when the caller looked it up already)."""
    if tenant_id is None:
        tenant_id = await tx.domains.tenant_of(clean.rpartition("@")[2])
    if tenant_id is None:
        return None
    tenant = await tx.tenants.by_id(tenant_id)
    if tenant is None or tenant["status"] != "active":
        return None
    scoped = await tx.scoped(TenantScope(tenant_id))
    user = await scoped.users.by_email(clean)
    if user is not None:
        ids = [user["id"]] if user["status"] == "active" else []
    elif (alias := await scoped.aliases.get(clean)) is not None:
        target = await scoped.users.by_id(alias["user_id"])
        ids = [target["id"]] if target and target["status"] == "active" else []
    elif (group := await scoped.groups.by_address(clean)) is not None:
        members = await scoped.group_members.members(group["id"])
        active = {u["id"] for u in await scoped.users.all() if u["status"] == "active"}
        ids = [m for m in members if m in active]
    else:
        return None
    return Recipient(clean, tenant_id, tuple(ids)) if ids else None


class MailRouter:
    def __init__(self, db: Database, audit: AuditLog, authz: Authorizer) -> None:
        self._db = db
        self._audit = audit
        self._authz = authz

    async def is_local_domain(self, domain: str) -> bool:
        async with transaction(self._db) as tx:
            return await tx.domains.tenant_of(domain.lower()) is not None

    async def resolve(self, address: str) -> Recipient | None:
        """The active users an address delivers to, or None if it is not ours or unknown."""
        try:
            clean = names.address(address)
        except Invalid:
            return None
        async with transaction(self._db) as tx:
            return await _resolve(tx, clean, None)

    async def route(self, address: str, size: int | None = None) -> Route:
        """``is_local_domain``, ``resolve`` and, with ``size``, a check that every user the
        address reaches has room for that many bytes, in one read transaction (an MX's
        RCPT)."""
        domain = address.rpartition("@")[2].lower()
        async with transaction(self._db) as tx:
            tenant_id = await tx.domains.tenant_of(domain)
            if tenant_id is None:
                return Route(local=False)
            try:
                clean = names.address(address)
            except Invalid:
                return Route(local=True)
            known = tenant_id if clean.rpartition("@")[2] == domain else None
            recipient = await _resolve(tx, clean, known)
            if recipient is None or size is None:
                return Route(local=True, recipient=recipient)
            scoped = await tx.scoped(TenantScope(recipient.tenant_id))
            for user_id in recipient.user_ids:
                if not await MailStore.has_room(scoped, user_id, size):
                    return Route(local=True, recipient=recipient, full=True)
        return Route(local=True, recipient=recipient)

    # --- administration ------------------------------------------------------------------

    async def add_alias(self, actor: Principal, alias: str, email: str) -> None:
        clean = names.address(alias)
        async with transaction(self._db) as tx:
            tenant, _, user = await locate(tx, email)
        if clean.rpartition("@")[2] not in tenant.domains:
            raise Invalid(f"{clean} is not in one of {tenant.name}'s domains")
        await self._authz.tenant_admin(actor, tenant.id, "alias.add", f"alias:{clean}")
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(TenantScope(tenant.id))
            if (
                await scoped.users.by_email(clean)
                or await scoped.aliases.get(clean)
                or await scoped.groups.by_address(clean)
            ):
                raise Conflict(f"{clean} is already in use")
            await scoped.aliases.add(address=clean, user_id=user["id"], created_at=clock.now())
            await self._audit.record(
                tx,
                AuditEvent.by(
                    actor,
                    "alias.add",
                    f"alias:{clean}",
                    tenant_id=tenant.id,
                    reason=f"delivers to {user['email']}",
                ),
            )

    async def remove_alias(self, actor: Principal, alias: str) -> None:
        clean = names.address(alias)
        async with transaction(self._db) as tx:
            tenant_id = await tx.domains.tenant_of(clean.rpartition("@")[2])
        if tenant_id is None:
            raise NotFound(f"no alias {clean}")
        await self._authz.tenant_admin(actor, tenant_id, "alias.remove", f"alias:{clean}")
        async with transaction(self._db, write=True) as tx:
            if not await (await tx.scoped(TenantScope(tenant_id))).aliases.remove(clean):
                raise NotFound(f"no alias {clean}")
            await self._audit.record(
                tx, AuditEvent.by(actor, "alias.remove", f"alias:{clean}", tenant_id=tenant_id)
            )

    async def aliases(self, actor: Principal, tenant: str) -> list[tuple[str, str]]:
        async with transaction(self._db) as tx:
            found = await find_tenant(tx, tenant)
        await self._authz.tenant_admin(actor, found.id, "alias.list", f"tenant:{found.name}")
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(TenantScope(found.id))
            users = {u["id"]: u["email"] for u in await scoped.users.all()}
            return [
                (a["address"], users.get(a["user_id"], "?")) for a in await scoped.aliases.all()
            ]
