"""What the document services hand out: plain values, no rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from enclave.core.documents.access import Level


@dataclass(frozen=True)
class Library:
    id: str
    name: str
    owner_id: str | None
    quota_bytes: int | None
    keep_versions: int | None
    keep_days: int | None
    level: Level  # what the principal who asked may do in it (at its root)

    @property
    def personal(self) -> bool:
        return self.owner_id is not None


@dataclass(frozen=True)
class Node:
    id: str
    library_id: str
    path: str  # from the library root, "" for the root itself
    name: str
    folder: bool
    size: int
    version: int
    content_type: str | None
    etag: str
    created_at: datetime
    modified_at: datetime
    level: Level
    legal_hold: bool = False
    retain_until: datetime | None = None
    label: str | None = None


@dataclass(frozen=True)
class Version:
    number: int
    size: int
    content_type: str | None
    created_at: datetime
    created_by: str | None
    current: bool


@dataclass(frozen=True)
class Trashed:
    id: str
    name: str
    folder: bool
    size: int
    deleted_at: datetime
    deleted_by: str | None


def library_of(row: Any, level: Level) -> Library:
    return Library(
        id=row["id"],
        name=row["name"],
        owner_id=row["owner_id"],
        quota_bytes=row["quota_bytes"],
        keep_versions=row["keep_versions"],
        keep_days=row["keep_days"],
        level=level,
    )


def node_of(row: Any, path: str, level: Level) -> Node:
    return Node(
        id=row["id"],
        library_id=row["library_id"],
        path=path,
        name=row["name"],
        folder=bool(row["folder"]),
        size=int(row["size"]),
        version=int(row["version"]),
        content_type=row["content_type"],
        etag=row["etag"],
        created_at=row["created_at"],
        modified_at=row["modified_at"],
        level=level,
        legal_hold=bool(row["legal_hold"]),
        retain_until=row["retain_until"],
        label=row["label"],
    )
