"""The blob store contract. Stores see only ciphertext and opaque keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Protocol


class StagedBlob(Protocol):
    """An object being written. Nothing is visible under a key until ``commit`` returns."""

    async def write(self, data: bytes) -> None: ...

    async def commit(self, key: str) -> None:
        """Publish under ``key``, durably (on return the bytes survive a crash)."""

    async def abort(self) -> None: ...


class BlobStore(Protocol):
    async def stage(self, tenant_id: str) -> StagedBlob: ...

    def read(self, tenant_id: str, key: str) -> AsyncIterator[bytes]:
        """Chunks of the stored bytes. Raises FileNotFoundError for an unknown key."""
        ...

    def read_blocking(self, tenant_id: str, key: str) -> Generator[bytes, None, None]:
        """``read`` for a caller in a worker thread (never on the event loop): the same
        chunks, fetched in the calling thread."""
        ...

    async def delete(self, tenant_id: str, key: str) -> None:
        """Remove one object; a missing key is not an error."""

    async def delete_tenant(self, tenant_id: str) -> None: ...

    async def keys(self, tenant_id: str) -> list[tuple[str, float]]:
        """Every stored key of a tenant with its age in seconds (for orphan collection)."""
        ...

    async def tenants(self) -> list[str]: ...
