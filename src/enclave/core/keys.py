"""The key hierarchy: deployment master key -> tenant key (KEK) -> per-object data keys.

The master key wraps each tenant's KEK (and its content-naming key) with the tenant id and key
version bound as associated data. Data keys are wrapped by the active KEK. Rotation writes a new
KEK version, re-wraps every data key and forgets the old KEK; content is not re-encrypted.
Destroying a tenant's KEK rows makes every object of that tenant unreadable (crypto-shredding).
"""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

from enclave.backends.db.platform import Tx
from enclave.backends.db.scoped import TenantScope
from enclave.core import clock, crypto
from enclave.core.errors import IntegrityError


def write_master_key(path: Path) -> None:
    """Create a new master key file, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(crypto.new_key()).decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_master_key(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(f"{path} is readable by others; chmod 600 it")
    key = base64.b64decode(path.read_text().strip(), validate=True)
    if len(key) != crypto.KEY_BYTES:
        raise ValueError(f"{path} does not hold a {crypto.KEY_BYTES}-byte key")
    return key


def _kek_aad(tenant_id: str, version: int) -> bytes:
    return f"enclave/tenant-kek/{tenant_id}/{version}".encode()


def _name_key_aad(tenant_id: str) -> bytes:
    return f"enclave/tenant-name-key/{tenant_id}".encode()


def _dek_aad(tenant_id: str, object_id: str) -> bytes:
    return f"enclave/dek/{tenant_id}/{object_id}".encode()


def _search_key_aad(tenant_id: str, version: int) -> bytes:
    return f"enclave/search-key/{tenant_id}/{version}".encode()


def content_aad(tenant_id: str, object_id: str) -> bytes:
    """Associated data binding a ciphertext to its tenant and object."""
    return f"enclave/content/{tenant_id}/{object_id}".encode()


class KeyService:
    def __init__(self, master_key: bytes) -> None:
        self._master = master_key

    # --- secrets sealed directly under the master key (credentials, not content) ---------

    def seal_secret(self, purpose: str, owner: str, secret: bytes) -> bytes:
        return crypto.seal(self._master, secret, f"enclave/secret/{purpose}/{owner}".encode())

    def open_secret(self, purpose: str, owner: str, sealed: bytes) -> bytes:
        return crypto.open_sealed(
            self._master, sealed, f"enclave/secret/{purpose}/{owner}".encode()
        )

    # --- tenant keys ---------------------------------------------------------------------

    def new_name_key(self, tenant_id: str) -> bytes:
        """A wrapped content-naming key, stored on the tenant row."""
        return crypto.seal(self._master, crypto.new_key(), _name_key_aad(tenant_id))

    def name_key(self, tenant_id: str, wrapped: bytes) -> bytes:
        return crypto.open_sealed(self._master, wrapped, _name_key_aad(tenant_id))

    async def create_tenant_key(self, tx: Tx, tenant_id: str, version: int = 1) -> None:
        wrapped = crypto.seal(self._master, crypto.new_key(), _kek_aad(tenant_id, version))
        await tx.tenant_keys.add(tenant_id, version, wrapped, clock.now())

    async def active_kek(self, tx: Tx, tenant_id: str) -> tuple[int, bytes]:
        row = await tx.tenant_keys.active(tenant_id)
        if row is None or row["wrapped_key"] is None:
            raise IntegrityError(f"tenant {tenant_id} has no usable key")
        version = int(row["version"])
        return version, crypto.open_sealed(
            self._master, row["wrapped_key"], _kek_aad(tenant_id, version)
        )

    async def kek(self, tx: Tx, tenant_id: str, version: int) -> bytes:
        row = await tx.tenant_keys.get(tenant_id, version)
        if row is None or row["wrapped_key"] is None:
            raise IntegrityError(f"tenant {tenant_id} key version {version} is destroyed")
        return crypto.open_sealed(self._master, row["wrapped_key"], _kek_aad(tenant_id, version))

    # --- data keys -----------------------------------------------------------------------

    @staticmethod
    def wrap_data_key(kek: bytes, tenant_id: str, object_id: str, dek: bytes) -> bytes:
        return crypto.seal(kek, dek, _dek_aad(tenant_id, object_id))

    @staticmethod
    def unwrap_data_key(kek: bytes, tenant_id: str, object_id: str, wrapped: bytes) -> bytes:
        return crypto.open_sealed(kek, wrapped, _dek_aad(tenant_id, object_id))

    # --- the search key (core/search: the index stores keyed tokens, never terms) ---------

    async def search_key(self, tx: Tx, tenant_id: str, *, create: bool = False) -> bytes | None:
        """The tenant's search key, wrapped by its KEK; made on first use when ``create`` (in
        a write transaction). None when there is none yet: nothing is indexed."""
        scoped = await tx.scoped(TenantScope(tenant_id))
        row = await scoped.search_keys.get()
        if row is not None:
            version = int(row["kek_version"])
            kek = await self.kek(tx, tenant_id, version)
            return crypto.open_sealed(kek, row["wrapped_key"], _search_key_aad(tenant_id, version))
        if not create:
            return None
        version, kek = await self.active_kek(tx, tenant_id)
        key = crypto.new_key()
        await scoped.search_keys.add(
            version, crypto.seal(kek, key, _search_key_aad(tenant_id, version))
        )
        return key

    async def rotate(self, tx: Tx, tenant_id: str) -> int:
        """New KEK version; every data key re-wrapped under it; the old KEK destroyed.

        Runs in one write transaction, so no object is added under the old key meanwhile and
        every data key is on the active version when it starts.
        """
        old_version, old_kek = await self.active_kek(tx, tenant_id)
        new_version = max(int(r["version"]) for r in await tx.tenant_keys.versions(tenant_id)) + 1
        await tx.tenant_keys.retire(tenant_id, old_version)
        await self.create_tenant_key(tx, tenant_id, new_version)
        _, new_kek = await self.active_kek(tx, tenant_id)
        scoped = await tx.scoped(TenantScope(tenant_id))
        for row in await scoped.blobs.all():
            if int(row["kek_version"]) != old_version:
                raise IntegrityError(f"object {row['object_id']} is under a destroyed key")
            dek = self.unwrap_data_key(old_kek, tenant_id, row["object_id"], row["wrapped_key"])
            rewrapped = self.wrap_data_key(new_kek, tenant_id, row["object_id"], dek)
            await scoped.blobs.rewrap(row["name"], new_version, rewrapped)
        search = await scoped.search_keys.get()
        if search is not None:
            key = crypto.open_sealed(
                old_kek, search["wrapped_key"], _search_key_aad(tenant_id, old_version)
            )
            await scoped.search_keys.rewrap(
                new_version, crypto.seal(new_kek, key, _search_key_aad(tenant_id, new_version))
            )
        return new_version

    async def shred(self, tx: Tx, tenant_id: str) -> None:
        await tx.tenant_keys.destroy(tenant_id)
