"""Index work off the request path: a durable queue of jobs in the database, done in the
background.

A change that needs the index updated adds a job in its own transaction (``IndexQueue.add``),
so a crash after the commit still leaves the job; nothing waits for the index. The worker wakes
when such a transaction commits (and polls, for jobs other processes added), asks the kind's
``Indexer`` what the object is now, prepares tokens and sealed fields in a thread, and writes
them in one short write transaction per batch. A job is removed only if nobody asked again
meanwhile (its ``seq``); a job that fails is retried later, with a growing delay.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import structlog

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Scoped, Tx, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core import clock, cpu
from enclave.core.search.index import (
    MAIL_KIND,
    IndexFields,
    Prepared,
    SearchIndex,
    SearchKey,
    prepare,
)

log = structlog.get_logger("enclave.search")

# Jobs per write transaction: small, so deliveries and PUTs do not queue long behind the
# index on the single SQLite writer (8 SMTP clients: 32 gave 26 msg/s and p99 710 ms, 4 gave
# 36 msg/s and p99 350 ms).
BATCH = 4
POLL_SECONDS = 5.0
# Woken by a commit, the worker waits this long first, so the jobs of a burst of writes share
# batches (one read of the queue and the key, one write transaction per BATCH jobs).
GATHER_SECONDS = 0.1
SWEEP_BATCH = 500
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Put:
    object_id: str
    fields: IndexFields


@dataclass(frozen=True)
class Forget:
    object_ids: list[str]


@dataclass(frozen=True)
class Move:
    object_ids: list[str]
    container_id: str


Action = Put | Forget | Move


class Indexer(Protocol):
    """What one workload's objects say to the index."""

    kind: str

    async def actions(self, scope: TenantScope, object_id: str, deep: bool) -> list[Action]:
        """What the index must do for the object as it is now (``deep``: and for everything
        below it). Reads in its own read transactions; may be slow (content, extraction)."""
        ...


