"""Tenant users, groups, app passwords and second factors."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyotp

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import DuplicateKey, Scoped, Tx, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core import clock, names, passwords
from enclave.core.audit import AuditEvent, AuditLog
from enclave.core.authz import Authorizer
from enclave.core.errors import Conflict, Forbidden, Invalid, NotFound
from enclave.core.keys import KeyService
from enclave.core.principal import Principal, Realm, Role
from enclave.core.tenancy import Tenant, find_tenant

ISSUER = "Enclave"
RECOVERY_CODES = 10


@dataclass(frozen=True)
class User:
    id: str
    tenant_id: str
    email: str
    display_name: str
    status: str
    role: str
    mfa: bool
    quota_bytes: int | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> User:
        return cls(
            id=row["id"],
            tenant_id=row["tenant_id"],
            email=row["email"],
            display_name=row["display_name"],
            status=row["status"],
            role=row["role"],
            mfa=bool(row["totp_enabled"]),
            quota_bytes=row["quota_bytes"],
            created_at=row["created_at"],
        )


@dataclass(frozen=True)
class AppPassword:
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str


async def locate(tx: Tx, email: str) -> tuple[Tenant, Scoped, Any]:
    """The tenant that owns the address's domain, its scoped repositories, and the user row."""
    address = names.address(email)
    tenant_id = await tx.domains.tenant_of(address.rpartition("@")[2])
    if tenant_id is None:
        raise NotFound(f"no user {address}")
    tenant = await find_tenant(tx, tenant_id)
    scoped = await tx.scoped(TenantScope(tenant.id))
    row = await scoped.users.by_email(address)
    if row is None:
        raise NotFound(f"no user {address}")
    return tenant, scoped, row


def totp_secret_purpose(user_id: str) -> tuple[str, str]:
    return ("totp", user_id)


