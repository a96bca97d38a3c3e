"""Full-text search on SQLite: an FTS5 table beside the schema, created on first use.

It lives outside the Alembic migrations on purpose: it is derived, rebuildable data (drop it
and reindex), and FTS5 virtual tables and their shadow tables are SQLite-only. Because it is
created only when search is first used, a fresh database still matches ``schema.py``.

``doc_search_rows`` maps (tenant, node) to the FTS rowid, so replacing or removing one
document is a keyed lookup instead of a scan of the FTS table's unindexed columns. Its foreign
keys cascade from ``tenants`` and ``doc_nodes`` and a trigger removes the FTS row with it: a
purged document or a deleted tenant leaves the index in the same transaction, whoever
deletes it. (A migration that rebuilds ``doc_nodes`` empties the index: run a rebuild.)

Known limit: bm25 statistics (how rare a term is) are computed over the whole table, every
tenant included, so scores can shift with other tenants' documents. Which documents match
never depends on them; a table per tenant would remove this if it ever matters.
"""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncConnection

from enclave.backends.db.scoped import TenantScope
from enclave.backends.search.base import MARK_END, MARK_START, IndexFields, SearchResult, terms

MAX_LIMIT = 1000

_CREATE = (
    """CREATE TABLE IF NOT EXISTS doc_search_rows (
        id INTEGER PRIMARY KEY,
        tenant_id VARCHAR(36) NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        node_id VARCHAR(36) NOT NULL REFERENCES doc_nodes (id) ON DELETE CASCADE,
        UNIQUE (tenant_id, node_id)
    )""",
    """CREATE INDEX IF NOT EXISTS ix_doc_search_rows_node ON doc_search_rows (node_id)""",
    """CREATE VIRTUAL TABLE IF NOT EXISTS doc_search USING fts5(
        tenant_id UNINDEXED, node_id UNINDEXED, library_id UNINDEXED,
        name, title, description, tags, body,
        tokenize = 'unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER IF NOT EXISTS doc_search_rows_gone AFTER DELETE ON doc_search_rows
    BEGIN DELETE FROM doc_search WHERE rowid = old.id; END""",
)
TABLE_PREFIX = "doc_search"  # every table this module creates (FTS5 shadow tables included)


def is_search_table(name: str) -> bool:
    """Whether a table belongs to the search index, not to the migrated schema (for
    Alembic's ``include_name``: autogenerate must not propose dropping the index)."""
    return name == TABLE_PREFIX or name.startswith(TABLE_PREFIX + "_")


# Column weights for bm25, in table order (the unindexed ones never match): a hit in the
# name or title counts for far more than one in the body.
_BM25 = "bm25(doc_search, 0, 0, 0, 10.0, 8.0, 3.0, 5.0, 1.0)"

_QUERY = f"""
    SELECT node_id, library_id, -{_BM25} AS score,
           snippet(doc_search, -1, :mark_start, :mark_end, '…', 16) AS snippet
    FROM doc_search
    WHERE doc_search MATCH :match AND tenant_id = :tenant_id {{libraries}}
    ORDER BY {_BM25}
    LIMIT :limit
"""  # noqa: S608 - only constant fragments are interpolated; values are bound


def fts5_query(text: str) -> str:
    """An FTS5 MATCH expression for what a user typed: every term a quoted string (so no
    operator, column filter or parenthesis gets through), all required, the last one a
    prefix (search as you type). "" when nothing searchable is left."""
    quoted = ['"' + term.replace('"', '""') + '"' for term in terms(text)]
    if not quoted:
        return ""
    quoted[-1] += "*"
    return " ".join(quoted)


