"""Encrypted, content-addressed tenant objects over a blob store.

Each object is sealed with its own data key (wrapped by the tenant's KEK) and with the tenant id
and a random object id as associated data, so a ciphertext copied to another tenant or object
fails to decrypt. It is named by a keyed hash of its plaintext under a per-tenant naming key: the
name reveals nothing, and identical content within one tenant is stored once (reference counted).

Write order: ciphertext to a staging file, fsync, rename (outside the database write lock), then
the database row commits. A crash in between leaves only an unreferenced file, which
``collect_garbage`` removes after a grace period; it never leaves a row without its file.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any

from enclave.backends.blobs import BlobStore, StagedBlob
from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Scoped, Tx, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core import clock, crypto
from enclave.core.errors import NotFound
from enclave.core.keys import KeyService, content_aad

NAME_KEY_TTL_SECONDS = 60.0
KEK_TTL_SECONDS = 10.0
NAME_KEYS_MAX = 10_000
# Content up to this size is published before looking whether the tenant has it already (one
# transaction fewer; a copy that turns out surplus is removed after the commit); larger
# content is looked for first, so that a duplicate is never fsynced.
LOOK_FIRST_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    name: str
    size: int


@dataclass(frozen=True)
class ObjectSealer:
    """Seals small values that belong to one object (say, a message's parsed headers) with
    that object's data key, so they follow its key through rotation and shredding."""

    tenant_id: str
    object_id: str
    _dek: bytes

    def _aad(self, label: str) -> bytes:
        return content_aad(self.tenant_id, self.object_id) + b"/" + label.encode()

    def seal(self, label: str, data: bytes) -> bytes:
        return crypto.seal(self._dek, data, self._aad(label))

    def open(self, label: str, sealed: bytes) -> bytes:
        return crypto.open_sealed(self._dek, sealed, self._aad(label))

    def decryptor(self) -> crypto.StreamDecryptor:
        return crypto.StreamDecryptor(self._dek, content_aad(self.tenant_id, self.object_id))


# Called inside the transaction that records the object: writes the caller's rows that refer
# to it and returns how many references they hold. Raising rolls everything back.
Attach = Callable[[Tx, Scoped, StoredObject, ObjectSealer], Awaitable[int]]
# The same for several objects recorded in one transaction: the references of each, in order.
AttachMany = Callable[[Tx, Scoped, list[tuple[StoredObject, ObjectSealer]]], Awaitable[list[int]]]


@dataclass
class _Pending:
    """One object of ``put_many`` on its way: staged, maybe published, then recorded."""

    staged: StagedBlob
    object_id: str
    dek: bytes
    stored: StoredObject
    published: bool = False
    twin: bool = False  # the same content is recorded already: this file is surplus
    sealer: ObjectSealer | None = None

    @property
    def file_key(self) -> str:
        return _file_key(self.stored.name, self.object_id)


async def _chunks(data: bytes | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(data, bytes):
        yield data
    else:
        async for chunk in data:
            yield chunk


def _file_key(name: str, object_id: str) -> str:
    return f"{name}.{object_id}"


class Content:
    """A stored object's content, read and decrypted as it is iterated: with ``async for`` on
    the event loop, or with ``blocking()`` by a caller that already runs in a worker thread
    (a WSGI front end), so a large download does not cross to the loop and back per chunk.
    Its key was found when it was opened; iterate it once, one way or the other."""

    def __init__(self, blobs: BlobStore, tenant_id: str, file_key: str, sealer: ObjectSealer):
        self._blobs, self._tenant_id, self._file_key = blobs, tenant_id, file_key
        self._sealer = sealer
        self._chunks: AsyncIterator[bytes] | None = None

    def __aiter__(self) -> Content:
        return self

    async def __anext__(self) -> bytes:
        if self._chunks is None:
            self._chunks = self._decrypted()
        return await anext(self._chunks)

    async def aclose(self) -> None:
        closing = getattr(self._chunks, "aclose", None)
        if closing is not None:
            await closing()

    async def _decrypted(self) -> AsyncIterator[bytes]:
        decryptor = self._sealer.decryptor()
        async for chunk in self._blobs.read(self._tenant_id, self._file_key):
            plain = decryptor.update(chunk)
            if plain:
                yield plain
        yield decryptor.finalize()

    def blocking(self) -> Generator[bytes, None, None]:
        decryptor = self._sealer.decryptor()
        with contextlib.closing(self._blobs.read_blocking(self._tenant_id, self._file_key)) as read:
            for chunk in read:
                plain = decryptor.update(chunk)
                if plain:
                    yield plain
        yield decryptor.finalize()


class ContentStore:
    def __init__(self, db: Database, keys: KeyService, blobs: BlobStore) -> None:
        self._db = db
        self._keys = keys
        self._blobs = blobs
        self._name_keys: dict[str, tuple[bytes, float]] = {}
        self._keks: dict[tuple[str, int], tuple[bytes, float]] = {}

    async def _name_key(self, scope: TenantScope) -> bytes:
        """The tenant's naming key, unwrapped; kept in memory (never written anywhere) for
        ``NAME_KEY_TTL_SECONDS``, so that a stream of small writes does not read it each time."""
        now = time.monotonic()
        known = self._name_keys.get(scope.tenant_id)
        if known is not None and known[1] > now:
            return known[0]
        async with transaction(self._db) as tx:
            tenant = await tx.tenants.by_id(scope.tenant_id)
        if tenant is None:
            raise NotFound("no such tenant")
        key = self._keys.name_key(scope.tenant_id, tenant["wrapped_name_key"])
        if len(self._name_keys) >= NAME_KEYS_MAX:
            self._name_keys.clear()
        self._name_keys[scope.tenant_id] = (key, now + NAME_KEY_TTL_SECONDS)
        return key

    async def put(
        self,
        scope: TenantScope,
        data: bytes | AsyncIterable[bytes],
        attach: Attach | None = None,
    ) -> StoredObject:
        """Store content (streamed, bounded memory). Without ``attach`` the object gets one
        reference; with it, the references ``attach`` reports, committed with its rows."""
        tenant_id = scope.tenant_id
        namer = crypto.keyed_hash(await self._name_key(scope))
        object_id = uuid.uuid4().hex
        dek = crypto.new_key()
        encryptor = crypto.StreamEncryptor(dek, content_aad(tenant_id, object_id))
        staged = await self._blobs.stage(tenant_id)
        size = 0
        published: str | None = None  # our own file, unique to this object id
        try:
            async for chunk in _chunks(data):
                size += len(chunk)
                namer.update(chunk)
                await staged.write(encryptor.update(chunk))
            await staged.write(encryptor.finalize())
            name = namer.hexdigest()
            stored = StoredObject(name=name, size=size)
            file_key = _file_key(name, object_id)
            seen = False
            if size > LOOK_FIRST_BYTES:  # a small file is cheaper to publish than to look for
                async with transaction(self._db) as tx:
                    seen = await (await tx.scoped(scope)).blobs.get(name) is not None
            if not seen:
                # Fsync and rename before taking the write lock: the lock is held only for the
                # rows. The file name is unique, so nobody else can be writing it.
                await staged.commit(file_key)
                published = file_key
            async with transaction(self._db, write=True) as tx:
                scoped = await tx.scoped(scope)
                existing = await scoped.blobs.get(name)
                if existing is not None:
                    sealer = await self._sealer(tx, scope, existing)
                    refs = await attach(tx, scoped, stored, sealer) if attach else 1
                    await scoped.blobs.incref(name, refs)
                else:
                    if seen:  # collected between the two looks (rare): publish ours after all
                        await staged.commit(file_key)
                        published = file_key
                    sealer = ObjectSealer(tenant_id, object_id, dek)
                    refs = await attach(tx, scoped, stored, sealer) if attach else 1
                    # Wrap under the KEK active now, inside the write lock (rotation-safe).
                    version, kek = await self._keys.active_kek(tx, tenant_id)
                    await scoped.blobs.add(
                        name=name,
                        object_id=object_id,
                        kek_version=version,
                        wrapped_key=self._keys.wrap_data_key(kek, tenant_id, object_id, dek),
                        size=size,
                        refcount=refs,
                        created_at=clock.now(),
                    )
            published = None  # committed: the row names the file now (or its twin's)
            if existing is not None and seen:
                await staged.abort()
            elif existing is not None:  # stored already (not looked for, or meanwhile)
                await self._blobs.delete(tenant_id, file_key)
        except BaseException:
            await staged.abort()
            if published is not None:  # refused or failed after publishing: no row names it
                await self._blobs.delete(tenant_id, published)
            raise
        return stored

    async def put_many(
        self, scope: TenantScope, items: list[bytes], attach: AttachMany
    ) -> list[StoredObject]:
        """Store several objects and the caller's rows for all of them in ONE write
        transaction: all or nothing (IMAP MULTIAPPEND). Each object is written as ``put``
        writes one (staged, fsynced and renamed before the write lock is taken); when
        anything fails, the files this call published are removed again."""
        tenant_id = scope.tenant_id
        name_key = await self._name_key(scope)
        pending: list[_Pending] = []
        try:
            for data in items:
                staged = await self._blobs.stage(tenant_id)
                object_id, dek = uuid.uuid4().hex, crypto.new_key()
                encryptor = crypto.StreamEncryptor(dek, content_aad(tenant_id, object_id))
                namer = crypto.keyed_hash(name_key)
                namer.update(data)
                stored = StoredObject(name=namer.hexdigest(), size=len(data))
                pending.append(_Pending(staged, object_id, dek, stored))
                await staged.write(encryptor.update(data))
                await staged.write(encryptor.finalize())
            async with transaction(self._db) as tx:
                blobs = (await tx.scoped(scope)).blobs
                seen = {p.stored.name for p in pending if await blobs.get(p.stored.name)}
            for item in pending:  # outside the write lock, as in ``put``
                if item.stored.name not in seen:
                    await item.staged.commit(item.file_key)
                    item.published = True
            async with transaction(self._db, write=True) as tx:
                scoped = await tx.scoped(scope)
                refs = await attach(tx, scoped, await self._record_many(tx, scoped, scope, pending))
                for item, count in zip(pending, refs, strict=True):
                    await scoped.blobs.incref(item.stored.name, count)
        except BaseException:
            for item in pending:
                await item.staged.abort()
                if item.published:
                    await self._blobs.delete(tenant_id, item.file_key)
            raise
        for item in pending:  # committed; surplus copies of content recorded already go
            if item.twin and item.published:
                await self._blobs.delete(tenant_id, item.file_key)
            elif item.twin:
                await item.staged.abort()
        return [item.stored for item in pending]

    async def _record_many(
        self, tx: Tx, scoped: Scoped, scope: TenantScope, pending: list[_Pending]
    ) -> list[tuple[StoredObject, ObjectSealer]]:
        """Inside the write transaction: a row (no references yet) for each new object, and
        each object's sealer; content already stored, or twice in the batch, shares the
        object recorded first."""
        out: list[tuple[StoredObject, ObjectSealer]] = []
        first: dict[str, _Pending] = {}
        for item in pending:
            name = item.stored.name
            existing = await scoped.blobs.get(name)
            if name in first:
                item.twin, item.sealer = True, first[name].sealer
            elif existing is not None:
                item.twin, item.sealer = True, await self._sealer(tx, scope, existing)
            else:
                item.sealer = await self._record(tx, scoped, scope, item)
            first.setdefault(name, item)
            assert item.sealer is not None
            out.append((item.stored, item.sealer))
        return out

    async def _record(
        self, tx: Tx, scoped: Scoped, scope: TenantScope, item: _Pending
    ) -> ObjectSealer:
        """The row of a new object of ``put_many`` (its data key wrapped under the KEK active
        now, inside the write lock: rotation-safe)."""
        if not item.published:  # collected between the two looks (rare): publish now
            await item.staged.commit(item.file_key)
            item.published = True
        version, kek = await self._keys.active_kek(tx, scope.tenant_id)
        wrapped = self._keys.wrap_data_key(kek, scope.tenant_id, item.object_id, item.dek)
        await scoped.blobs.add(
            name=item.stored.name, object_id=item.object_id, kek_version=version,
            wrapped_key=wrapped, size=item.stored.size, refcount=0, created_at=clock.now(),
        )  # fmt: skip
        return ObjectSealer(scope.tenant_id, item.object_id, item.dek)

    async def _kek(self, tx: Tx, tenant_id: str, version: int) -> bytes:
        """A tenant's KEK of that version, unwrapped; kept in memory only, for
        ``KEK_TTL_SECONDS`` (each read of a document would otherwise read and unwrap it).
        Rotation re-wraps every data key under a new version and tenant deletion removes
        the rows that name the old one, so a remembered KEK opens nothing new."""
        key, now = (tenant_id, version), time.monotonic()
        known = self._keks.get(key)
        if known is not None and known[1] > now:
            return known[0]
        kek = await self._keys.kek(tx, tenant_id, version)
        if len(self._keks) >= NAME_KEYS_MAX:
            self._keks.clear()
        self._keks[key] = (kek, now + KEK_TTL_SECONDS)
        return kek

    async def _sealer(self, tx: Tx, scope: TenantScope, row: Any) -> ObjectSealer:
        kek = await self._kek(tx, scope.tenant_id, int(row["kek_version"]))
        object_id = row["object_id"]
        dek = self._keys.unwrap_data_key(kek, scope.tenant_id, object_id, row["wrapped_key"])
        return ObjectSealer(scope.tenant_id, object_id, dek)

    async def sealer(self, tx: Tx, scope: TenantScope, name: str) -> ObjectSealer:
        """The sealer of a stored object, to open values sealed with its key."""
        row = await (await tx.scoped(scope)).blobs.get(name)
        if row is None:
            raise NotFound("no such object")
        return await self._sealer(tx, scope, row)

    async def sealers(
        self, tx: Tx, scope: TenantScope, names: list[str]
    ) -> dict[str, ObjectSealer]:
        """The sealers of many stored objects at once (each KEK version opened once)."""
        keks: dict[int, bytes] = {}
        sealers: dict[str, ObjectSealer] = {}
        for row in await (await tx.scoped(scope)).blobs.by_names(sorted(set(names))):
            version = int(row["kek_version"])
            if version not in keks:
                keks[version] = await self._keys.kek(tx, scope.tenant_id, version)
            object_id = row["object_id"]
            dek = self._keys.unwrap_data_key(
                keks[version], scope.tenant_id, object_id, row["wrapped_key"]
            )
            sealers[row["name"]] = ObjectSealer(scope.tenant_id, object_id, dek)
        return sealers

    async def add_reference(self, scope: TenantScope, name: str) -> None:
        async with transaction(self._db, write=True) as tx:
            if not await (await tx.scoped(scope)).blobs.incref(name, 1):
                raise NotFound("no such object")

    async def release(self, scope: TenantScope, name: str) -> None:
        """Drop one reference; unreferenced objects go at the next collection."""
        async with transaction(self._db, write=True) as tx:
            await (await tx.scoped(scope)).blobs.incref(name, -1)

    async def stream(self, scope: TenantScope, name: str) -> AsyncIterator[bytes]:
        async with transaction(self._db) as tx:
            chunks = await self.opened(tx, scope, name)
        async for chunk in chunks:
            yield chunk

    async def opened(self, tx: Tx, scope: TenantScope, name: str) -> Content:
        """An object's content, its key found in ``tx`` (the caller's transaction, which
        also found the object's name); the file is read, and decrypted, as it is iterated."""
        row = await (await tx.scoped(scope)).blobs.get(name)
        if row is None or row["refcount"] <= 0:
            raise NotFound("no such object")
        sealer = await self._sealer(tx, scope, row)
        return Content(self._blobs, scope.tenant_id, _file_key(name, row["object_id"]), sealer)

    async def read(self, scope: TenantScope, name: str) -> bytes:
        return b"".join([chunk async for chunk in self.stream(scope, name)])

    async def collect_garbage(self, grace_seconds: float) -> int:
        """Remove unreferenced objects, files without a row (after the grace period), and the
        leftovers of deleted tenants. Returns how many files went."""
        removed = 0
        async with transaction(self._db) as tx:
            live_tenants = {row["id"] for row in await tx.tenants.all()}
        for tenant_id in await self._blobs.tenants():
            if tenant_id not in live_tenants:
                await self._blobs.delete_tenant(tenant_id)
                removed += 1
        for tenant_id in live_tenants:
            scope = TenantScope(tenant_id)
            async with transaction(self._db, write=True) as tx:
                scoped = await tx.scoped(scope)
                dead = await scoped.blobs.unreferenced()
                for row in dead:
                    await scoped.blobs.remove(row["name"])
            for row in dead:
                await self._blobs.delete(tenant_id, _file_key(row["name"], row["object_id"]))
                removed += 1
            async with transaction(self._db) as tx:
                known = await (await tx.scoped(scope)).blobs.file_keys()
            for key, age in await self._blobs.keys(tenant_id):
                if key not in known and age >= grace_seconds:
                    await self._blobs.delete(tenant_id, key)
                    removed += 1
        return removed
