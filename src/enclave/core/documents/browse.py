"""The read side a protocol front end needs per request, in one transaction: a path walked
from the library root (every node along it, with the principal's level there), and, if the
caller says it will want them, the last node's members, its content opened for reading and
the library's live locks.

A WebDAV request asks about a resource, its parent, their locks and then its content or its
members, each of which would otherwise be a transaction of its own that resolves the same
path again. Everything here is decided inside the one transaction, with the same rules as
``Documents`` (``Locator``): without read access a node does not exist, a label may keep
content from unmanaged clients (then ``content`` is None and ``Documents.read`` says why).
"""

from __future__ import annotations

from dataclasses import dataclass

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import transaction
from enclave.core import clock
from enclave.core.content import Content, ContentStore
from enclave.core.documents import paths
from enclave.core.documents.access import Level
from enclave.core.documents.labels import download_problem
from enclave.core.documents.locks import Lock, lock_of
from enclave.core.documents.lookup import Locator, tenant_scope
from enclave.core.documents.model import Node, node_of
from enclave.core.principal import Principal


@dataclass(frozen=True)
class Walk:
    """What ``Browser.walk`` found. ``nodes`` has an entry for the root and for each step of
    the path: the node, or None where there is none or the principal may not read it."""

    nodes: list[Node | None]
    members: list[Node] | None = None  # the last node's, if asked and it is a readable folder
    content: Content | None = None  # the last node's, if asked and allowed
    locks: list[Lock] | None = None  # the library's live locks, if asked and its root readable
    # node id -> dead properties (name -> value) of the last node and its members, if asked
    properties: dict[str, dict[str, str]] | None = None

    @property
    def node(self) -> Node | None:
        return self.nodes[-1]


class Browser:
    def __init__(self, db: Database, content: ContentStore) -> None:
        self._db = db
        self._content = content

    async def walk(
        self, principal: Principal, library_id: str, path: str, *, members: bool = False,
        content: bool = False, managed: bool = False, locks: bool = False,
        properties: bool = False,
    ) -> Walk:  # fmt: skip
        """The nodes along ``path``; ``members``, ``content`` (``managed``: the front end
        vouches for a managed client), ``locks`` and ``properties`` as ``Walk`` says."""
        parts = paths.split(path)
        scope = tenant_scope(principal)
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            locator = Locator(scoped, principal)
            library, chain = await locator.steps(library_id, parts)
            found: list[Node | None] = []
            for depth, row in enumerate(chain):
                level = await locator.level(library, chain[: depth + 1])
                readable = level >= Level.READ
                found.append(node_of(row, paths.join(parts[:depth]), level) if readable else None)
            found += [None] * (len(parts) + 1 - len(found))
            live: list[Lock] | None = None
            if locks and found[0] is not None:
                held = await scoped.locks.of_library(library_id, clock.now())
                live = [lock_of(lock) for lock in held]
            last, row = found[-1], chain[-1]
            if last is None:
                return Walk(found, locks=live)
            listed: list[Node] | None = None
            if members and last.folder:
                prefix = last.path + "/" if last.path else ""
                listed = [
                    node_of(child, prefix + child["name"], last.level)
                    for child in await scoped.nodes.children(row["id"])
                ]
            opened: Content | None = None
            if content and not last.folder and row["blob"] is not None:
                label = await scoped.labels.get(row["label"]) if row["label"] else None
                if download_problem(label, managed) is None:
                    opened = await self._content.opened(tx, scope, row["blob"])
            dead: dict[str, dict[str, str]] | None = None
            if properties:
                ids = [last.id, *(node.id for node in listed or [])]
                dead = {node_id: {} for node_id in ids}
                for prop in await scoped.props.of_nodes(ids):
                    dead[prop["node_id"]][prop["name"]] = prop["value"]
        return Walk(found, listed, opened, live, dead)
