"""Folders and documents in a library: browse, upload (streamed, every write a new version),
download, versions, delete to trash, restore, purge, move and copy.

Every call resolves the path and checks the principal's level inside the transaction that
acts, so a grant revoked meanwhile counts. Content goes through the encrypted content store;
each version row holds one reference to its object, so identical versions are stored once and
an object goes when its last version does. Legal holds and retention dates on a node or any
folder above or below it stop deletion, purge and version pruning.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable
from datetime import datetime, timedelta
from typing import Any

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Scoped, Tx, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core import clock
from enclave.core.audit import AuditEvent, AuditLog
from enclave.core.bounds import bounded
from enclave.core.content import Content, ContentStore, ObjectSealer, StoredObject
from enclave.core.documents import paths
from enclave.core.documents.access import Level
from enclave.core.documents.labels import check_sharing, download_problem
from enclave.core.documents.libraries import library_usage
from enclave.core.documents.locks import Tokens, check_unlocked, release_below
from enclave.core.documents.lookup import Locator, Place, located, tenant_scope
from enclave.core.documents.model import Node, Trashed, Version, node_of
from enclave.core.errors import Conflict, Forbidden, NotFound, PreconditionFailed, QuotaExceeded
from enclave.core.principal import Principal
from enclave.core.search.index import DOC_KIND
from enclave.core.search.queue import IndexQueue

CHECK_FIRST_BYTES = 1024 * 1024  # larger (or unknown) content is checked before it streams


def _held(rows: list[Any]) -> bool:
    now = clock.now()
    return any(
        row["legal_hold"] or (row["retain_until"] is not None and row["retain_until"] > now)
        for row in rows
    )


class Documents:
    def __init__(
        self,
        db: Database,
        content: ContentStore,
        audit: AuditLog,
        index: IndexQueue | None = None,
    ) -> None:
        self._db = db
        self._content = content
        self._audit = audit
        self._index = index

    async def _reindex(self, tx: Tx, scoped: Scoped, node_id: str, *, deep: bool = False) -> None:
        """Ask for the search index to catch up with this change, in its transaction (the
        index follows in the background). Trash and restore need nothing: trashed documents
        stay indexed, and searches leave them out."""
        if self._index is not None:
            await self._index.add(tx, scoped, DOC_KIND, node_id, deep=deep)

    # --- reading -------------------------------------------------------------------------

    async def stat(self, principal: Principal, library_id: str, path: str) -> Node:
        async with located(self._db, principal, library_id, path, Level.READ) as here:
            place = here.place
        return node_of(place.node, place.path, place.level)

    async def children(self, principal: Principal, library_id: str, path: str) -> list[Node]:
        async with located(self._db, principal, library_id, path, Level.READ) as here:
            place = here.place
            if not place.node["folder"]:
                raise Conflict("not a folder")
            rows = await here.scoped.nodes.children(place.node["id"])
        prefix = place.path + "/" if place.path else ""
        return [node_of(row, prefix + row["name"], place.level) for row in rows]

    async def read(
        self, principal: Principal, library_id: str, path: str, version: int | None = None,
        *, managed: bool = False,
    ) -> tuple[Node, Content]:  # fmt: skip
        """A document's content (the current version unless one is named), streamed.
        ``managed``: the front end vouches that the client is a managed one (labels may
        forbid downloads to others)."""
        if version is not None:
            bounded(version, "version", 1)
        async with located(self._db, principal, library_id, path, Level.READ) as here:
            place, scoped = here.place, here.scoped
            if place.node["folder"]:
                raise Conflict("a folder has no content")
            label = await scoped.labels.get(place.node["label"]) if place.node["label"] else None
            problem = download_problem(label, managed)
            if problem is not None:
                raise Forbidden(problem)
            number = place.node["version"] if version is None else version
            row = await scoped.versions.get(place.node["id"], number)
            if row is None:
                raise NotFound(f"no version {number}")
            content = await self._content.opened(here.tx, tenant_scope(principal), row["blob"])
        return node_of(place.node, place.path, place.level), content

    async def versions(self, principal: Principal, library_id: str, path: str) -> list[Version]:
        async with located(self._db, principal, library_id, path, Level.READ) as here:
            place = here.place
            rows = await here.scoped.versions.of_node(place.node["id"])
        current = place.node["version"]
        return [
            Version(int(r["number"]), int(r["size"]), r["content_type"], r["created_at"],
                    r["created_by"], int(r["number"]) == current)
            for r in rows
        ]  # fmt: skip

    # --- writing -------------------------------------------------------------------------

    async def make_folder(
        self, principal: Principal, library_id: str, path: str, *, tokens: Tokens = None
    ) -> Node:
        scope = tenant_scope(principal)
        parent_parts, name = paths.parent_and_name(path)
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            parent, existing = await Locator(scoped, principal).folder_with(
                library_id, parent_parts, name, Level.WRITE
            )
            await check_unlocked(
                scoped, principal, library_id, [*parent_parts, name], tokens, member_of_parent=True
            )
            if existing is not None:
                raise Conflict(f"{name} exists")
            row = await self._add_node(scoped, principal, parent, name, folder=True)
        return node_of(row, paths.join([*parent_parts, name]), parent.level)

    async def write(
        self,
        principal: Principal,
        library_id: str,
        path: str,
        data: bytes | AsyncIterable[bytes],
        content_type: str | None = None,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        tokens: Tokens = None,
        length: int | None = None,
    ) -> tuple[Node, bool]:
        """Store new content at ``path`` (a new document, or a new version of one) and return
        it and whether it was created. The content streams to the blob store first; the rows
        commit only if the principal may still write there and the quota holds. ``tokens``
        are the lock tokens a WebDAV client presented (None: the caller's own locks count).
        ``length``: the content's size, if the caller knows it; content known to be small is
        not checked before it is stored (the commit checks the same, and refuses the same)."""
        scope = tenant_scope(principal)
        parent_parts, name = paths.parent_and_name(path)
        known = len(data) if isinstance(data, bytes) else length
        if known is None or known > CHECK_FIRST_BYTES:
            await self._check_writable(
                principal, scope, library_id, parent_parts, name, if_match, tokens
            )
        result: list[Any] = []

        async def attach(tx: Tx, scoped: Scoped, stored: StoredObject, _: ObjectSealer) -> int:
            parent, existing = await Locator(scoped, principal).folder_with(
                library_id, parent_parts, name, Level.WRITE
            )
            self._preconditions(existing, if_match, if_none_match)
            await check_unlocked(
                scoped, principal, library_id, [*parent_parts, name], tokens,
                member_of_parent=existing is None,
            )  # fmt: skip
            await self._check_quota(scoped, parent.library, stored.size)
            if existing is None:
                row = await self._add_node(scoped, principal, parent, name, folder=False)
            else:
                row = existing
            number = int(row["version"]) + 1
            changes = await self._add_version(
                scoped, principal, row["id"], number, stored, content_type
            )
            await self._prune(scoped, parent.library, row)
            await self._reindex(tx, scoped, row["id"])
            result[:] = [{**row, **changes}, parent.level, existing is None]  # as now stored
            return 1

        await self._content.put(scope, data, attach)
        row, level, created = result
        return node_of(row, paths.join([*parent_parts, name]), level), created

    async def _check_writable(
        self, principal: Principal, scope: TenantScope, library_id: str, parent_parts: list[str],
        name: str, if_match: str | None, tokens: Tokens,
    ) -> None:  # fmt: skip
        """Refuse early, before a large upload is streamed, what would be refused at commit."""
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            _, existing = await Locator(scoped, principal).folder_with(
                library_id, parent_parts, name, Level.WRITE
            )
            if existing is not None and existing["folder"]:
                raise Conflict(f"{name} is a folder")
            await check_unlocked(
                scoped, principal, library_id, [*parent_parts, name], tokens,
                member_of_parent=existing is None,
            )  # fmt: skip
            if if_match is not None:
                self._preconditions(existing, if_match, False)

    @staticmethod
    def _preconditions(existing: Any, if_match: str | None, if_none_match: bool) -> None:
        if existing is not None and existing["folder"]:
            raise Conflict(f"{existing['name']} is a folder")
        if if_match is not None and (existing is None or existing["etag"] != if_match):
            raise PreconditionFailed("the document changed")
        if if_none_match and existing is not None:
            raise PreconditionFailed("the document exists")

    async def _add_node(
        self, scoped: Scoped, principal: Principal, parent: Place, name: str, *, folder: bool
    ) -> Any:
        """The new node's row, as inserted (not read back)."""
        now = clock.now()
        row: dict[str, Any] = dict(
            id=str(uuid.uuid4()), library_id=parent.library["id"], parent_id=parent.node["id"],
            name=name, folder=folder, version=0, blob=None, size=0, content_type=None,
            etag=uuid.uuid4().hex, created_at=now, modified_at=now, modified_by=principal.id,
            legal_hold=False,
        )  # fmt: skip
        await scoped.nodes.add(**row)
        unset = ("deleted_at", "deleted_by", "retain_until", "title", "description", "tags")
        return row | {"tenant_id": scoped.scope.tenant_id, "label": None} | dict.fromkeys(unset)

    async def _add_version(
        self, scoped: Scoped, principal: Principal, node_id: str, number: int,
        stored: StoredObject, content_type: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        """Returns what changed on the node's row."""
        now = clock.now()
        await scoped.versions.add(
            id=str(uuid.uuid4()), node_id=node_id, number=number, blob=stored.name,
            size=stored.size, content_type=content_type, created_at=now, created_by=principal.id,
        )  # fmt: skip
        changes: dict[str, Any] = dict(
            version=number, blob=stored.name, size=stored.size, content_type=content_type,
            etag=uuid.uuid4().hex, modified_at=now, modified_by=principal.id,
        )  # fmt: skip
        await scoped.nodes.change(node_id, **changes)
        return changes

    @staticmethod
    async def _check_quota(scoped: Scoped, library: Any, adding: int) -> None:
        """A library's quota covers every version and the trash; a personal library's owner
        also has the user quota, shared with their mail."""
        limit = library["quota_bytes"]
        if limit is None:
            return
        if await library_usage(scoped, library) + adding > limit:
            raise QuotaExceeded(f"library {library['name']} is over its quota")

    async def _prune(self, scoped: Scoped, library: Any, node: Any) -> None:
        """Drop versions beyond the library's policy (keep N, or keep D days), never the
        current one, and none of a held document."""
        keep_n, keep_days = library["keep_versions"], library["keep_days"]
        if keep_n is None and keep_days is None:
            return
        if _held([node]):
            return
        rows = await scoped.versions.of_node(node["id"])
        newest = max(int(r["number"]) for r in rows) if rows else 0
        cutoff = clock.now() - timedelta(days=keep_days) if keep_days is not None else None
        for row in rows:
            number = int(row["number"])
            if number == newest:
                continue
            too_many = keep_n is not None and number <= newest - keep_n
            too_old = cutoff is not None and row["created_at"] < cutoff
            if too_many or too_old:
                await scoped.versions.remove(row["id"])
                await scoped.blobs.incref(row["blob"], -1)

    async def restore_version(
        self, principal: Principal, library_id: str, path: str, number: int,
        *, tokens: Tokens = None,
    ) -> Node:  # fmt: skip
        """Make an earlier version current again, as a new version (history is kept)."""
        bounded(number, "version", 1)
        async with located(self._db, principal, library_id, path, Level.WRITE, write=True) as here:
            place, scoped = here.place, here.scoped
            await check_unlocked(scoped, principal, library_id, paths.split(place.path), tokens)
            old = await scoped.versions.get(place.node["id"], number)
            if old is None:
                raise NotFound(f"no version {number}")
            await scoped.blobs.incref(old["blob"], 1)
            stored = StoredObject(old["blob"], int(old["size"]))
            new_number = int(place.node["version"]) + 1
            await self._add_version(
                scoped, principal, place.node["id"], new_number, stored, old["content_type"]
            )
            await self._prune(scoped, place.library, place.node)
            await self._reindex(here.tx, scoped, place.node["id"])
            row = await scoped.nodes.by_id(place.node["id"])
        return node_of(row, place.path, place.level)

    # --- moving and copying --------------------------------------------------------------

    async def move(
        self, principal: Principal, library_id: str, path: str, target_library_id: str,
        target_path: str, *, overwrite: bool, tokens: Tokens = None,
    ) -> tuple[Node, bool]:  # fmt: skip
        """Move (or rename) a node with everything below it; returns it and whether an
        existing target was replaced (the replaced one goes to the trash)."""
        return await self._transfer(
            principal, library_id, path, target_library_id, target_path, overwrite, tokens,
            move=True,
        )  # fmt: skip

    async def copy(
        self, principal: Principal, library_id: str, path: str, target_library_id: str,
        target_path: str, *, overwrite: bool, tokens: Tokens = None,
    ) -> tuple[Node, bool]:  # fmt: skip
        """Copy a document (its current version) or a folder with its live contents."""
        return await self._transfer(
            principal, library_id, path, target_library_id, target_path, overwrite, tokens,
            move=False,
        )  # fmt: skip

    async def _transfer(
        self, principal: Principal, library_id: str, path: str, target_library_id: str,
        target_path: str, overwrite: bool, tokens: Tokens, *, move: bool,
    ) -> tuple[Node, bool]:  # fmt: skip
        scope = tenant_scope(principal)
        parent_parts, name = paths.parent_and_name(target_path)
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            locator = Locator(scoped, principal)
            source = await locator.place(library_id, path)
            source.require(Level.WRITE if move else Level.READ)
            if len(source.chain) == 1:
                raise Forbidden("the library root cannot be moved or copied")
            target = await locator.folder(target_library_id, parent_parts, Level.WRITE)
            if any(row["id"] == source.node["id"] for row in target.chain):
                raise Conflict("a folder cannot go inside itself")
            destination = [*parent_parts, name]
            await check_unlocked(
                scoped, principal, target_library_id, destination, tokens, subtree=True,
                member_of_parent=True,
            )  # fmt: skip
            if move:
                await check_unlocked(
                    scoped, principal, library_id, paths.split(source.path), tokens,
                    subtree=True, member_of_parent=True,
                )  # fmt: skip
            existing = await scoped.nodes.child(target.node["id"], name)
            if existing is not None and existing["id"] == source.node["id"]:
                raise Forbidden("source and destination are the same")
            if existing is not None:
                if not overwrite:
                    raise PreconditionFailed(f"{name} exists")
                held = await Locator(scoped, principal).place(
                    target_library_id, [*parent_parts, name]
                )
                await self._check_not_held(locator, held, "replaced")
                await scoped.nodes.change(
                    existing["id"], deleted_at=clock.now(), deleted_by=principal.id
                )
            subtree = await locator.subtree(source.node, live=not move)
            await check_sharing(scoped, target.library, target.chain, subtree)
            if not move or target.library["id"] != source.library["id"]:
                adding = sum(int(row["size"]) for row in subtree)  # current versions
                if move:
                    adding = await self._versions_size(scoped, subtree)
                await self._check_quota(scoped, target.library, adding)
            if move:
                await scoped.nodes.change(
                    source.node["id"], parent_id=target.node["id"], name=name,
                    modified_at=clock.now(), modified_by=principal.id,
                )  # fmt: skip
                await scoped.nodes.change_many(
                    [row["id"] for row in subtree], library_id=target.library["id"]
                )
                await release_below(scoped, library_id, paths.split(source.path))
                node_id = source.node["id"]
            else:
                node_id = await self._copy_tree(scoped, principal, subtree, target, name)
            await self._reindex(tx, scoped, node_id, deep=True)
            row = await scoped.nodes.by_id(node_id)
        return node_of(row, paths.join([*parent_parts, name]), target.level), existing is not None

    @staticmethod
    async def _versions_size(scoped: Scoped, rows: list[Any]) -> int:
        return await scoped.versions.total_size([row["id"] for row in rows])

    async def _copy_tree(
        self, scoped: Scoped, principal: Principal, subtree: list[Any], target: Place, name: str
    ) -> str:
        """New nodes for a live subtree (listed folders first); documents get their current
        version as version 1, sharing the stored content; dead properties go along. Rows are
        written in batches (executemany), so the write transaction grows by a few statements
        per 500 nodes or properties, not by several per node and per property."""
        now = clock.now()
        new_ids = {subtree[0]["parent_id"]: target.node["id"]}
        nodes: list[dict[str, Any]] = []
        versions: list[dict[str, Any]] = []
        blobs: dict[str, int] = {}
        for row in subtree:
            node_id = str(uuid.uuid4())
            new_ids[row["id"]] = node_id
            nodes.append(dict(
                id=node_id, library_id=target.library["id"], parent_id=new_ids[row["parent_id"]],
                name=name if row is subtree[0] else row["name"], folder=row["folder"],
                version=0 if row["folder"] else 1, blob=row["blob"], size=row["size"],
                content_type=row["content_type"], etag=uuid.uuid4().hex, created_at=now,
                modified_at=now, modified_by=principal.id, legal_hold=False,
                title=row["title"], description=row["description"], tags=row["tags"],
                label=row["label"],
            ))  # fmt: skip
            if not row["folder"]:
                blobs[row["blob"]] = blobs.get(row["blob"], 0) + 1
                versions.append(dict(
                    id=str(uuid.uuid4()), node_id=node_id, number=1, blob=row["blob"],
                    size=row["size"], content_type=row["content_type"], created_at=now,
                    created_by=principal.id,
                ))  # fmt: skip
        await scoped.nodes.add_many(nodes)  # parents before children: subtree order
        for blob, copies in blobs.items():
            await scoped.blobs.incref(blob, copies)
        await scoped.versions.add_many(versions)
        props = await scoped.props.of_nodes([row["id"] for row in subtree])
        await scoped.props.add_many(
            [
                {"node_id": new_ids[p["node_id"]], "name": p["name"], "value": p["value"]}
                for p in props
            ]
        )
        return str(new_ids[subtree[0]["id"]])

    # --- deleting ------------------------------------------------------------------------

    async def delete(
        self, principal: Principal, library_id: str, path: str, *, tokens: Tokens = None
    ) -> None:
        """Move a document or folder (with everything in it) to the library's trash."""
        async with located(self._db, principal, library_id, path, Level.WRITE, write=True) as here:
            place, scoped = here.place, here.scoped
            if len(place.chain) == 1:
                raise Forbidden("the library root cannot be deleted")
            await self._check_not_held(here.locator, place, "deleted")
            parts = paths.split(place.path)
            await check_unlocked(
                scoped, principal, library_id, parts, tokens, subtree=True, member_of_parent=True
            )
            await release_below(scoped, library_id, parts)
            await scoped.nodes.change(
                place.node["id"], deleted_at=clock.now(), deleted_by=principal.id
            )
            await self._audit.record(here.tx, self._event(principal, "document.trash", place))

    @staticmethod
    async def _check_not_held(locator: Locator, place: Place, doing: str) -> None:
        if _held(place.chain) or _held(await locator.subtree(place.node)):
            raise Forbidden(f"under a legal hold or retention rule: cannot be {doing}")

    @staticmethod
    def _event(principal: Principal, action: str, place: Place) -> AuditEvent:
        return AuditEvent.by(principal, action, f"library:{place.library['name']}/{place.path}")

    async def trash(self, principal: Principal, library_id: str) -> list[Trashed]:
        """What was deleted in a library, newest first (what the principal may see)."""
        async with located(self._db, principal, library_id, "", Level.READ) as here:
            rows = await here.scoped.nodes.trashed(library_id)
        return [
            Trashed(r["id"], r["name"], bool(r["folder"]), int(r["size"]), r["deleted_at"],
                    r["deleted_by"])
            for r in rows
        ]  # fmt: skip

    async def _trashed(self, scoped: Scoped, principal: Principal, library_id: str,
                       node_id: str, wanted: Level) -> tuple[Any, Place]:  # fmt: skip
        row = await scoped.nodes.by_id(node_id)
        if row is None or row["library_id"] != library_id or row["deleted_at"] is None:
            raise NotFound("nothing like that in the trash")
        parent = await scoped.nodes.by_id(row["parent_id"])
        place = await Locator(scoped, principal).place(
            library_id, await self._path_of(scoped, parent)
        )
        place.require(wanted)
        return row, place

    @staticmethod
    async def _path_of(scoped: Scoped, row: Any) -> list[str]:
        names: list[str] = []
        while row is not None and row["parent_id"] is not None:
            if row["deleted_at"] is not None:
                raise Conflict("the folder it was in is in the trash too: restore that first")
            names.append(row["name"])
            row = await scoped.nodes.by_id(row["parent_id"])
        return names[::-1]

    async def restore(self, principal: Principal, library_id: str, node_id: str) -> Node:
        """Put a trashed node back where it was (refused if the name is taken meanwhile)."""
        scope = tenant_scope(principal)
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            row, parent = await self._trashed(scoped, principal, library_id, node_id, Level.WRITE)
            if await scoped.nodes.child(parent.node["id"], row["name"]) is not None:
                raise Conflict(f"{row['name']} exists again in that folder")
            await scoped.nodes.change(node_id, deleted_at=None, deleted_by=None)
            restored = await scoped.nodes.by_id(node_id)
            path = paths.join([*paths.split(parent.path), row["name"]])
            await self._audit.record(
                tx,
                AuditEvent.by(
                    principal, "document.restore", f"library:{parent.library['name']}/{path}"
                ),
            )
        return node_of(restored, path, parent.level)

    async def purge_expired_trash(self, tenant_id: str, older_than: datetime) -> int:
        """Housekeeping: purge what was trashed before ``older_than`` (held nodes stay);
        expired locks go too. Returns how many trashed nodes went."""
        purged = 0
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(TenantScope(tenant_id))
            await scoped.locks.remove_expired(clock.now())
            for library in await scoped.libraries.all():
                for row in await scoped.nodes.trashed(library["id"]):
                    if row["deleted_at"] >= older_than:
                        continue
                    subtree = await Locator(scoped, Principal.system("housekeeping")).subtree(row)
                    if _held(subtree):
                        continue
                    await self._remove_tree(scoped, subtree)
                    purged += 1
        return purged

    async def _remove_tree(self, scoped: Scoped, subtree: list[Any]) -> None:
        """Remove a subtree's nodes (their versions and properties go with them, and their
        index entries), releasing one reference per version: a few statements per 500 nodes
        and one per object."""
        ids = [node["id"] for node in subtree]
        if self._index is not None:
            documents = [n["id"] for n in subtree if not n["folder"]]
            await self._index.forget(scoped, DOC_KIND, documents)
        released: dict[str, int] = {}
        for version in await scoped.versions.of_nodes(ids):
            released[version["blob"]] = released.get(version["blob"], 0) + 1
        for blob, count in released.items():
            await scoped.blobs.incref(blob, -count)
        await scoped.nodes.remove_many(ids[::-1])  # children before their folders

    async def purge(self, principal: Principal, library_id: str, node_id: str) -> None:
        """Delete a trashed node and everything below it for good (manage access)."""
        scope = tenant_scope(principal)
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            row, parent = await self._trashed(scoped, principal, library_id, node_id, Level.MANAGE)
            subtree = await Locator(scoped, principal).subtree(row)
            if _held(subtree) or _held(parent.chain):
                raise Forbidden("under a legal hold or retention rule: cannot be purged")
            await self._remove_tree(scoped, subtree)
            await self._audit.record(
                tx,
                AuditEvent.by(
                    principal, "document.purge", f"library:{parent.library['name']}/{row['name']}"
                ),
            )
