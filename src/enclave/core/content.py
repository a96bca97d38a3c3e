"""Encrypted, content-addressed tenant objects over a blob store.

Each object is sealed with its own data key (wrapped by the tenant's KEK) and with the tenant id
and a random object id as associated data, so a ciphertext copied to another tenant or object
fails to decrypt. It is named by a keyed hash of its plaintext under a per-tenant naming key: the
name reveals nothing, and identical content within one tenant is stored once (reference counted).

Write order: ciphertext to a staging file, fsync, rename, then the database row commits. A crash
in between leaves only an unreferenced file, which ``collect_garbage`` removes after a grace
period; it never leaves a row without its file.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from enclave.backends.blobs import BlobStore
from enclave.backends.db.engine import Database
from enclave.backends.db.platform import transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core import clock, crypto
from enclave.core.errors import NotFound
from enclave.core.keys import KeyService, content_aad


@dataclass(frozen=True)
class StoredObject:
    name: str
    size: int


async def _chunks(data: bytes | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(data, bytes):
        yield data
    else:
        async for chunk in data:
            yield chunk


def _file_key(name: str, object_id: str) -> str:
    return f"{name}.{object_id}"


class ContentStore:
    def __init__(self, db: Database, keys: KeyService, blobs: BlobStore) -> None:
        self._db = db
        self._keys = keys
        self._blobs = blobs

    async def _name_key(self, scope: TenantScope) -> bytes:
        async with transaction(self._db) as tx:
            tenant = await tx.tenants.by_id(scope.tenant_id)
        if tenant is None:
            raise NotFound("no such tenant")
        return self._keys.name_key(scope.tenant_id, tenant["wrapped_name_key"])

    async def put(self, scope: TenantScope, data: bytes | AsyncIterable[bytes]) -> StoredObject:
        """Store content (streamed, bounded memory); returns its name, with one reference."""
        tenant_id = scope.tenant_id
        namer = crypto.keyed_hash(await self._name_key(scope))
        object_id = uuid.uuid4().hex
        dek = crypto.new_key()
        encryptor = crypto.StreamEncryptor(dek, content_aad(tenant_id, object_id))
        staged = await self._blobs.stage(tenant_id)
        size = 0
        try:
            async for chunk in _chunks(data):
                size += len(chunk)
                namer.update(chunk)
                await staged.write(encryptor.update(chunk))
            await staged.write(encryptor.finalize())
            name = namer.hexdigest()
            async with transaction(self._db, write=True) as tx:
                scoped = await tx.scoped(scope)
                if await scoped.blobs.get(name) is not None:
                    await scoped.blobs.incref(name, 1)
                    published = False
                else:
                    # Wrap under the KEK active now, inside the write lock (rotation-safe).
                    version, kek = await self._keys.active_kek(tx, tenant_id)
                    await staged.commit(_file_key(name, object_id))
                    published = True
                    await scoped.blobs.add(
                        name=name,
                        object_id=object_id,
                        kek_version=version,
                        wrapped_key=self._keys.wrap_data_key(kek, tenant_id, object_id, dek),
                        size=size,
                        refcount=1,
                        created_at=clock.now(),
                    )
            if not published:
                await staged.abort()
        except BaseException:
            await staged.abort()
            raise
        return StoredObject(name=name, size=size)

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
            row = await (await tx.scoped(scope)).blobs.get(name)
            if row is None or row["refcount"] <= 0:
                raise NotFound("no such object")
            kek = await self._keys.kek(tx, scope.tenant_id, int(row["kek_version"]))
        object_id = row["object_id"]
        dek = self._keys.unwrap_data_key(kek, scope.tenant_id, object_id, row["wrapped_key"])
        decryptor = crypto.StreamDecryptor(dek, content_aad(scope.tenant_id, object_id))
        async for chunk in self._blobs.read(scope.tenant_id, _file_key(name, object_id)):
            plain = decryptor.update(chunk)
            if plain:
                yield plain
        yield decryptor.finalize()

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