class SqliteSearchIndex:
    """``SearchIndex`` over SQLite FTS5. Every statement names the tenant."""

    available: bool = True

    async def _create(self, conn: AsyncConnection) -> None:
        # Cheap when the tables exist; run in the caller's write transaction (never a
        # transaction of our own, which would wait on the writer lock the caller holds).
        for statement in _CREATE:
            await conn.execute(sql(statement))

    @staticmethod
    async def _exists(conn: AsyncConnection) -> bool:
        query = sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'doc_search'")
        return (await conn.execute(query)).first() is not None

    @staticmethod
    async def _rowid(conn: AsyncConnection, scope: TenantScope, node_id: str) -> int | None:
        query = sql("SELECT id FROM doc_search_rows WHERE tenant_id = :t AND node_id = :n")
        row = (await conn.execute(query, {"t": scope.tenant_id, "n": node_id})).first()
        return None if row is None else int(row[0])

    async def put(
        self,
        conn: AsyncConnection,
        scope: TenantScope,
        node_id: str,
        library_id: str,
        fields: IndexFields,
    ) -> None:
        await self._create(conn)
        rowid = await self._rowid(conn, scope, node_id)
        if rowid is None:
            insert = sql(
                "INSERT INTO doc_search_rows (tenant_id, node_id) VALUES (:t, :n) RETURNING id"
            )
            rowid = int((await conn.execute(insert, {"t": scope.tenant_id, "n": node_id})).one()[0])
        else:
            await conn.execute(
                sql("DELETE FROM doc_search WHERE rowid = :r AND tenant_id = :t"),
                {"r": rowid, "t": scope.tenant_id},
            )
        await conn.execute(
            sql(
                "INSERT INTO doc_search (rowid, tenant_id, node_id, library_id, name, title,"
                " description, tags, body) VALUES (:r, :t, :n, :l, :name, :title,"
                " :description, :tags, :body)"
            ),
            {"r": rowid, "t": scope.tenant_id, "n": node_id, "l": library_id,
             "name": fields.name, "title": fields.title, "description": fields.description,
             "tags": fields.tags, "body": fields.text},
        )  # fmt: skip

    async def remove(self, conn: AsyncConnection, scope: TenantScope, node_id: str) -> None:
        if not await self._exists(conn):
            return
        # The trigger takes the FTS row along.
        await conn.execute(
            sql("DELETE FROM doc_search_rows WHERE tenant_id = :t AND node_id = :n"),
            {"t": scope.tenant_id, "n": node_id},
        )

    async def query(
        self,
        conn: AsyncConnection,
        scope: TenantScope,
        text: str,
        limit: int,
        library_ids: list[str] | None = None,
    ) -> list[SearchResult]:
        match = fts5_query(text)
        if not match or limit < 1 or library_ids == [] or not await self._exists(conn):
            return []
        params: dict[str, object] = {
            "match": match, "tenant_id": scope.tenant_id, "limit": min(limit, MAX_LIMIT),
            "mark_start": MARK_START, "mark_end": MARK_END,
        }  # fmt: skip
        statement = sql(_QUERY.format(libraries=""))
        if library_ids is not None:
            statement = sql(_QUERY.format(libraries="AND library_id IN :libraries"))
            statement = statement.bindparams(bindparam("libraries", expanding=True))
            params["libraries"] = list(library_ids)
        rows = (await conn.execute(statement, params)).all()
        return [SearchResult(row[0], row[1], float(row[2]), row[3]) for row in rows]

    async def drop_tenant(self, conn: AsyncConnection, scope: TenantScope) -> None:
        if not await self._exists(conn):
            return
        params = {"t": scope.tenant_id}
        await conn.execute(sql("DELETE FROM doc_search_rows WHERE tenant_id = :t"), params)
        # Belt and braces (a scan, but tenants are rarely deleted): no FTS row may outlive
        # its tenant, whatever happened to the row map.
        await conn.execute(sql("DELETE FROM doc_search WHERE tenant_id = :t"), params)
        # Merge the index segments so the tenant's terms leave the FTS b-tree now, not at
        # some later automatic merge. (Freed pages are zeroed only with SQLite's
        # secure_delete pragma.)
        await conn.execute(sql("INSERT INTO doc_search (doc_search) VALUES ('optimize')"))
