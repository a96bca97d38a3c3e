"""Local filesystem blob store: temporary file, fsync, rename, fsync the directory.

Layout: ``ROOT/<tenant id>/<key[:2]>/<key>``; staging files live in ``ROOT/.staging`` on the
same filesystem so the final rename is atomic.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import IO

CHUNK = 256 * 1024


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _safe(part: str) -> str:
    if not part or "/" in part or part.startswith("."):
        raise ValueError(f"invalid blob path component {part!r}")
    return part


class _FsStaged:
    def __init__(self, store: FilesystemBlobStore, tenant_id: str, handle: IO[bytes]) -> None:
        self._store = store
        self._tenant_id = tenant_id
        self._handle = handle

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self._handle.write, data)

    async def commit(self, key: str) -> None:
        target = self._store.path_of(self._tenant_id, key)

        def publish() -> None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._handle.name, target)
            _fsync_dir(target.parent)

        await asyncio.to_thread(publish)

    async def abort(self) -> None:
        def drop() -> None:
            self._handle.close()
            Path(self._handle.name).unlink(missing_ok=True)

        await asyncio.to_thread(drop)


class FilesystemBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._staging = root / ".staging"
        self._staging.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path_of(self, tenant_id: str, key: str) -> Path:
        return self.root / _safe(tenant_id) / _safe(key)[:2] / key

    async def stage(self, tenant_id: str) -> _FsStaged:
        _safe(tenant_id)
        handle = tempfile.NamedTemporaryFile(dir=self._staging, prefix="blob-", delete=False)
        return _FsStaged(self, tenant_id, handle)

    async def read(self, tenant_id: str, key: str) -> AsyncIterator[bytes]:
        """The file in chunks; opening it and reading the first chunk is one trip to a
        thread, and a short chunk is the last (a small file is one trip in all)."""
        path = self.path_of(tenant_id, key)

        def first() -> tuple[IO[bytes], bytes]:
            handle = path.open("rb")
            try:
                return handle, handle.read(CHUNK)
            except BaseException:
                handle.close()
                raise

        handle, chunk = await asyncio.to_thread(first)
        try:
            while chunk:
                yield chunk
                if len(chunk) < CHUNK:
                    break
                chunk = await asyncio.to_thread(handle.read, CHUNK)
        finally:
            handle.close()

    def read_blocking(self, tenant_id: str, key: str) -> Generator[bytes, None, None]:
        with self.path_of(tenant_id, key).open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    async def delete(self, tenant_id: str, key: str) -> None:
        await asyncio.to_thread(self.path_of(tenant_id, key).unlink, True)

    async def delete_tenant(self, tenant_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.root / _safe(tenant_id), True)

    async def keys(self, tenant_id: str) -> list[tuple[str, float]]:
        def scan() -> list[tuple[str, float]]:
            now = time.time()
            base = self.root / _safe(tenant_id)
            if not base.is_dir():
                return []
            return [(p.name, now - p.stat().st_mtime) for p in base.glob("*/*") if p.is_file()]

        return await asyncio.to_thread(scan)

    async def tenants(self) -> list[str]:
        def scan() -> list[str]:
            return [p.name for p in self.root.iterdir() if p.is_dir() and p.name[0] != "."]

        return await asyncio.to_thread(scan)
