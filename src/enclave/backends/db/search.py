"""Repositories for the encrypted search index: the tenant's search key, entries, postings
and the index job queue. Every statement is bound to the repository's tenant (each aliased
postings table is filtered on its own)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, and_, case, false, func, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from enclave.backends.db import schema as s
from enclave.backends.db.prebuilt import built
from enclave.backends.db.scoped import ScopedRepo

_BATCH = 500  # rows or parameters per statement (SQLite's limit is far above)
MAIL = "mail"  # core.search.index.MAIL_KIND: the mail queries join entries with messages


class SearchKeysRepo(ScopedRepo):
    table = s.search_keys

    async def get(self) -> RowMapping | None:
        return await self._one(self._select())

    async def add(self, kek_version: int, wrapped: bytes) -> None:
        await self._insert(kek_version=kek_version, wrapped_key=wrapped)

    async def rewrap(self, kek_version: int, wrapped: bytes) -> None:
        await self._conn.execute(
            self._update().values(kek_version=kek_version, wrapped_key=wrapped)
        )


class SearchEntriesRepo(ScopedRepo):
    table = s.search_entries

    async def get(self, kind: str, object_id: str) -> RowMapping | None:
        return await self._first_where(kind=kind, object_id=object_id)

    async def add(self, **values: Any) -> int:
        return int(await self._insert_returning_id(**values))

    async def change(self, entry_id: int, **values: Any) -> None:
        await self._update_where({"id": entry_id}, **values)

    async def remove(self, entry_id: int) -> None:
        await self._delete_where(id=entry_id)

    async def by_ids(self, ids: list[int]) -> list[RowMapping]:
        rows: list[RowMapping] = []
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            rows += await self._all(self._select().where(s.search_entries.c.id.in_(chunk)))
        return rows

    async def of_objects(self, kind: str, object_ids: list[str]) -> list[RowMapping]:
        e = s.search_entries.c
        rows: list[RowMapping] = []
        for start in range(0, len(object_ids), _BATCH):
            chunk = object_ids[start : start + _BATCH]
            rows += await self._all(self._select().where(e.kind == kind, e.object_id.in_(chunk)))
        return rows

    async def without_object(self, limit: int) -> list[RowMapping]:
        """Mail entries whose content object is gone (collected after its last copy)."""
        e, b = s.search_entries.c, s.blobs.c
        alive = self._select_from(s.blobs, b.name).where(b.name == e.object_id)
        query = self._select().where(e.kind == MAIL, ~alive.exists())
        return await self._all(query.limit(limit))

    async def count(self, kind: str) -> int:
        query = self._select(func.count()).where(s.search_entries.c.kind == kind)
        return int((await self._conn.execute(query)).scalar_one())


class SearchPostingsRepo(ScopedRepo):
    table = s.search_postings

    async def add(self, entry_id: int, weights: dict[bytes, int]) -> None:
        rows = [(token, entry_id, weight) for token, weight in weights.items()]
        await self._insert_rows(("token", "entry_id", "weight"), rows)

    async def remove(self, entry_id: int, tokens: list[bytes]) -> None:
        p = s.search_postings.c
        for start in range(0, len(tokens), _BATCH):
            chunk = tokens[start : start + _BATCH]
            query = self._delete().where(p.entry_id == entry_id, p.token.in_(chunk))
            await self._conn.execute(query)

    async def frequencies(self, tokens: list[bytes]) -> dict[bytes, int]:
        """How many entries hold each token (for ranking: rare terms count more)."""
        p = s.search_postings.c
        query = self._select(p.token, func.count()).where(p.token.in_(tokens))
        rows = (await self._conn.execute(query.group_by(p.token))).all()
        return {bytes(row[0]): int(row[1]) for row in rows}

    def _joined(self, tokens: list[bytes]) -> tuple[Any, list[Any], Any]:
        """Entries holding every token: the first token's postings (the caller puts the rarest
        first), each other token looked up by key for the same entry."""
        aliases = [s.search_postings.alias(f"p{i}") for i in range(len(tokens))]
        entries = s.search_entries
        joined: Any = aliases[0].join(
            entries,
            and_(entries.c.id == aliases[0].c.entry_id, entries.c.tenant_id == self._tenant_id),
        )
        for alias, token in zip(aliases[1:], tokens[1:], strict=True):
            joined = joined.join(
                alias,
                and_(
                    alias.c.tenant_id == self._tenant_id,
                    alias.c.token == token,
                    alias.c.entry_id == aliases[0].c.entry_id,
                ),
            )
        first = and_(aliases[0].c.tenant_id == self._tenant_id, aliases[0].c.token == tokens[0])
        return joined, aliases, first

    async def ranked(
        self, kind: str, tokens: list[bytes], idf: list[float], limit: int,
        container_ids: list[str] | None = None,
    ) -> list[RowMapping]:  # fmt: skip
        """The best ``limit`` entries of ``kind`` holding every token: id, object_id,
        container_id, score (sum of saturated weight times the token's rarity)."""
        joined, aliases, first = self._joined(tokens)
        e = s.search_entries.c
        score: ColumnElement[Any] = literal(0.0)
        for alias, rarity in zip(aliases, idf, strict=True):
            score = score + alias.c.weight * 1.0 / (alias.c.weight + 1.2) * rarity
        query = (
            select(e.id, e.object_id, e.container_id, score.label("score"))
            .select_from(joined)
            .where(first)
            .where(e.kind == kind)
        )
        if container_ids is not None:
            query = query.where(e.container_id.in_(container_ids))
        return await self._all(query.order_by(score.desc(), e.id).limit(limit))

    async def mail_uids(self, mailbox_id: str, tokens: list[bytes]) -> list[int]:
        """UIDs in a mailbox whose message holds every token (by complete entries only)."""
        joined, _, first = self._joined(tokens)
        m, e = s.messages.c, s.search_entries.c
        joined = joined.join(
            s.messages,
            and_(m.tenant_id == self._tenant_id, m.blob == e.object_id, m.mailbox_id == mailbox_id),
        )
        query = select(m.uid).select_from(joined).where(first).where(e.kind == MAIL, e.complete)
        return [int(row[0]) for row in (await self._conn.execute(query)).all()]

    async def mail_unindexed(self, mailbox_id: str) -> list[int]:
        """UIDs in a mailbox whose message has no complete entry: one still waiting for its
        job, or indexed in part (a job that gave up leaves such an entry too). Exact matching
        must read these itself. The cost follows their number, not the mailbox's."""
        m, e, j = s.messages.c, s.search_entries.c, s.search_jobs.c
        waiting = self._select_from(s.search_jobs, j.object_id).where(j.kind == MAIL)
        partial = self._select_from(s.search_entries, e.object_id).where(
            e.kind == MAIL, e.complete == false()
        )
        query = select(m.uid).where(
            m.tenant_id == self._tenant_id,
            m.mailbox_id == mailbox_id,
            m.blob.in_(waiting.union(partial).scalar_subquery()),
        )
        return [int(row[0]) for row in (await self._conn.execute(query)).all()]


def _job_upsert(dialect_name: str) -> Insert:
    """Built once per dialect (building an upsert costs more than running it)."""
    return built(
        ("search_jobs", "upsert", dialect_name), lambda: _upsert(dialect_name), scoped=False
    )


def _upsert(dialect_name: str) -> Insert:
    j = s.search_jobs.c
    statement = (postgresql if dialect_name == "postgresql" else sqlite).insert(s.search_jobs)
    upsert: Insert = statement.on_conflict_do_update(
        index_elements=[j.tenant_id, j.kind, j.object_id],
        set_={
            "seq": j.seq + 1,
            "deep": case((statement.excluded.deep, True), else_=j.deep).cast(Boolean),
            "attempts": 0,
            "not_before": None,
        },
    )
    return upsert


class SearchJobsRepo(ScopedRepo):
    table = s.search_jobs

    async def add(self, kind: str, object_id: str, deep: bool) -> None:
        """Ask for (re)indexing; a job already waiting for the object gets a new ``seq`` (and
        becomes deep if this one is), so the worker doing the old one leaves it in place."""
        values = {"tenant_id": self._tenant_id, "kind": kind, "object_id": object_id,
                  "deep": deep, "seq": 0, "attempts": 0, "not_before": None}  # fmt: skip
        await self._conn.execute(_job_upsert(self._conn.dialect.name), values)

    async def due(self, now: datetime, limit: int) -> list[RowMapping]:
        j = s.search_jobs.c
        query = self._select().where(or_(j.not_before.is_(None), j.not_before <= now))
        return await self._all(query.order_by(j.id).limit(limit))

    async def done(self, job_id: int, seq: int) -> None:
        await self._delete_where(id=job_id, seq=seq)

    async def retry(self, job_id: int, seq: int, attempts: int, not_before: datetime) -> None:
        await self._update_where(
            {"id": job_id, "seq": seq}, attempts=attempts, not_before=not_before
        )

    async def count(self) -> int:
        return int((await self._conn.execute(self._select(func.count()))).scalar_one())
