"""What users say about their documents: title, description, tags, a classification label,
and custom properties (WebDAV dead properties, named ``{namespace}local``).

Setting a label needs write access and the label's sharing rule to hold where the document
is; lowering or removing one (declassifying) needs manage access.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Scoped, Tx
from enclave.core.audit import AuditEvent, AuditLog
from enclave.core.documents import paths
from enclave.core.documents.access import Level
from enclave.core.documents.labels import check_sharing
from enclave.core.documents.locks import Tokens, check_unlocked
from enclave.core.documents.lookup import Place, located
from enclave.core.documents.search import DocumentSearch
from enclave.core.errors import Forbidden, Invalid, NotFound
from enclave.core.principal import Principal

MAX_PROPERTY_BYTES = 64 * 1024
MAX_TAGS = 64
UNSET: Any = object()  # "leave as it is", as opposed to None ("clear it")


@dataclass(frozen=True)
class DocumentMetadata:
    title: str | None
    description: str | None
    tags: list[str]
    label: str | None
    properties: dict[str, str] = field(default_factory=dict)


def _tags(text: str | None) -> list[str]:
    return list(json.loads(text)) if text else []


class Metadata:
    def __init__(self, db: Database, audit: AuditLog, search: DocumentSearch | None = None) -> None:
        self._db = db
        self._audit = audit
        self._search = search

    async def get(self, principal: Principal, library_id: str, path: str) -> DocumentMetadata:
        async with located(self._db, principal, library_id, path, Level.READ) as here:
            props = await here.scoped.props.of_node(here.place.node["id"])
        node = here.place.node
        return DocumentMetadata(
            node["title"], node["description"], _tags(node["tags"]), node["label"],
            {row["name"]: row["value"] for row in props},
        )  # fmt: skip

    async def set_properties(
        self, principal: Principal, library_id: str, path: str,
        changes: dict[str, str | None], *, tokens: Tokens = None,
    ) -> None:  # fmt: skip
        """Set (or, with None, remove) custom properties, all or none (PROPPATCH)."""
        for name, value in changes.items():
            if not name or len(name) > 512:
                raise Invalid("a property needs a name of at most 512 characters")
            if value is not None and len(value.encode()) > MAX_PROPERTY_BYTES:
                raise Invalid(f"a property value is at most {MAX_PROPERTY_BYTES} bytes")
        async with located(self._db, principal, library_id, path, Level.WRITE, write=True) as here:
            place, scoped = here.place, here.scoped
            await check_unlocked(scoped, principal, library_id, paths.split(place.path), tokens)
            for name, value in changes.items():
                if value is None:
                    await scoped.props.remove(place.node["id"], name)
                else:
                    await scoped.props.put(place.node["id"], name, value)

    async def describe(
        self, principal: Principal, library_id: str, path: str, *,
        title: str | None = UNSET, description: str | None = UNSET,
        tags: list[str] | None = UNSET, label: str | None = UNSET, tokens: Tokens = None,
    ) -> DocumentMetadata:  # fmt: skip
        """Change title, description, tags or label; what is not passed stays as it is."""
        changes: dict[str, Any] = {}
        if title is not UNSET:
            changes["title"] = title
        if description is not UNSET:
            changes["description"] = description
        if tags is not UNSET:
            clean = sorted({t.strip() for t in tags or [] if t.strip()})
            if len(clean) > MAX_TAGS:
                raise Invalid(f"at most {MAX_TAGS} tags")
            changes["tags"] = json.dumps(clean) if clean else None
        async with located(self._db, principal, library_id, path, Level.WRITE, write=True) as here:
            place, scoped = here.place, here.scoped
            await check_unlocked(scoped, principal, library_id, paths.split(place.path), tokens)
            if label is not UNSET and label != place.node["label"]:
                await self._relabel(here.tx, scoped, principal, place, label)
                changes["label"] = label
            if changes:
                await scoped.nodes.change(place.node["id"], **changes)
        if self._search is not None and changes:  # title, description, tags, label are indexed
            await self._search.refresh(place.node["tenant_id"], place.node["id"])
        return await self.get(principal, library_id, path)

    async def _relabel(
        self, tx: Tx, scoped: Scoped, principal: Principal, place: Place, label: str | None
    ) -> None:
        old = await scoped.labels.get(place.node["label"]) if place.node["label"] else None
        new = await scoped.labels.get(label) if label is not None else None
        if label is not None and new is None:
            raise NotFound(f"no label {label}")
        lowering = old is not None and (new is None or int(new["rank"]) < int(old["rank"]))
        if lowering and place.level < Level.MANAGE:
            raise Forbidden("lowering a classification needs manage access")
        if new is not None:
            await check_sharing(
                scoped, place.library, place.chain, [{**dict(place.node), "label": label}]
            )
        await self._audit.record(
            tx,
            AuditEvent.by(
                principal, "document.label", f"library:{place.library['name']}/{place.path}",
                reason=f"{place.node['label']} -> {label}",
            ),
        )  # fmt: skip
