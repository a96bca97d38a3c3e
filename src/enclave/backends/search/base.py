"""The full-text search contract, and turning what a user typed into search terms.

A search index is derived data: the names, metadata and extracted text of documents, in
plaintext so it can be searched. It is the one documented exception to encryption at rest;
it can be rebuilt from the content at any time and goes with its tenant (``drop_tenant``).

Every method takes the tenant's ``TenantScope`` and touches that tenant's entries only: there
is no call that reads or writes across tenants. Methods run inside the caller's transaction
(``conn``) so an index change commits or rolls back with the rows it describes; ``put``,
``remove`` and ``drop_tenant`` need a write transaction.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from enclave.backends.db.scoped import TenantScope

# Snippets mark matched terms with these (control characters never occur in indexed text);
# a front end escapes the snippet, then turns them into its own highlighting.
MARK_START = "\x02"
MARK_END = "\x03"

MAX_QUERY_CHARS = 256
MAX_TERMS = 16
MAX_TERM_CHARS = 64

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SearchUnavailable(Exception):
    """This database has no full-text search (yet): raised by ``query``."""


@dataclass(frozen=True)
class IndexFields:
    """What is indexed for one document."""

    name: str
    title: str = ""
    description: str = ""
    tags: str = ""  # space-separated
    text: str = ""  # extracted body text


class SearchResult(NamedTuple):
    node_id: str
    library_id: str  # as of the last put: a move may have changed it since
    score: float  # higher is better; comparable only within one answer
    snippet: str  # with MARK_START / MARK_END around matches


class SearchIndex(Protocol):
    # False where nothing is stored (no implementation for this database yet): callers can
    # skip the work of extracting text.
    available: bool

    async def put(
        self,
        conn: AsyncConnection,
        scope: TenantScope,
        node_id: str,
        library_id: str,
        fields: IndexFields,
    ) -> None:
        """Index a document, replacing whatever was indexed for it before."""

    async def remove(self, conn: AsyncConnection, scope: TenantScope, node_id: str) -> None:
        """Forget a document; one never indexed is not an error."""

    async def query(
        self,
        conn: AsyncConnection,
        scope: TenantScope,
        text: str,
        limit: int,
        library_ids: list[str] | None = None,
    ) -> list[SearchResult]:
        """Documents matching every term of ``text`` (the last one as a prefix), best first.
        ``text`` is what a user typed: it is never interpreted as query syntax. Raises
        ``SearchUnavailable`` where the database has no full-text search. Callers filter the
        results by permission: the index knows nothing of grants."""
        ...

    async def drop_tenant(self, conn: AsyncConnection, scope: TenantScope) -> None:
        """Forget every document of a tenant (tenant deletion)."""


def terms(text: str) -> list[str]:
    """The words a user typed, as literal strings: whitespace separates terms, anything else
    (quotes, operators, parentheses, ``*``) is just text. Bounded in number and length."""
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", text[:MAX_QUERY_CHARS]))
    found = [word[:MAX_TERM_CHARS] for word in text.split() if any(c.isalnum() for c in word)]
    return found[:MAX_TERMS]