class UserService:
    def __init__(self, db: Database, keys: KeyService, audit: AuditLog, authz: Authorizer) -> None:
        self._db = db
        self._keys = keys
        self._audit = audit
        self._authz = authz

    async def _event(self, tx: Tx, actor: Principal, action: str, user: Any, **kw: Any) -> None:
        await self._audit.record(
            tx,
            AuditEvent.by(
                actor, action, f"user:{user['email']}", tenant_id=user["tenant_id"], **kw
            ),
        )

    async def add(
        self,
        actor: Principal,
        email: str,
        *,
        display_name: str = "",
        password: str | None = None,
        role: Role = Role.USER,
        quota_bytes: int | None = None,
    ) -> User:
        address = names.address(email)
        async with transaction(self._db) as tx:
            tenant_id = await tx.domains.tenant_of(address.rpartition("@")[2])
        if tenant_id is None:
            raise NotFound(f"no tenant has the domain of {address}")
        await self._authz.tenant_admin(actor, tenant_id, "user.add", f"user:{address}")
        password_hash = await passwords.hash_password_async(password) if password else None
        async with transaction(self._db, write=True) as tx:
            tenant = await find_tenant(tx, tenant_id)
            scoped = await tx.scoped(TenantScope(tenant.id))
            if await scoped.users.by_email(address):
                raise Conflict(f"user {address} already exists")
            row = {
                "id": str(uuid.uuid4()),
                "email": address,
                "display_name": display_name or address.partition("@")[0],
                "status": "active",
                "role": Role(role).value,
                "password_hash": password_hash,
                "totp_enabled": False,
                "quota_bytes": quota_bytes
                if quota_bytes is not None
                else tenant.default_quota_bytes,
                "created_at": clock.now(),
            }
            try:
                await scoped.users.add(**row)
            except DuplicateKey as exc:  # the address is taken (a group or another tenant)
                raise Conflict(f"address {address} is already in use") from exc
            await self._event(
                tx, actor, "user.add", row | {"tenant_id": tenant.id}, reason=f"role {row['role']}"
            )
            return User.from_row(row | {"tenant_id": tenant.id})

    async def get(self, actor: Principal, email: str) -> User:
        async with transaction(self._db) as tx:
            _, _, row = await locate(tx, email)
        await self._authz.self_or_admin(actor, row["tenant_id"], row["id"], "user.read", email)
        return User.from_row(row)

    async def list_users(self, actor: Principal, tenant: str) -> list[User]:
        async with transaction(self._db) as tx:
            found = await find_tenant(tx, tenant)
        await self._authz.tenant_admin(actor, found.id, "user.list", f"tenant:{found.name}")
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(TenantScope(found.id))
            return [User.from_row(r) for r in await scoped.users.all()]

    async def _change(
        self,
        actor: Principal,
        email: str,
        action: str,
        *,
        admin_only: bool = True,
        reason: str | None = None,
        **values: Any,
    ) -> User:
        async with transaction(self._db) as tx:
            _, _, row = await locate(tx, email)
        if admin_only:
            await self._authz.tenant_admin(actor, row["tenant_id"], action, f"user:{email}")
        else:
            await self._authz.self_or_admin(
                actor, row["tenant_id"], row["id"], action, f"user:{email}"
            )
        async with transaction(self._db, write=True) as tx:
            _, scoped, row = await locate(tx, email)
            await scoped.users.change(row["id"], **values)
            if "status" in values or "password_hash" in values or "totp_enabled" in values:
                await tx.sessions.revoke_subject(Realm.TENANT.value, row["id"], clock.now())
            await self._event(tx, actor, action, row, reason=reason)
            return User.from_row({**row, **values})

    async def set_status(self, actor: Principal, email: str, status: str) -> User:
        if status not in ("active", "disabled"):
            raise Invalid("status is active or disabled")
        return await self._change(actor, email, f"user.{status}", status=status)

    async def set_role(self, actor: Principal, email: str, role: Role) -> User:
        return await self._change(
            actor, email, "user.role", reason=f"role {role.value}", role=role.value
        )

    async def set_password(self, actor: Principal, email: str, password: str) -> User:
        password_hash = await passwords.hash_password_async(password)  # off the event loop
        return await self._change(
            actor, email, "user.password", admin_only=False, password_hash=password_hash
        )

    # --- app passwords -------------------------------------------------------------------

    async def _self_or_admin(self, actor: Principal, email: str, action: str) -> Any:
        async with transaction(self._db) as tx:
            _, _, row = await locate(tx, email)
        await self._authz.self_or_admin(actor, row["tenant_id"], row["id"], action, email)
        if actor.restricted:
            raise Forbidden("enrol a second factor first")
        return row

    async def add_app_password(
        self, actor: Principal, email: str, name: str
    ) -> tuple[AppPassword, str]:
        """A new app password for protocol clients; the secret is shown only this once."""
        name = name.strip()
        if not name or len(name) > 100:
            raise Invalid("an app password needs a name of at most 100 characters")
        await self._self_or_admin(actor, email, "user.app-password.add")
        secret = passwords.app_password()
        app = AppPassword(str(uuid.uuid4()), name, clock.now(), None)
        async with transaction(self._db, write=True) as tx:
            _, scoped, row = await locate(tx, email)
            await scoped.app_passwords.add(
                id=app.id,
                user_id=row["id"],
                name=name,
                secret_hash=passwords.digest(secret.replace("-", "")),
                created_at=app.created_at,
            )
            await self._event(tx, actor, "user.app-password.add", row, reason=f"{name} ({app.id})")
        return app, secret

    async def list_app_passwords(self, actor: Principal, email: str) -> list[AppPassword]:
        await self._self_or_admin(actor, email, "user.app-password.list")
        async with transaction(self._db) as tx:
            _, scoped, row = await locate(tx, email)
            rows = await scoped.app_passwords.for_user(row["id"])
        return [AppPassword(r["id"], r["name"], r["created_at"], r["last_used_at"]) for r in rows]

    async def revoke_app_password(self, actor: Principal, email: str, app_id: str) -> None:
        await self._self_or_admin(actor, email, "user.app-password.revoke")
        async with transaction(self._db, write=True) as tx:
            _, scoped, row = await locate(tx, email)
            matches = [
                r["id"]
                for r in await scoped.app_passwords.for_user(row["id"])
                if r["id"] == app_id
                or (len(app_id) >= 6 and r["id"].startswith(app_id))
                or r["name"] == app_id
            ]
            if len(matches) != 1:
                raise NotFound(f"no single app password matches {app_id!r}")
            await scoped.app_passwords.remove(row["id"], matches[0])
            await self._event(tx, actor, "user.app-password.revoke", row, reason=matches[0])

    # --- second factor -------------------------------------------------------------------

    async def begin_mfa(self, actor: Principal, email: str) -> Enrolment:
        """Store a new TOTP secret, not yet active: ``confirm_mfa`` with a code turns it on."""
        async with transaction(self._db) as tx:
            _, _, row = await locate(tx, email)
        await self._authz.self_or_admin(actor, row["tenant_id"], row["id"], "user.mfa.begin", email)
        if row["totp_enabled"]:
            raise Conflict("a second factor is already enrolled; an admin can reset it")
        secret = pyotp.random_base32()
        async with transaction(self._db, write=True) as tx:
            _, scoped, row = await locate(tx, email)
            sealed = self._keys.seal_secret(*totp_secret_purpose(row["id"]), secret.encode())
            await scoped.users.change(row["id"], totp_secret=sealed)
            await self._event(tx, actor, "user.mfa.begin", row)
        uri = pyotp.TOTP(secret).provisioning_uri(name=row["email"], issuer_name=ISSUER)
        return Enrolment(secret=secret, uri=uri)

    async def confirm_mfa(self, actor: Principal, email: str, code: str) -> list[str]:
        """Check a code from the new authenticator, turn the factor on, return recovery codes."""
        async with transaction(self._db) as tx:
            _, _, row = await locate(tx, email)
        await self._authz.self_or_admin(
            actor, row["tenant_id"], row["id"], "user.mfa.enable", email
        )
        if row["totp_secret"] is None or row["totp_enabled"]:
            raise Conflict("no enrolment in progress")
        secret = self._keys.open_secret(*totp_secret_purpose(row["id"]), row["totp_secret"])
        if not pyotp.TOTP(secret.decode()).verify(code.strip(), valid_window=1):
            raise Invalid("that code does not match; check the authenticator's clock")
        codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
        async with transaction(self._db, write=True) as tx:
            _, scoped, row = await locate(tx, email)
            await scoped.users.change(row["id"], totp_enabled=True)
            await scoped.recovery_codes.replace(row["id"], [passwords.digest(c) for c in codes])
            # Sessions from before the factor existed end now (they were password-only).
            await tx.sessions.revoke_subject(Realm.TENANT.value, row["id"], clock.now())
            await self._event(tx, actor, "user.mfa.enable", row)
        return codes

    async def reset_mfa(self, actor: Principal, email: str) -> User:
        user = await self._change(
            actor, email, "user.mfa.reset", totp_enabled=False, totp_secret=None
        )
        async with transaction(self._db, write=True) as tx:
            _, scoped, row = await locate(tx, email)
            await scoped.recovery_codes.clear(row["id"])
        return user

    # --- groups --------------------------------------------------------------------------

    async def add_group(
        self, actor: Principal, tenant: str, name: str, address: str | None = None
    ) -> str:
        async with transaction(self._db) as tx:
            found = await find_tenant(tx, tenant)
        await self._authz.tenant_admin(actor, found.id, "group.add", f"group:{name}")
        clean = names.address(address) if address else None
        if clean and clean.rpartition("@")[2] not in found.domains:
            raise Invalid(f"{clean} is not in one of the tenant's domains")
        group_id = str(uuid.uuid4())
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(TenantScope(found.id))
            if await scoped.groups.by_name(name):
                raise Conflict(f"group {name!r} already exists")
            await scoped.groups.add(id=group_id, name=name, address=clean, created_at=clock.now())
            await self._audit.record(
                tx, AuditEvent.by(actor, "group.add", f"group:{name}", tenant_id=found.id)
            )
        return group_id

    async def add_member(self, actor: Principal, tenant: str, group: str, email: str) -> None:
        async with transaction(self._db) as tx:
            found = await find_tenant(tx, tenant)
        await self._authz.tenant_admin(actor, found.id, "group.member.add", f"group:{group}")
        async with transaction(self._db, write=True) as tx:
            owner, scoped, row = await locate(tx, email)
            grp = await scoped.groups.by_name(group)
            if owner.id != found.id or grp is None:
                raise NotFound(f"no group {group!r} with member candidate {email} in {tenant}")
            await scoped.group_members.add(grp["id"], row["id"])
            await self._audit.record(
                tx,
                AuditEvent.by(
                    actor,
                    "group.member.add",
                    f"group:{group}",
                    tenant_id=found.id,
                    reason=row["email"],
                ),
            )

    async def groups(self, actor: Principal, tenant: str) -> list[dict[str, Any]]:
        async with transaction(self._db) as tx:
            found = await find_tenant(tx, tenant)
        await self._authz.tenant_admin(actor, found.id, "group.list", f"tenant:{found.name}")
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(TenantScope(found.id))
            users = {u["id"]: u["email"] for u in await scoped.users.all()}
            return [
                {
                    "name": g["name"],
                    "address": g["address"],
                    "members": sorted(
                        users[m] for m in await scoped.group_members.members(g["id"])
                    ),
                }
                for g in await scoped.groups.all()
            ]
