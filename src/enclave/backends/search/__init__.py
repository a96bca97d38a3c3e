"""Full-text search indexes, one interface: SQLite FTS5 now; PostgreSQL (tsvector) later."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from enclave.backends.db.engine import Database
from enclave.backends.db.scoped import TenantScope
from enclave.backends.search.base import (
    MARK_END,
    MARK_START,
    IndexFields,
    SearchIndex,
    SearchResult,
    SearchUnavailable,
    terms,
)
from enclave.backends.search.sqlite import SqliteSearchIndex, is_search_table

__all__ = [
    "MARK_END",
    "MARK_START",
    "IndexFields",
    "SearchIndex",
    "SearchResult",
    "SearchUnavailable",
    "SqliteSearchIndex",
    "UnavailableSearchIndex",
    "is_search_table",
    "open_search_index",
    "terms",
]


class UnavailableSearchIndex:
    """For databases without a search implementation yet (PostgreSQL): nothing is stored, so
    writes succeed and there is nothing to leak or delete; ``query`` says so plainly."""

    available: bool = False

    async def put(
        self,
        conn: AsyncConnection,
        scope: TenantScope,
        node_id: str,
        library_id: str,
        fields: IndexFields,
    ) -> None:
        return None

    async def remove(self, conn: AsyncConnection, scope: TenantScope, node_id: str) -> None:
        return None

    async def query(
        self,
        conn: AsyncConnection,
        scope: TenantScope,
        text: str,
        limit: int,
        library_ids: list[str] | None = None,
    ) -> list[SearchResult]:
        raise SearchUnavailable("full-text search is not available on PostgreSQL yet")

    async def drop_tenant(self, conn: AsyncConnection, scope: TenantScope) -> None:
        return None


def open_search_index(db: Database) -> SearchIndex:
    """The index for this database: FTS5 on SQLite; on PostgreSQL, until the tsvector index
    exists, one that stores nothing and refuses queries."""
    if db.is_sqlite:
        return SqliteSearchIndex()
    return UnavailableSearchIndex()
