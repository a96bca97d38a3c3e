"""Full-text search over documents: keeping the index up to date, and answering queries with
only what the asking principal may read.

The index (``backends.search``) holds names, metadata and extracted text per tenant; it knows
nothing of grants or the trash. So every candidate it returns is looked up again here, inside
one read transaction: it must still exist, be live with every folder above it live, and the
principal must have read access on its path (``Locator``). The index is asked for more than a
page (``OVERFETCH``) so a page fills even when some candidates are filtered out.

``reindex`` runs after a write has committed (it reads the content back through the
encrypted store). If the document changed meanwhile, the stale text is not written: the
later change's own reindex indexes the newer content.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import structlog

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Scoped, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.backends.search import IndexFields, SearchIndex, SearchResult, terms
from enclave.backends.search import SearchUnavailable as IndexUnavailable
from enclave.core.content import ContentStore
from enclave.core.documents import paths
from enclave.core.documents.access import Level
from enclave.core.documents.extract import MAX_INPUT_BYTES, text_of, wanted_bytes
from enclave.core.documents.labels import download_problem
from enclave.core.documents.lookup import Locator, tenant_scope
from enclave.core.errors import IntegrityError, NotFound, Unavailable
from enclave.core.principal import Principal

log = structlog.get_logger("enclave.search")

MAX_LIMIT = 100
OVERFETCH = 5
MAX_CANDIDATES = 1000  # stop looking after this many candidates, even if the page is short


class SearchUnavailable(Unavailable):
    """Full-text search is not available on this deployment's database (yet)."""


@dataclass(frozen=True)
class SearchHit:
    node_id: str
    library_id: str
    library_name: str
    path: str  # from the library root
    name: str
    snippet: str  # matches marked with backends.search.MARK_START / MARK_END
    score: float  # higher is better; comparable only within one answer


def _tags(value: str | None) -> str:
    """Tags are stored as a JSON list of strings; anything else indexes as nothing."""
    try:
        tags = json.loads(value) if value else []
    except ValueError:
        return ""
    return " ".join(tag for tag in tags if isinstance(tag, str)) if isinstance(tags, list) else ""


async def _chain(scoped: Scoped, node: Any, cache: dict[str, Any]) -> list[Any] | None:
    """The live rows from the library root down to ``node``; None if it or a folder above
    it is trashed or gone."""
    chain = [node]
    for _ in range(paths.MAX_DEPTH + 2):  # bounded: a corrupt parent loop cannot spin
        row = chain[-1]
        if row["deleted_at"] is not None:
            return None
        if row["parent_id"] is None:
            return chain[::-1]
        parent_id = row["parent_id"]
        if parent_id not in cache:
            cache[parent_id] = await scoped.nodes.by_id(parent_id)
        if cache[parent_id] is None:
            return None
        chain.append(cache[parent_id])
    return None


@dataclass
class _Cache:
    """Rows looked up once per query."""

    managed: bool
    folders: dict[str, Any] = field(default_factory=dict)
    libraries: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, bool] = field(default_factory=dict)

    async def may_see_content(self, scoped: Scoped, label: str) -> bool:
        if label not in self.labels:
            row = await scoped.labels.get(label)
            self.labels[label] = download_problem(row, self.managed) is None
        return self.labels[label]


