"""Libraries and who may use them: personal libraries (created on first use), shared ones
(created by tenant administrators), grants, legal holds and retention dates."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Scoped, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core import clock
from enclave.core.audit import AuditEvent, AuditLog
from enclave.core.authz import Authorizer
from enclave.core.bounds import INT64_MAX
from enclave.core.documents import paths
from enclave.core.documents.access import Level
from enclave.core.documents.labels import check_sharing
from enclave.core.documents.lookup import Locator, Place, tenant_scope
from enclave.core.documents.model import Library, library_of
from enclave.core.errors import Conflict, Forbidden, Invalid, NotFound
from enclave.core.principal import Principal, Realm, Role

SUBJECT_KINDS = ("user", "group", "tenant")
MAX_KEEP_DAYS = 36_500  # a century: "now minus keep_days" must stay a representable date


async def add_library(scoped: Scoped, name: str, owner_id: str | None, **policy: int | None) -> str:
    """A new library with its root folder; returns its id."""
    library_id, now = str(uuid.uuid4()), clock.now()
    await scoped.libraries.add(
        id=library_id, name=name, owner_id=owner_id, created_at=now, **policy
    )
    await scoped.nodes.add(
        id=str(uuid.uuid4()), library_id=library_id, parent_id=None, name="", folder=True,
        version=0, blob=None, size=0, content_type=None, etag=uuid.uuid4().hex,
        created_at=now, modified_at=now, legal_hold=False,
    )  # fmt: skip
    return library_id


async def library_usage(scoped: Scoped, library: Any) -> int:
    """Bytes a library's quota counts: every version and the trash, and for a personal
    library its owner's mail too (the user quota covers both)."""
    used = await scoped.nodes.usage(library["id"])
    if library["owner_id"] is not None:
        used += await scoped.messages.usage(library["owner_id"])
    return int(used)


