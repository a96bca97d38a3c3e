"""The encrypted search index, one for every workload: documents, mail, and next calendars
and chat. See ``docs/search.md`` for what it stores and what the disk reveals without the key.

An *entry* is one indexed object of a *kind* (``doc``: a document node; ``mail``: a message's
content object, shared by every copy of it). For an entry the index stores postings (keyed
token -> entry, with a weight), the list of its tokens (to replace them), and the fields kept
for snippets and long-prefix checks, compressed and sealed under the tenant's search key.

Work that grows with the text (tokenising, HMAC, sealing) runs in ``prepare``, outside any
transaction and off the event loop; ``store`` only writes rows.
"""

from __future__ import annotations

import hmac
import json
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

from enclave.backends.db.platform import Scoped, Tx
from enclave.backends.db.scoped import TenantScope
from enclave.core import clock, crypto
from enclave.core.keys import KeyService
from enclave.core.search import tokens as t

# The kinds of entry so far (calendar objects and chat messages come next).
DOC_KIND = "doc"  # a document node
MAIL_KIND = "mail"  # a message's content object

MAX_LIMIT = 1000
MAX_GRAMS = 64  # trigrams of a search looked up (more only narrow what these leave)
JOINED_GRAMS = 6  # of those, the rarest joined for the candidates


@dataclass(frozen=True)
class SearchKey:
    """The keys derived from a tenant's search key: one for sealing, and one for the tokens
    of each kind (so a word in a document and the same word in a message are unrelated
    tokens: the disk does not show which workloads share words)."""

    mac: bytes
    seal: bytes

    def tokens(self, kind: str) -> bytes:
        return hmac.digest(self.mac, f"kind/{kind}".encode(), "sha256")

    @classmethod
    def derive(cls, key: bytes) -> SearchKey:
        return cls(
            hmac.digest(key, b"enclave/search/tokens", "sha256"),
            hmac.digest(key, b"enclave/search/seal", "sha256"),
        )


@dataclass(frozen=True)
class IndexFields:
    """What an indexer hands over for one object."""

    container_id: str | None  # the library of a document; None for mail
    weighted: tuple[tuple[str, int], ...]  # (text, weight): where a match counts for more
    kept: dict[str, str] | None = None  # sealed, for snippets (None: keep nothing)
    complete: bool = True  # False if the indexer had to cut the text
    substrings: bool = False  # trigrams instead of prefixes (see ``tokens``)

    @property
    def size(self) -> int:
        """Characters of text to analyse."""
        return sum(len(text) for text, _ in self.weighted)


@dataclass(frozen=True)
class Prepared:
    kind: str
    object_id: str
    container_id: str | None
    weights: dict[bytes, int]
    sealed: bytes | None
    complete: bool


@dataclass(frozen=True)
class Candidate:
    object_id: str
    container_id: str | None
    score: float
    entry_id: int


@dataclass
class Query:
    """A user's words as tokens (the last one a prefix), with the key to open kept fields."""

    key: SearchKey
    terms: list[t.Term]
    kept: dict[int, dict[str, Any]] = field(default_factory=dict)


def _aad(tenant_id: str, kind: str, object_id: str) -> bytes:
    return f"enclave/search-entry/{tenant_id}/{kind}/{object_id}".encode()


def prepare(
    key: SearchKey, tenant_id: str, kind: str, object_id: str, fields: IndexFields
) -> Prepared:
    """Tokens and the sealed fields for one object (CPU-bound: run it in a thread)."""
    analysis = t.analyse(key.tokens(kind), fields.weighted, substrings=fields.substrings)
    sealed = None
    if fields.kept is not None:
        kept = {**fields.kept, "vocabulary": " ".join(analysis.vocabulary)}
        packed = zlib.compress(json.dumps(kept).encode(), 6)
        sealed = crypto.seal(key.seal, packed, _aad(tenant_id, kind, object_id))
    complete = fields.complete and analysis.complete
    return Prepared(kind, object_id, fields.container_id, analysis.weights, sealed, complete)


def _tokens_of(row: Any) -> list[bytes]:
    raw = bytes(row["tokens"])
    return [raw[i : i + t.TOKEN_BYTES] for i in range(0, len(raw), t.TOKEN_BYTES)]


