"""Finding a node by path inside one transaction, with the principal's level there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Scoped, Tx, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core.documents import paths
from enclave.core.documents.access import Level, level_at, needs_groups, standing
from enclave.core.errors import Conflict, Forbidden, NotFound
from enclave.core.principal import Principal, Realm


def tenant_scope(principal: Principal) -> TenantScope:
    if principal.realm is not Realm.TENANT or principal.tenant_id is None:
        raise Forbidden("documents belong to tenant users")
    return TenantScope(principal.tenant_id)


@dataclass
class Place:
    """A node and the folders above it, from the library root down."""

    library: Any
    chain: list[Any]
    level: Level

    @property
    def node(self) -> Any:
        return self.chain[-1]

    @property
    def path(self) -> str:
        return paths.join([row["name"] for row in self.chain[1:]])

    def require(self, wanted: Level) -> None:
        """Refuse below ``wanted``. Without even read access the node does not exist, so
        probing reveals nothing."""
        if self.level < Level.READ:
            raise NotFound("no such file or folder")
        if self.level < wanted:
            raise Forbidden(f"{wanted.name.lower()} access needed")


class Locator:
    """Resolves paths for one principal inside one transaction (grants read once)."""

    def __init__(self, scoped: Scoped, principal: Principal) -> None:
        self.scoped = scoped
        self.principal = principal
        self._grants: dict[str, list[Any]] = {}
        self._groups: list[str] | None = None

    async def library(self, library_id: str) -> Any:
        row = await self.scoped.libraries.by_id(library_id)
        if row is None:
            raise NotFound("no such library")
        return row

    async def level(self, library: Any, chain: list[Any]) -> Level:
        """The level at the last node of ``chain``; the library's grants (and the
        principal's groups, if a grant names a group) are read once, and only when needed."""
        fixed = standing(self.principal, library)
        if fixed is not None:
            return fixed
        grants = self._grants.get(library["id"])
        if grants is None:
            grants = self._grants[library["id"]] = await self.scoped.grants.of_library(
                library["id"]
            )
        if self._groups is None and needs_groups(grants):
            self._groups = await self.scoped.group_members.groups_of(self.principal.id)
        ids = [row["id"] for row in chain]
        return level_at(self.principal, library, ids, grants, self._groups or [])

    async def steps(self, library_id: str, parts: list[str]) -> tuple[Any, list[Any]]:
        """The library and its live nodes from the root down ``parts``, as far as they exist
        (one query); NotFound if there is no such library."""
        found = await self.scoped.nodes.chain(library_id, parts)
        if found is None:
            raise NotFound("no such library")
        return found

    async def place(self, library_id: str, path: str | list[str]) -> Place:
        """The live node at ``path``; NotFound if any step is missing or not visible (an
        invisible folder hides what it lacks, too: both are the same NotFound)."""
        parts = paths.split(path) if isinstance(path, str) else path
        library, chain = await self.steps(library_id, parts)
        if len(chain) <= len(parts):
            raise NotFound("no such file or folder")
        return Place(library, chain, await self.level(library, chain))

    async def folder(self, library_id: str, parts: list[str], wanted: Level) -> Place:
        """A folder that something is about to go into."""
        place = await self.place(library_id, parts)
        place.require(wanted)
        if not place.node["folder"]:
            raise Conflict("not a folder")
        return place

    async def folder_with(
        self, library_id: str, parts: list[str], name: str, wanted: Level
    ) -> tuple[Place, Any | None]:
        """``folder`` for ``parts``, and its live member ``name`` if there is one (both found
        by one query)."""
        library, chain = await self.steps(library_id, [*parts, name])
        if len(chain) <= len(parts):
            raise NotFound("no such file or folder")
        above = chain[: len(parts) + 1]
        place = Place(library, above, await self.level(library, above))
        place.require(wanted)
        if not place.node["folder"]:
            raise Conflict("not a folder")
        return place, chain[-1] if len(chain) > len(above) else None

    async def subtree(self, node: Any, *, live: bool = False) -> list[Any]:
        """The node and everything below it, folders before their contents; trashed
        descendants included unless ``live``."""
        found, frontier = [node], [node["id"]] if node["folder"] else []
        while frontier:
            children = await self.scoped.nodes.all_children(frontier)
            if live:
                children = [row for row in children if row["deleted_at"] is None]
            found += children
            frontier = [row["id"] for row in children if row["folder"]]
        return found


@dataclass
class Here:
    """What ``located`` hands over: the transaction, the tenant's repositories, the locator
    and the place it found."""

    tx: Tx
    scoped: Scoped
    locator: Locator
    place: Place


@asynccontextmanager
async def located(
    db: Database, principal: Principal, library_id: str, path: str | list[str], wanted: Level,
    *, write: bool = False,
) -> AsyncIterator[Here]:  # fmt: skip
    """A transaction in the principal's tenant with the node at ``path`` resolved and the
    principal's level there checked against ``wanted``."""
    async with transaction(db, write=write) as tx:
        scoped = await tx.scoped(tenant_scope(principal))
        locator = Locator(scoped, principal)
        place = await locator.place(library_id, path)
        place.require(wanted)
        yield Here(tx, scoped, locator, place)
