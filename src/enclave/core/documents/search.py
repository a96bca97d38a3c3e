"""Full-text search over documents: what a document says to the shared encrypted index
(``DocumentIndexer``), and answering queries with only what the asking principal may read.

The index (``core/search``) knows nothing of grants or the trash. So every candidate it
returns is looked up again here, inside one read transaction: it must still exist, be live
with every folder above it live, and the principal must have read access on its path
(``Locator``). Trashed documents stay indexed until they are purged, which is why trash and
restore cost the index nothing. The index is asked for more than a page (``OVERFETCH``) so a
page fills even when some candidates are filtered out. Snippets are cut from the decrypted
fields of the page's hits only.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Scoped, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core import cpu
from enclave.core.content import ContentStore
from enclave.core.documents import paths
from enclave.core.documents.access import Level
from enclave.core.documents.extract import MAX_INPUT_BYTES, text_of, wanted_bytes
from enclave.core.documents.labels import download_problem
from enclave.core.documents.lookup import Locator, tenant_scope
from enclave.core.errors import IntegrityError, NotFound
from enclave.core.principal import Principal
from enclave.core.search.index import DOC_KIND, Candidate, IndexFields, Query, SearchIndex
from enclave.core.search.queue import Action, Forget, IndexQueue, Move, Put
from enclave.core.search.snippets import snippet
from enclave.core.search.tokens import query_words

KIND = DOC_KIND
MAX_LIMIT = 100
OVERFETCH = 5
MAX_CANDIDATES = 1000  # stop looking after this many candidates, even if the page is short
KEPT_TEXT_CHARS = 64 * 1024  # of extracted text sealed for snippets
# Where a match counts for more: a hit in the name or title beats one in the body.
WEIGHTS = {"name": 10, "title": 8, "tags": 5, "description": 3, "text": 1}


@dataclass(frozen=True)
class SearchHit:
    node_id: str
    library_id: str
    library_name: str
    path: str  # from the library root
    name: str
    snippet: str  # matches marked with core.search.snippets.MARK_START / MARK_END
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


class DocumentIndexer:
    """``Indexer`` for documents: name, title, description, tags and extracted text."""

    kind = KIND

    def __init__(self, db: Database, content: ContentStore) -> None:
        self._db = db
        self._content = content

    async def actions(self, scope: TenantScope, object_id: str, deep: bool) -> list[Action]:
        """The node indexed as it is now (a folder is not indexed itself); with ``deep``, the
        documents below it too: those already indexed only change library (a move), the
        others are indexed in full (a copy). A node that is gone leaves the index."""
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            node = await scoped.nodes.by_id(object_id)
            if node is None:
                return [Forget([object_id])]
            below: list[Any] = []
            frontier = [object_id] if deep and node["folder"] else []
            while frontier:
                children = await scoped.nodes.all_children(frontier)
                below += [row for row in children if not row["folder"]]
                frontier = [row["id"] for row in children if row["folder"]]
            known = {
                row["object_id"]
                for row in await scoped.search_entries.of_objects(KIND, [r["id"] for r in below])
            }
        actions: list[Action] = []
        if not node["folder"]:
            actions.append(Put(object_id, await self._fields(scope, node)))
        if known:
            actions.append(Move(sorted(known), node["library_id"]))
        for row in below:
            if row["id"] not in known:
                actions.append(Put(row["id"], await self._fields(scope, row)))
        return actions

    async def _fields(self, scope: TenantScope, node: Any) -> IndexFields:
        values = {
            "name": node["name"], "title": node["title"] or "",
            "description": node["description"] or "", "tags": _tags(node["tags"]),
            "text": await self._text(scope, node),
        }  # fmt: skip
        kept = {**values, "text": values["text"][:KEPT_TEXT_CHARS]}
        weighted = tuple((values[name], weight) for name, weight in WEIGHTS.items())
        return IndexFields(node["library_id"], weighted, kept)

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
        content = bytes(data)
        return await cpu.run(
            text_of, node["name"], node["content_type"], content, size=len(content)
        )


class DocumentSearch:
    def __init__(self, db: Database, index: SearchIndex, queue: IndexQueue) -> None:
        self._db = db
        self._index = index
        self._queue = queue

    async def rebuild(self, tenant_id: str) -> int:
        """Ask for every library of a tenant to be indexed again (in the background).
        Returns how many libraries were queued."""
        scope = TenantScope(tenant_id)
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            roots = [await scoped.nodes.root(row["id"]) for row in await scoped.libraries.all()]
            for root in roots:
                if root is not None:
                    await self._queue.add(tx, scoped, KIND, root["id"], deep=True)
        return sum(root is not None for root in roots)

    async def query(
        self, principal: Principal, text: str, *, library_id: str | None = None,
        limit: int = 20, managed: bool = False,
    ) -> list[SearchHit]:  # fmt: skip
        """The best matches the principal may read, in the principal's tenant only, at most
        ``limit`` (1 to 100). Whatever ``text`` holds is searched for literally: every word
        must occur, the last one may be the start of a word.
        ``managed``: the front end vouches for a managed client. Documents whose label keeps
        their content on managed clients are left out for others: a match, or a snippet, is
        a statement about the content."""
        scope = tenant_scope(principal)
        limit = max(1, min(limit, MAX_LIMIT))
        words = query_words(text)
        if not words:
            return []
        hits: list[tuple[SearchHit, Candidate]] = []
        seen: set[str] = set()
        cache = _Cache(managed)
        fetch = limit * OVERFETCH
        containers = [library_id] if library_id else None
        async with transaction(self._db) as tx:
            query = await self._index.query(tx, scope.tenant_id, KIND, words)
            if query is None:
                return []
            scoped = await tx.scoped(scope)
            locator = Locator(scoped, principal)
            while len(hits) < limit:
                found, more = await self._index.ranked(scoped, query, KIND, fetch, containers)
                for candidate in found:
                    if candidate.object_id in seen:
                        continue
                    seen.add(candidate.object_id)
                    hit = await self._readable(scoped, locator, candidate, library_id, cache)
                    if hit is not None and len(hits) < limit:
                        hits.append((hit, candidate))
                if not more or fetch >= MAX_CANDIDATES:
                    break
                fetch = min(fetch * OVERFETCH, MAX_CANDIDATES)
            return await self._with_snippets(scoped, query, words, hits)

    async def _with_snippets(
        self, scoped: Scoped, query: Query, words: list[str],
        hits: list[tuple[SearchHit, Candidate]],
    ) -> list[SearchHit]:  # fmt: skip
        await self._index.open(scoped, query, KIND, [candidate for _, candidate in hits])
        done = []
        for hit, candidate in hits:
            kept = query.kept.get(candidate.entry_id, {})
            cut = ""
            for name in ("text", "title", "description", "tags", "name"):
                cut = snippet(kept.get(name, ""), words)
                if cut:
                    break
            done.append(dataclasses.replace(hit, snippet=cut or hit.name))
        return done

    @staticmethod
    async def _readable(
        scoped: Scoped, locator: Locator, candidate: Candidate, library_id: str | None,
        cache: _Cache,
    ) -> SearchHit | None:  # fmt: skip
        node = await scoped.nodes.by_id(candidate.object_id)
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
            snippet="",
            score=candidate.score,
        )