class SearchIndex:
    def __init__(self, keys: KeyService) -> None:
        self._keys = keys

    async def key(self, tx: Tx, tenant_id: str, *, create: bool = False) -> SearchKey | None:
        raw = await self._keys.search_key(tx, tenant_id, create=create)
        return None if raw is None else SearchKey.derive(raw)

    # --- writing (in the caller's write transaction) ---------------------------------

    @staticmethod
    async def store(scoped: Scoped, prepared: Prepared) -> None:
        """Replace whatever the object had in the index with ``prepared``."""
        entry = await scoped.search_entries.get(prepared.kind, prepared.object_id)
        tokens = b"".join(prepared.weights)
        values = {"container_id": prepared.container_id, "complete": prepared.complete,
                  "tokens": tokens, "sealed": prepared.sealed, "updated_at": clock.now()}  # fmt: skip
        if entry is None:
            entry_id = await scoped.search_entries.add(
                kind=prepared.kind, object_id=prepared.object_id, **values
            )
        else:
            entry_id = int(entry["id"])
            await scoped.search_postings.remove(entry_id, _tokens_of(entry))
            await scoped.search_entries.change(entry_id, **values)
        await scoped.search_postings.add(entry_id, prepared.weights)

    @staticmethod
    async def forget(scoped: Scoped, kind: str, object_ids: list[str]) -> None:
        """Take objects out of the index (ones never indexed are no error)."""
        for entry in await scoped.search_entries.of_objects(kind, object_ids):
            await scoped.search_postings.remove(int(entry["id"]), _tokens_of(entry))
            await scoped.search_entries.remove(int(entry["id"]))

    @staticmethod
    async def move(scoped: Scoped, kind: str, object_ids: list[str], container_id: str) -> None:
        for entry in await scoped.search_entries.of_objects(kind, object_ids):
            await scoped.search_entries.change(int(entry["id"]), container_id=container_id)

    # --- querying --------------------------------------------------------------------

    async def query(self, tx: Tx, tenant_id: str, kind: str, words: list[str]) -> Query | None:
        """The tokens for a user's words, the last one a prefix; None if nothing is indexed
        for this tenant yet or nothing searchable was typed."""
        key = await self.key(tx, tenant_id)
        if key is None or not words:
            return None
        mac = key.tokens(kind)
        terms = [t.term(mac, w, prefix=i == len(words) - 1) for i, w in enumerate(words)]
        return Query(key, terms)

    async def ranked(
        self, scoped: Scoped, query: Query, kind: str, limit: int,
        container_ids: list[str] | None = None,
    ) -> tuple[list[Candidate], bool]:  # fmt: skip
        """The best ``limit`` entries of ``kind`` holding every term's token, best first, and
        whether there may be more. A prefix of a length not indexed is then checked against
        each candidate's sealed vocabulary (so fewer may come back than the index had)."""
        tokens = list(dict.fromkeys(term.token for term in query.terms))
        frequencies = await scoped.search_postings.frequencies(tokens)
        if len(frequencies) < len(tokens) or container_ids == []:
            return [], False
        total = max(await scoped.search_entries.count(kind), 1)
        tokens.sort(key=lambda token: frequencies[token])  # rarest first: the fewest rows
        idf = [
            math.log(1 + (total - frequencies[x] + 0.5) / (frequencies[x] + 0.5)) for x in tokens
        ]
        rows = await scoped.search_postings.ranked(
            kind, tokens, idf, min(limit, MAX_LIMIT), container_ids
        )
        found = [Candidate(r["object_id"], r["container_id"], float(r["score"]), int(r["id"]))
                 for r in rows]  # fmt: skip
        more = len(found) == min(limit, MAX_LIMIT)
        long_prefixes = [term.word for term in query.terms if term.needs_check]
        if not long_prefixes:
            return found, more
        await self.open(scoped, query, kind, found)
        return [
            hit for hit in found
            if all(t.has_prefix(query.kept.get(hit.entry_id, {}).get("vocabulary", "").split(), p)
                   for p in long_prefixes)
        ], more  # fmt: skip

    async def open(
        self, scoped: Scoped, query: Query, kind: str, candidates: list[Candidate]
    ) -> None:
        """Unseal the kept fields of ``candidates`` into ``query.kept`` (by entry id)."""
        wanted = [c.entry_id for c in candidates if c.entry_id not in query.kept]
        tenant_id = scoped.scope.tenant_id
        for row in await scoped.search_entries.by_ids(wanted):
            if row["sealed"] is None:
                query.kept[int(row["id"])] = {}
                continue
            packed = crypto.open_sealed(
                query.key.seal, bytes(row["sealed"]), _aad(tenant_id, kind, row["object_id"])
            )
            query.kept[int(row["id"])] = json.loads(zlib.decompress(packed))

    async def mail_uids(
        self, tx: Tx, scope: TenantScope, mailbox_id: str, needles: list[str]
    ) -> set[int] | None:
        """UIDs in a mailbox that may contain every one of ``needles`` as a substring (a
        superset of the exact answer: the caller checks each), found by the trigrams of their
        words; None when the index cannot narrow the search (no word of three characters, or
        no key yet). Messages not yet indexed, or indexed in part, are always among them."""
        key = await self.key(tx, scope.tenant_id)
        pieces = {g for needle in needles for word in t.words(needle) for g in t.grams(word)}
        if key is None or not pieces:
            return None
        scoped = await tx.scoped(scope)
        mac = key.tokens(MAIL_KIND)
        tokens = [t.gram_token(mac, piece) for piece in sorted(pieces)[:MAX_GRAMS]]
        frequencies = await scoped.search_postings.frequencies(tokens)
        unindexed = set(await scoped.search_postings.mail_unindexed(mailbox_id))
        if len(frequencies) < len(tokens):
            return unindexed
        # The rarest few trigrams narrow as well as all of them, with fewer joins.
        tokens = sorted(tokens, key=lambda token: frequencies[token])[:JOINED_GRAMS]
        return unindexed | set(await scoped.search_postings.mail_uids(mailbox_id, tokens))
