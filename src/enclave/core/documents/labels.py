"""Classification labels: a tenant's own ordered list (PUBLIC < INTERNAL < CUI < SECRET ...)
and the rules a label carries.

- ``managed_download_only``: the content may be downloaded only by managed clients (the front
  end decides what is managed: for now, clients on the deployment's managed networks).
- ``share_group``: the document may be shared only inside that group: every grant that reaches
  it must name the group or one of its members. Checked when a grant is made, when a label is
  set, and when a labelled document is moved or copied into another folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Scoped, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core.audit import AuditEvent, AuditLog
from enclave.core.authz import Authorizer
from enclave.core.bounds import INT64_MAX, bounded
from enclave.core.documents import paths
from enclave.core.documents.lookup import tenant_scope
from enclave.core.errors import Conflict, Forbidden, NotFound
from enclave.core.principal import Principal


@dataclass(frozen=True)
class Label:
    name: str
    rank: int
    managed_download_only: bool
    share_group: str | None  # the group's name


async def _label_of(scoped: Scoped, row: Any) -> Label:
    group = None
    if row["share_group_id"] is not None:
        found = await scoped.groups.by_id(row["share_group_id"])
        group = found["name"] if found else None
    return Label(row["name"], int(row["rank"]), bool(row["managed_download_only"]), group)


def outside_group(grants: Iterable[Any], group_id: str, members: set[str]) -> list[Any]:
    """The grants that reach beyond a group: to the tenant, another group, or a non-member."""
    return [
        grant for grant in grants
        if grant["subject_kind"] == "tenant"
        or (grant["subject_kind"] == "group" and grant["subject_id"] != group_id)
        or (grant["subject_kind"] == "user" and grant["subject_id"] not in members)
    ]  # fmt: skip


async def check_sharing(
    scoped: Scoped, library: Any, chain: list[Any], nodes: list[Any], extra: Iterable[Any] = ()
) -> None:
    """Refuse if a labelled node among ``nodes``, placed under ``chain``, would be reachable
    through a grant outside its label's group (``extra``: a grant about to be added)."""
    labelled = {row["label"] for row in nodes if row["label"]}
    if not labelled:
        return
    on_path = {row["id"] for row in chain}
    grants = [
        g for g in await scoped.grants.of_library(library["id"])
        if g["node_id"] is None or g["node_id"] in on_path
    ] + list(extra)  # fmt: skip
    for name in labelled:
        row = await scoped.labels.get(name)
        if row is None or row["share_group_id"] is None:
            continue
        members = set(await scoped.group_members.members(row["share_group_id"]))
        if library["owner_id"] is not None:
            members.add(library["owner_id"])  # the owner's own library is not sharing
        if outside_group(grants, row["share_group_id"], members):
            raise Forbidden(f"label {name}: shared only within its group")


def download_problem(label: Any, managed: bool) -> str | None:
    if label is not None and label["managed_download_only"] and not managed:
        return f"label {label['name']}: downloads only to managed clients"
    return None


class Labels:
    def __init__(self, db: Database, audit: AuditLog, authz: Authorizer) -> None:
        self._db = db
        self._audit = audit
        self._authz = authz

    async def all(self, principal: Principal) -> list[Label]:
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(tenant_scope(principal))
            return [await _label_of(scoped, row) for row in await scoped.labels.all()]

    async def define(
        self,
        actor: Principal,
        tenant_id: str,
        name: str,
        rank: int,
        *,
        managed_download_only: bool = False,
        share_group: str | None = None,
    ) -> Label:
        """Add or change a label (tenant administrators)."""
        paths.check_name(name)
        bounded(rank, "rank", -INT64_MAX - 1)
        await self._authz.tenant_admin(actor, tenant_id, "label.define", f"label:{name}")
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(TenantScope(tenant_id))
            group_id = None
            if share_group is not None:
                group = await scoped.groups.by_name(share_group)
                if group is None:
                    raise NotFound(f"no group {share_group}")
                group_id = group["id"]
            await scoped.labels.put(
                name=name, rank=rank, managed_download_only=managed_download_only,
                share_group_id=group_id,
            )  # fmt: skip
            await self._audit.record(
                tx,
                AuditEvent.by(
                    actor, "label.define", f"label:{name}", tenant_id=tenant_id,
                    reason=f"rank={rank} managed_download_only={managed_download_only} "
                    f"share_group={share_group}",
                ),
            )  # fmt: skip
            row = await scoped.labels.get(name)
            return await _label_of(scoped, row)

    async def remove(self, actor: Principal, tenant_id: str, name: str) -> None:
        await self._authz.tenant_admin(actor, tenant_id, "label.remove", f"label:{name}")
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(TenantScope(tenant_id))
            if await scoped.nodes.with_label(name):
                raise Conflict(f"label {name} is in use")
            if not await scoped.labels.remove(name):
                raise NotFound(f"no label {name}")
            await self._audit.record(
                tx, AuditEvent.by(actor, "label.remove", f"label:{name}", tenant_id=tenant_id)
            )