class DocumentSearch:
    def __init__(self, db: Database, content: ContentStore, index: SearchIndex) -> None:
        self._db = db
        self._content = content
        self._index = index

    # --- keeping the index current -------------------------------------------------------

    async def reindex(self, tenant_id: str, node_id: str) -> None:
        """Index a document as it is now, or remove it if it is a folder, trashed, below a
        trashed folder, or purged."""
        if not self._index.available:
            return
        scope = TenantScope(tenant_id)
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            node = await scoped.nodes.by_id(node_id)
            live = node is not None and not node["folder"] and bool(await _chain(scoped, node, {}))
        body = await self._text(scope, node) if node is not None and live else ""
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            current = await scoped.nodes.by_id(node_id)
            if (
                live
                and node is not None
                and current is not None
                and current["blob"] != node["blob"]
            ):
                return  # new content since we read it: its own reindex follows
            if (
                not live
                or current is None
                or current["folder"]
                or not await _chain(scoped, current, {})
            ):
                await self._index.remove(tx.conn, scope, node_id)
                return
            fields = IndexFields(
                name=current["name"],
                title=current["title"] or "",
                description=current["description"] or "",
                tags=_tags(current["tags"]),
                text=body,
            )
            await self._index.put(tx.conn, scope, node_id, current["library_id"], fields)

    async def refresh(self, tenant_id: str, node_id: str, *, subtree: bool = False) -> None:
        """``reindex`` (or ``reindex_subtree``) for a caller whose own change has committed:
        failures are logged, never raised. The change stands; ``rebuild`` repairs the index."""
        try:
            if subtree:
                await self.reindex_subtree(tenant_id, node_id)
            else:
                await self.reindex(tenant_id, node_id)
        except Exception:
            log.exception("search reindex failed", tenant_id=tenant_id, node_id=node_id)

    async def reindex_subtree(self, tenant_id: str, node_id: str) -> int:
        """Reindex a node and everything below it (after a folder is moved, trashed or
        restored). Returns how many nodes were looked at."""
        scope = TenantScope(tenant_id)
        found, frontier = [node_id], [node_id]
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            while frontier:
                children = await scoped.nodes.all_children(frontier)
                found += [row["id"] for row in children]
                frontier = [row["id"] for row in children if row["folder"]]
        for each in found:
            await self.reindex(tenant_id, each)
        return len(found)

    async def rebuild(self, tenant_id: str) -> int:
        """Reindex every node of a tenant (the index is derived data: this recreates it)."""
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(TenantScope(tenant_id))
            roots = [await scoped.nodes.root(row["id"]) for row in await scoped.libraries.all()]
        total = 0
        for root in roots:
            if root is not None:
                total += await self.reindex_subtree(tenant_id, root["id"])
        return total

    async def forget_tenant(self, tenant_id: str) -> None:
        """Drop a tenant's entries (tenant deletion: the index is plaintext)."""
        scope = TenantScope(tenant_id)
        async with transaction(self._db, write=True) as tx:
            await tx.scoped(scope)
            await self._index.drop_tenant(tx.conn, scope)

    async def _text(self, scope: TenantScope, node: Any) -> str:
        """The document's extracted text, reading no more than extraction looks at (nothing
        past the first chunk for formats it cannot read)."""
        if node["blob"] is None:
            return ""
        data = bytearray()
        limit = MAX_INPUT_BYTES
        stream = self._content.stream(scope, node["blob"])
        try:
            async for chunk in stream:
                if not data:
                    limit = wanted_bytes(node["name"], node["content_type"], chunk[:8192])
                data += chunk[: max(limit - len(data), 0)]
                if len(data) >= limit:
                    break
        except (NotFound, IntegrityError):  # gone or unreadable: index name and metadata
            return ""
        finally:
            if isinstance(stream, AsyncGenerator):
                await stream.aclose()
        if not data:
            return ""
        # Parsing is CPU-bound (and hostile files are slow): keep it off the event loop.
        return await asyncio.to_thread(text_of, node["name"], node["content_type"], bytes(data))

    # --- searching -----------------------------------------------------------------------

    async def query(
        self, principal: Principal, text: str, *, library_id: str | None = None,
        limit: int = 20, managed: bool = False,
    ) -> list[SearchHit]:  # fmt: skip
        """The best matches the principal may read, in the principal's tenant only, at most
        ``limit`` (1 to 100). Whatever ``text`` holds is searched for literally.
        ``managed``: the front end vouches for a managed client. Documents whose label keeps
        their content on managed clients are left out for others: a match, or a snippet, is
        a statement about the content."""
        scope = tenant_scope(principal)
        limit = max(1, min(limit, MAX_LIMIT))
        if not terms(text):
            return []
        hits: list[SearchHit] = []
        seen: set[str] = set()
        cache = _Cache(managed)
        fetch = limit * OVERFETCH
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            locator = Locator(scoped, principal)
            while True:
                try:
                    results = await self._index.query(
                        tx.conn, scope, text, fetch, [library_id] if library_id else None
                    )
                except IndexUnavailable as exc:
                    raise SearchUnavailable(str(exc)) from None
                for result in results:
                    if result.node_id in seen:
                        continue
                    seen.add(result.node_id)
                    hit = await self._readable(scoped, locator, result, library_id, cache)
                    if hit is not None:
                        hits.append(hit)
                        if len(hits) == limit:
                            return hits
                if len(results) < fetch or fetch >= MAX_CANDIDATES:
                    return hits
                fetch = min(fetch * OVERFETCH, MAX_CANDIDATES)

    @staticmethod
    async def _readable(
        scoped: Scoped, locator: Locator, result: SearchResult, library_id: str | None,
        cache: _Cache,
    ) -> SearchHit | None:  # fmt: skip
        node = await scoped.nodes.by_id(result.node_id)
        if node is None or node["folder"]:
            return None  # purged (or replaced) since it was indexed
        if library_id is not None and node["library_id"] != library_id:
            return None
        chain = await _chain(scoped, node, cache.folders)
        if chain is None:
            return None
        if node["library_id"] not in cache.libraries:
            cache.libraries[node["library_id"]] = await scoped.libraries.by_id(node["library_id"])
        library = cache.libraries[node["library_id"]]
        if library is None or await locator.level(library, chain) < Level.READ:
            return None
        if node["label"] and not await cache.may_see_content(scoped, node["label"]):
            return None
        return SearchHit(
            node_id=node["id"],
            library_id=library["id"],
            library_name=library["name"],
            path=paths.join([row["name"] for row in chain[1:]]),
            name=node["name"],
            snippet=result.snippet,
            score=result.score,
        )
