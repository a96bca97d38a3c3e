"""Tenant-scoped repositories for documents: libraries, the folder tree, versions, grants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func
from sqlalchemy.engine import RowMapping

from enclave.backends.db import schema as s
from enclave.backends.db.scoped import ScopedRepo

CHUNK = 500  # ids or names per IN (...) list, well under every dialect's parameter limit
JOINED = 30  # path steps resolved in one query (a join each)
CHAIN_QUERIES_MAX = 4096  # (tenant, depth) chain queries kept built
_STEPS = [s.doc_nodes.alias(f"step{i}") for i in range(JOINED)]
_CHAINS: dict[tuple[str, int], Select[Any]] = {}


class LibrariesRepo(ScopedRepo):
    table = s.libraries

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def by_id(self, library_id: str) -> RowMapping | None:
        return await self._first_where(id=library_id)

    async def by_name(self, name: str) -> RowMapping | None:
        return await self._first_where(name=name)

    async def personal(self, owner_id: str) -> RowMapping | None:
        return await self._first_where(owner_id=owner_id)

    async def all(self) -> list[RowMapping]:
        return await self._all(self._select().order_by(s.libraries.c.name))

    async def change(self, library_id: str, **values: Any) -> None:
        await self._update_where({"id": library_id}, **values)


class NodesRepo(ScopedRepo):
    table = s.doc_nodes

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def by_id(self, node_id: str) -> RowMapping | None:
        return await self._first_where(id=node_id)

    async def root(self, library_id: str) -> RowMapping | None:
        return await self._one(
            self._select().where(
                s.doc_nodes.c.library_id == library_id, s.doc_nodes.c.parent_id.is_(None)
            )
        )

    async def chain(
        self, library_id: str, names: list[str]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """A library's row and its live nodes from the root down ``names``, as far as they
        exist, in one query (the root joined with one alias per step; past ``JOINED`` steps,
        a query per step: SQLite joins at most 64 tables); None if there is no such
        library."""
        found = await self._chain(library_id, names[:JOINED])
        if found is not None and len(names) > JOINED:
            chain = found[1]
            for name in names[JOINED:]:
                if len(chain) <= JOINED:
                    break
                below = await self.child(chain[-1]["id"], name)
                if below is None:
                    break
                chain.append(dict(below))
        return found

    async def _chain(
        self, library_id: str, names: list[str]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        query = self._chain_query(len(names))
        params = {"library": library_id} | {f"name{i}": name for i, name in enumerate(names)}
        row = (await self._conn.execute(query, params)).first()
        if row is None:
            return None
        nodes, libraries = s.doc_nodes, s.libraries
        width, names_of = len(nodes.c), list(nodes.c.keys())
        library = dict(zip(libraries.c.keys(), row[: len(libraries.c)], strict=True))
        found: list[dict[str, Any]] = []
        for start in range(len(libraries.c), len(row), width):
            values = row[start : start + width]
            if values[0] is None:  # the id: this step and everything below is missing
                break
            found.append(dict(zip(names_of, values, strict=True)))
        return library, found

    def _chain_query(self, depth: int) -> Select[Any]:
        """The chain query for ``depth`` steps (names and library as bound parameters),
        built once per tenant and depth: building the joins costs more than running them."""
        key = (self._scope.tenant_id, depth)
        query = _CHAINS.get(key)
        if query is not None:
            return query
        nodes, libraries = s.doc_nodes, s.libraries
        joined = libraries.join(
            nodes,
            and_(
                nodes.c.library_id == libraries.c.id,
                nodes.c.parent_id.is_(None),
                libraries.c.tenant_id == nodes.c.tenant_id,
            ),
        )
        above: Any = nodes
        for index, step in enumerate(_STEPS[:depth]):
            joined = joined.outerjoin(
                step,
                and_(
                    step.c.parent_id == above.c.id,
                    step.c.name == bindparam(f"name{index}"),
                    step.c.deleted_at.is_(None),
                    step.c.tenant_id == nodes.c.tenant_id,
                ),
            )
            above = step
        query = self._select(libraries, nodes, *_STEPS[:depth]).select_from(joined)
        query = query.where(libraries.c.id == bindparam("library"))
        if len(_CHAINS) >= CHAIN_QUERIES_MAX:
            _CHAINS.clear()
        _CHAINS[key] = query
        return query

    async def child(self, parent_id: str, name: str) -> RowMapping | None:
        """The live child of that name."""
        return await self._one(
            self._select().where(
                s.doc_nodes.c.parent_id == parent_id,
                s.doc_nodes.c.name == name,
                s.doc_nodes.c.deleted_at.is_(None),
            )
        )

    async def children(self, parent_id: str) -> list[RowMapping]:
        query = self._select().where(
            s.doc_nodes.c.parent_id == parent_id, s.doc_nodes.c.deleted_at.is_(None)
        )
        return await self._all(query.order_by(s.doc_nodes.c.name))

    async def all_children(self, parent_ids: list[str]) -> list[RowMapping]:
        """Children, trashed ones included, of several folders (for walking a subtree)."""
        rows: list[RowMapping] = []
        for start in range(0, len(parent_ids), 500):
            query = self._select().where(
                s.doc_nodes.c.parent_id.in_(parent_ids[start : start + 500])
            )
            rows += await self._all(query)
        return rows

    async def trashed(self, library_id: str) -> list[RowMapping]:
        query = self._select().where(
            s.doc_nodes.c.library_id == library_id, s.doc_nodes.c.deleted_at.is_not(None)
        )
        return await self._all(query.order_by(s.doc_nodes.c.deleted_at.desc()))

    async def add_many(self, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), CHUNK):
            await self._insert_many(rows[start : start + CHUNK])

    async def change(self, node_id: str, **values: Any) -> None:
        await self._update_where({"id": node_id}, **values)

    async def change_many(self, node_ids: list[str], **values: Any) -> None:
        for start in range(0, len(node_ids), CHUNK):
            chunk = node_ids[start : start + CHUNK]
            await self._conn.execute(
                self._update().where(s.doc_nodes.c.id.in_(chunk)).values(**values)
            )

    async def remove(self, node_id: str) -> None:
        await self._delete_where(id=node_id)

    async def remove_many(self, node_ids: list[str]) -> None:
        """Remove nodes, given children before their folders (each chunk is one DELETE)."""
        for start in range(0, len(node_ids), CHUNK):
            chunk = node_ids[start : start + CHUNK]
            await self._conn.execute(self._delete().where(s.doc_nodes.c.id.in_(chunk)))

    async def with_label(self, label: str) -> bool:
        query = self._select(s.doc_nodes.c.id).where(s.doc_nodes.c.label == label).limit(1)
        return await self._one(query) is not None

    async def usage(self, library_id: str) -> int:
        """Bytes held by every version of every document in a library, trash included."""
        query = self._select_from(s.doc_versions, func.coalesce(func.sum(s.doc_versions.c.size), 0))
        query = query.where(
            s.doc_versions.c.node_id.in_(
                self._select(s.doc_nodes.c.id).where(s.doc_nodes.c.library_id == library_id)
            )
        )
        return int((await self._conn.execute(query)).scalar_one())


class VersionsRepo(ScopedRepo):
    table = s.doc_versions

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def add_many(self, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), CHUNK):
            await self._insert_many(rows[start : start + CHUNK])

    async def of_nodes(self, node_ids: list[str]) -> list[RowMapping]:
        rows: list[RowMapping] = []
        for start in range(0, len(node_ids), CHUNK):
            chunk = node_ids[start : start + CHUNK]
            rows += await self._all(self._select().where(s.doc_versions.c.node_id.in_(chunk)))
        return rows

    async def total_size(self, node_ids: list[str]) -> int:
        """Bytes held by every version of these nodes."""
        total = 0
        for start in range(0, len(node_ids), CHUNK):
            query = self._select(func.coalesce(func.sum(s.doc_versions.c.size), 0)).where(
                s.doc_versions.c.node_id.in_(node_ids[start : start + CHUNK])
            )
            total += int((await self._conn.execute(query)).scalar_one())
        return total

    async def of_node(self, node_id: str) -> list[RowMapping]:
        query = self._select().where(s.doc_versions.c.node_id == node_id)
        return await self._all(query.order_by(s.doc_versions.c.number))

    async def get(self, node_id: str, number: int) -> RowMapping | None:
        return await self._first_where(node_id=node_id, number=number)

    async def remove(self, version_id: str) -> None:
        await self._delete_where(id=version_id)


class GrantsRepo(ScopedRepo):
    table = s.doc_grants

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def of_library(self, library_id: str) -> list[RowMapping]:
        return await self._all(self._select().where(s.doc_grants.c.library_id == library_id))

    async def of_subjects(self, user_id: str, group_ids: list[str]) -> list[RowMapping]:
        """Every grant naming this user, one of these groups, or the whole tenant."""
        subject = s.doc_grants.c
        query = self._select().where(
            ((subject.subject_kind == "user") & (subject.subject_id == user_id))
            | ((subject.subject_kind == "group") & subject.subject_id.in_(group_ids or [""]))
            | (subject.subject_kind == "tenant")
        )
        return await self._all(query)

    async def remove(self, grant_id: str) -> int:
        query = self._delete().where(s.doc_grants.c.id == grant_id)
        return (await self._conn.execute(query)).rowcount


class LocksRepo(ScopedRepo):
    table = s.doc_locks

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def get(self, token: str) -> RowMapping | None:
        return await self._first_where(token=token)

    async def of_library(self, library_id: str, now: datetime) -> list[RowMapping]:
        """The live locks of a library (a handful at most: locks are short-lived)."""
        query = self._select().where(
            s.doc_locks.c.library_id == library_id, s.doc_locks.c.expires_at > now
        )
        return await self._all(query.order_by(s.doc_locks.c.created_at))

    async def change(self, token: str, **values: Any) -> None:
        await self._update_where({"token": token}, **values)

    async def remove(self, token: str) -> int:
        return await self._delete_where(token=token)

    async def remove_expired(self, now: datetime) -> int:
        query = self._delete().where(s.doc_locks.c.expires_at <= now)
        return (await self._conn.execute(query)).rowcount


class PropsRepo(ScopedRepo):
    """Custom (WebDAV dead) properties. Changes come in batches of bounded size: one DELETE
    and one executemany INSERT per batch, never a statement per property."""

    table = s.doc_props

    async def of_node(self, node_id: str) -> list[RowMapping]:
        query = self._select().where(s.doc_props.c.node_id == node_id)
        return await self._all(query.order_by(s.doc_props.c.name))

    async def of_nodes(self, node_ids: list[str]) -> list[RowMapping]:
        """The properties of several nodes (for copying a subtree)."""
        rows: list[RowMapping] = []
        for start in range(0, len(node_ids), CHUNK):
            query = self._select().where(s.doc_props.c.node_id.in_(node_ids[start : start + CHUNK]))
            rows += await self._all(query)
        return rows

    async def footprint(self, node_id: str) -> tuple[int, int]:
        """How many properties a node has, and the characters of their values together."""
        query = self._select(
            func.count(), func.coalesce(func.sum(func.length(s.doc_props.c.value)), 0)
        ).where(s.doc_props.c.node_id == node_id)
        count, size = (await self._conn.execute(query)).one()
        return int(count), int(size)

    async def sizes(self, node_id: str, names: list[str]) -> dict[str, int]:
        """The value lengths (characters) of those of ``names`` the node has."""
        found: dict[str, int] = {}
        for start in range(0, len(names), CHUNK):
            query = self._select(s.doc_props.c.name, func.length(s.doc_props.c.value)).where(
                s.doc_props.c.node_id == node_id,
                s.doc_props.c.name.in_(names[start : start + CHUNK]),
            )
            for name, size in (await self._conn.execute(query)).all():
                found[name] = int(size)
        return found

    async def put(self, node_id: str, name: str, value: str) -> None:
        await self.put_many(node_id, {name: value})

    async def put_many(self, node_id: str, values: dict[str, str]) -> None:
        """Set several properties of a node (replacing those that exist)."""
        await self.remove_many(node_id, list(values))
        await self._insert_many(
            [{"node_id": node_id, "name": name, "value": value} for name, value in values.items()]
        )

    async def add_many(self, rows: list[dict[str, str]]) -> None:
        """New rows (node_id, name, value) for nodes that have none of these names yet."""
        for start in range(0, len(rows), CHUNK):
            await self._insert_many(rows[start : start + CHUNK])

    async def remove(self, node_id: str, name: str) -> int:
        return await self.remove_many(node_id, [name])

    async def remove_many(self, node_id: str, names: list[str]) -> int:
        removed = 0
        for start in range(0, len(names), CHUNK):
            query = self._delete().where(
                s.doc_props.c.node_id == node_id,
                s.doc_props.c.name.in_(names[start : start + CHUNK]),
            )
            removed += (await self._conn.execute(query)).rowcount
        return removed


class LabelsRepo(ScopedRepo):
    table = s.doc_labels

    async def all(self) -> list[RowMapping]:
        return await self._all(self._select().order_by(s.doc_labels.c.rank))

    async def get(self, name: str) -> RowMapping | None:
        return await self._first_where(name=name)

    async def put(self, **values: Any) -> None:
        await self._conn.execute(self._delete().where(s.doc_labels.c.name == values["name"]))
        await self._insert(**values)

    async def remove(self, name: str) -> int:
        query = self._delete().where(s.doc_labels.c.name == name)
        return (await self._conn.execute(query)).rowcount