class IndexQueue:
    def __init__(self, db: Database, index: SearchIndex) -> None:
        self._db = db
        self._index = index
        self._indexers: dict[str, Indexer] = {}
        self._woken: set[str] = set()
        self._wake = asyncio.Event()

    def register(self, indexer: Indexer) -> None:
        self._indexers[indexer.kind] = indexer

    async def add(
        self, tx: Tx, scoped: Scoped, kind: str, object_id: str, *, deep: bool = False
    ) -> None:
        """Ask for ``object_id`` to be (re)indexed, in the caller's write transaction."""
        await scoped.search_jobs.add(kind, object_id, deep)
        tenant_id = scoped.scope.tenant_id
        tx.after_commit(lambda: self._poke(tenant_id))

    async def forget(self, scoped: Scoped, kind: str, object_ids: list[str]) -> None:
        """Take objects out of the index now, in the caller's write transaction (they are
        being deleted in it: there is nothing to wait for)."""
        await self._index.forget(scoped, kind, object_ids)

    async def sweep(self, tenant_id: str) -> int:
        """Housekeeping: drop the entries of message content that garbage collection removed
        (searches never see them, but their tokens take room). Returns how many went."""
        scope, removed = TenantScope(tenant_id), 0
        while True:
            async with transaction(self._db, write=True) as tx:
                scoped = await tx.scoped(scope)
                gone = await scoped.search_entries.without_object(SWEEP_BATCH)
                await self._index.forget(scoped, MAIL_KIND, [row["object_id"] for row in gone])
            removed += len(gone)
            if len(gone) < SWEEP_BATCH:
                return removed

    def _poke(self, tenant_id: str) -> None:
        self._woken.add(tenant_id)
        self._wake.set()

    # --- the worker ------------------------------------------------------------------

    async def run_forever(self) -> None:
        tenants: set[str] | None = None  # first, everything a previous run or others left
        while True:
            try:
                await self.run_pending(tenants)
            except Exception:
                log.exception("search indexing failed; retrying later")
            try:
                async with asyncio.timeout(POLL_SECONDS):
                    await self._wake.wait()
            except TimeoutError:
                tenants = None  # poll every tenant
            else:
                await asyncio.sleep(GATHER_SECONDS)  # let a burst of writes queue up
                tenants = set(self._woken)
            self._wake.clear()
            self._woken.clear()

    async def run_pending(self, tenant_ids: set[str] | None = None) -> int:
        """Do every due job (of these tenants, or all). Returns how many were done."""
        if tenant_ids is None:
            async with transaction(self._db) as tx:
                tenant_ids = {row["id"] for row in await tx.tenants.all()}
        done = 0
        for tenant_id in sorted(tenant_ids):
            while True:
                count = await self._batch(TenantScope(tenant_id))
                done += count
                if count < BATCH:
                    break
        return done

    async def _batch(self, scope: TenantScope) -> int:
        async with transaction(self._db) as tx:
            if await tx.tenants.by_id(scope.tenant_id) is None:
                return 0
            jobs = await (await tx.scoped(scope)).search_jobs.due(clock.now(), BATCH)
        if not jobs:
            return 0
        key = await self._key(scope)
        results: list[tuple[int, int, str, list[Action | Prepared]]] = []
        failed: list[tuple[int, int, str, str, int]] = []
        for job in jobs:
            try:
                steps = await self._steps(scope, key, job["kind"], job["object_id"], job["deep"])
            except Exception:
                log.exception("indexing failed", kind=job["kind"], object_id=job["object_id"])
                attempts = int(job["attempts"]) + 1
                failed.append((job["id"], job["seq"], job["kind"], job["object_id"], attempts))
                continue
            results.append((int(job["id"]), int(job["seq"]), job["kind"], steps))
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            for job_id, seq, kind, steps in results:
                for step in steps:
                    await self._apply(scoped, kind, step)
                await scoped.search_jobs.done(job_id, seq)
            for job_id, seq, kind, object_id, attempts in failed:
                if attempts >= MAX_ATTEMPTS:
                    # An empty, incomplete entry: exact searches (IMAP) then read the
                    # object themselves rather than miss it.
                    log.error("indexing gave up", kind=kind, object_id=object_id)
                    await self._index.store(
                        scoped, Prepared(kind, object_id, None, {}, None, False)
                    )
                    await scoped.search_jobs.done(job_id, seq)
                else:
                    later = clock.now() + timedelta(seconds=2**attempts)
                    await scoped.search_jobs.retry(job_id, seq, attempts, later)
        return len(jobs)

    async def _key(self, scope: TenantScope) -> SearchKey:
        async with transaction(self._db) as tx:
            key = await self._index.key(tx, scope.tenant_id)
        if key is not None:
            return key
        async with transaction(self._db, write=True) as tx:
            key = await self._index.key(tx, scope.tenant_id, create=True)
        assert key is not None
        return key

    async def _steps(
        self, scope: TenantScope, key: SearchKey, kind: str, object_id: str, deep: bool
    ) -> list[Action | Prepared]:
        indexer = self._indexers.get(kind)
        if indexer is None:
            raise LookupError(f"no indexer for {kind!r}")
        steps: list[Action | Prepared] = []
        for action in await indexer.actions(scope, object_id, deep):
            if isinstance(action, Put):
                fields = action.fields
                prepared = await cpu.run(
                    prepare, key, scope.tenant_id, kind, action.object_id, fields, size=fields.size
                )
                steps.append(prepared)
            else:
                steps.append(action)
        return steps

    async def _apply(self, scoped: Scoped, kind: str, step: Action | Prepared) -> None:
        if isinstance(step, Prepared):
            await self._index.store(scoped, step)
        elif isinstance(step, Forget):
            await self._index.forget(scoped, kind, step.object_ids)
        elif isinstance(step, Move):
            await self._index.move(scoped, kind, step.object_ids, step.container_id)