class Libraries:
    def __init__(self, db: Database, audit: AuditLog, authz: Authorizer) -> None:
        self._db = db
        self._audit = audit
        self._authz = authz

    async def personal(self, principal: Principal, owner_email: str | None = None) -> Library:
        """A user's personal library: the principal's own (created on first use), or a
        colleague's that the principal holds a grant in."""
        scope = tenant_scope(principal)
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            owner = await (
                scoped.users.by_email(owner_email.lower())
                if owner_email
                else scoped.users.by_id(principal.id)
            )
            row = await scoped.libraries.personal(owner["id"]) if owner else None
            if row is not None:
                return library_of(row, await self._visible(scoped, principal, row))
        if owner is None or owner["id"] != principal.id:
            raise NotFound("no such library")
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            if await scoped.libraries.personal(principal.id) is None:
                quota = owner["quota_bytes"]  # the user's quota covers mail and files together
                await add_library(scoped, owner["email"], principal.id, quota_bytes=quota)
            row = await scoped.libraries.personal(principal.id)
            assert row is not None
            return library_of(row, Level.MANAGE)

    async def shared(self, principal: Principal, name: str) -> Library:
        """A shared library by name, if the principal may see anything in it."""
        scope = tenant_scope(principal)
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            row = await scoped.libraries.by_name(name)
            if row is None or row["owner_id"] is not None:
                raise NotFound("no such library")
            return library_of(row, await self._visible(scoped, principal, row))

    async def usage(self, principal: Principal, library_id: str) -> int:
        """Bytes the library's quota counts (``library_usage``), for anyone who may see it."""
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(tenant_scope(principal))
            row = await scoped.libraries.by_id(library_id)
            if row is None:
                raise NotFound("no such library")
            await self._visible(scoped, principal, row)
            return await library_usage(scoped, row)

    async def visible(self, principal: Principal) -> list[Library]:
        """The libraries the principal can reach: their own and every one with a grant."""
        own = await self.personal(principal)
        scope = tenant_scope(principal)
        found = [own]
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            for row in await scoped.libraries.all():
                if row["id"] == own.id:
                    continue
                try:
                    found.append(library_of(row, await self._visible(scoped, principal, row)))
                except NotFound:
                    continue
        return found

    async def all_of(self, actor: Principal, tenant_id: str) -> list[Library]:
        """Every library of a tenant (tenant administrators and the host console: names and
        policies, not content)."""
        await self._authz.tenant_admin(actor, tenant_id, "library.list", f"tenant:{tenant_id}")
        async with transaction(self._db) as tx:
            rows = await (await tx.scoped(TenantScope(tenant_id))).libraries.all()
        return [library_of(row, Level.NONE) for row in rows]

    async def named(self, actor: Principal, tenant_id: str, name: str) -> Library:
        """A library by name, for administration (personal ones are named by their owner's
        address)."""
        for library in await self.all_of(actor, tenant_id):
            if library.name == name:
                return library
        raise NotFound(f"no library {name}")

    async def create(
        self,
        actor: Principal,
        tenant_id: str,
        name: str,
        *,
        quota_bytes: int | None = None,
        keep_versions: int | None = None,
        keep_days: int | None = None,
    ) -> Library:
        paths.check_name(name)
        await self._authz.tenant_admin(actor, tenant_id, "library.create", f"library:{name}")
        if keep_versions is not None and not 1 <= keep_versions <= INT64_MAX:
            raise Invalid(f"keep_versions must be between 1 and {INT64_MAX}")
        if keep_days is not None and not 1 <= keep_days <= MAX_KEEP_DAYS:
            raise Invalid(f"keep_days must be between 1 and {MAX_KEEP_DAYS}")
        if quota_bytes is not None and not 0 <= quota_bytes <= INT64_MAX:
            raise Invalid(f"quota_bytes must be between 0 and {INT64_MAX}")
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(TenantScope(tenant_id))
            if await scoped.libraries.by_name(name) is not None:
                raise Conflict(f"library {name} exists")
            library_id = await add_library(
                scoped, name, None,
                quota_bytes=quota_bytes, keep_versions=keep_versions, keep_days=keep_days,
            )  # fmt: skip
            await self._audit.record(
                tx, AuditEvent.by(actor, "library.create", f"library:{name}", tenant_id=tenant_id)
            )
            row = await scoped.libraries.by_id(library_id)
        return library_of(row, Level.MANAGE)

    async def grant(
        self,
        actor: Principal,
        tenant_id: str,
        library_id: str,
        path: str,
        subject_kind: str,
        subject: str | None,
        level: str,
    ) -> str:
        """Give a user (by address), a group (by name) or the whole tenant a level at a folder
        (or the library, for the root). Needs manage there, or tenant administration."""
        if subject_kind not in SUBJECT_KINDS:
            raise Invalid(f"grants go to {', '.join(SUBJECT_KINDS)}")
        wanted = Level.named(level)
        await self._check_manage(actor, tenant_id, library_id, path, "grant")
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(TenantScope(tenant_id))
            place = await self._managed(scoped, actor, tenant_id, library_id, path)
            subject_id = await self._subject(scoped, subject_kind, subject)
            grant = {
                "id": str(uuid.uuid4()), "library_id": library_id,
                "node_id": None if len(place.chain) == 1 else place.node["id"],
                "subject_kind": subject_kind, "subject_id": subject_id,
                "level": wanted.name.lower(),
            }  # fmt: skip
            subtree = await Locator(scoped, actor).subtree(place.node, live=True)
            await check_sharing(scoped, place.library, place.chain, subtree, [grant])
            await scoped.grants.add(**grant)
            target = f"library:{place.library['name']}/{place.path}"
            await self._audit.record(
                tx,
                AuditEvent.by(
                    actor, "library.grant", target, tenant_id=tenant_id,
                    reason=f"{subject_kind}:{subject or '*'} {wanted.name.lower()}",
                ),
            )  # fmt: skip
        return str(grant["id"])

    async def hold(
        self,
        actor: Principal,
        tenant_id: str,
        library_id: str,
        path: str,
        *,
        legal_hold: bool | None = None,
        retain_until: datetime | None = None,
    ) -> None:
        """Set a legal hold or a retention date on a node: neither it nor anything below it
        can then be deleted, purged or have versions pruned. The compliance workload will
        drive these across workloads; here is where documents honour them."""
        await self._check_manage(actor, tenant_id, library_id, path, "hold")
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(TenantScope(tenant_id))
            place = await self._managed(scoped, actor, tenant_id, library_id, path)
            changes: dict[str, object] = {}
            if legal_hold is not None:
                changes["legal_hold"] = legal_hold
            if retain_until is not None:
                changes["retain_until"] = retain_until
            await scoped.nodes.change(place.node["id"], **changes)
            await self._audit.record(
                tx,
                AuditEvent.by(
                    actor, "library.hold", f"library:{place.library['name']}/{place.path}",
                    tenant_id=tenant_id, reason=", ".join(f"{k}={v}" for k, v in changes.items()),
                ),
            )  # fmt: skip

    @staticmethod
    def _may_manage(actor: Principal, tenant_id: str, place: Place) -> bool:
        """Manage access, or administration of a shared library by the tenant's admins (a
        personal library is managed by its owner alone)."""
        if actor.realm is Realm.SYSTEM or place.level >= Level.MANAGE:
            return True
        return (
            actor.realm is Realm.TENANT and actor.tenant_id == tenant_id
            and Role.ADMIN in actor.roles and not actor.restricted
            and place.library["owner_id"] is None
        )  # fmt: skip

    async def _check_manage(
        self, actor: Principal, tenant_id: str, library_id: str, path: str, action: str
    ) -> None:
        """Refuse (audited) before the write transaction: the refusal's audit entry is a write
        of its own, which must not wait for a transaction this caller holds."""
        async with transaction(self._db) as tx:
            place = await Locator(await tx.scoped(TenantScope(tenant_id)), actor).place(
                library_id, path
            )
        if self._may_manage(actor, tenant_id, place):
            return
        place.require(Level.READ)  # without access it does not exist: probing reveals nothing
        await self._authz.tenant_admin(actor, tenant_id, f"library.{action}", library_id)
        raise Forbidden("personal libraries are managed by their owners")

    async def _managed(
        self, scoped: Scoped, actor: Principal, tenant_id: str, library_id: str, path: str
    ) -> Place:
        """The place again inside the write transaction (access may have changed)."""
        place = await Locator(scoped, actor).place(library_id, path)
        if not self._may_manage(actor, tenant_id, place):
            raise Forbidden("manage access needed")
        return place

    @staticmethod
    async def _subject(scoped: Scoped, kind: str, subject: str | None) -> str | None:
        if kind == "tenant":
            return None
        if not subject:
            raise Invalid(f"name the {kind}")
        if kind == "user":
            user = await scoped.users.by_email(subject.lower())
            if user is None:
                raise NotFound(f"no user {subject}")
            return str(user["id"])
        group = await scoped.groups.by_name(subject)
        if group is None:
            raise NotFound(f"no group {subject}")
        return str(group["id"])

    @staticmethod
    async def _visible(scoped: Scoped, principal: Principal, row: Any) -> Level:
        """The principal's level at the library root, if they may see any of the library:
        by a grant at the root or at a folder deeper down (they then reach that folder by
        its path). NotFound otherwise, so probing names reveals nothing."""
        locator = Locator(scoped, principal)
        level = await locator.level(row, [await scoped.nodes.root(row["id"])])
        if level >= Level.READ:
            return level
        for grant in await scoped.grants.of_library(row["id"]):
            if grant["node_id"] is not None:
                node = await scoped.nodes.by_id(grant["node_id"])
                if node is not None and await locator.level(row, [node]) >= Level.READ:
                    return level
        raise NotFound("no such library")
