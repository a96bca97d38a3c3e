"""Blob stores: opaque, already-encrypted objects per tenant. Chosen by name in config."""

from __future__ import annotations

from pathlib import Path

from enclave.backends.blobs.base import BlobStore, StagedBlob
from enclave.backends.blobs.fs import FilesystemBlobStore

__all__ = ["BlobStore", "FilesystemBlobStore", "StagedBlob", "open_blob_store"]


def open_blob_store(backend: str, path: Path) -> BlobStore:
    if backend == "fs":
        return FilesystemBlobStore(path)
    raise ValueError(f"unknown blob backend {backend!r}")
