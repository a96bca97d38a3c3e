"""What users say about their documents: title, description, tags, a classification label,
and custom properties (WebDAV dead properties, named ``{namespace}local``).

Setting a label needs write access and the label's sharing rule to hold where the document
is; lowering or removing one (declassifying) needs manage access.
"""

from __future__ import annotations

import json
import re
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
from enclave.core.errors import Forbidden, Invalid, NotFound, QuotaExceeded
from enclave.core.principal import Principal
from enclave.core.search.index import DOC_KIND
from enclave.core.search.queue import IndexQueue

MAX_PROPERTY_BYTES = 64 * 1024  # one value, UTF-8
MAX_PROPERTY_NAME = 512  # characters of a Clark name, {namespace}local
MAX_PROPERTY_CHANGES = 200  # properties set or removed by one call (one PROPPATCH)
MAX_PROPERTIES = 1000  # properties one document or folder holds
MAX_PROPERTIES_CHARS = 1024 * 1024  # characters of all one node's values together
# A Clark name: an optional {namespace} (no braces inside) and an XML NCName-like local part
_CLARK = re.compile(r"(?:\{[^{}\x00-\x20\x7f]*\})?[^\W\d][\w.\-]*")
MAX_TAGS = 64
UNSET: Any = object()  # "leave as it is", as opposed to None ("clear it")


@dataclass(frozen=True)
class DocumentMetadata:
    title: str | None
    description: str | None
    tags: list[str]
    label: str | None
    properties: dict[str, str] = field(default_factory=dict)


def check_property_changes(changes: dict[str, str | None]) -> None:
    """What a batch of property changes must satisfy on its own (before any transaction)."""
    if len(changes) > MAX_PROPERTY_CHANGES:
        raise Invalid(f"at most {MAX_PROPERTY_CHANGES} properties change at once")
    for name, value in changes.items():
        if not name or len(name) > MAX_PROPERTY_NAME or not _CLARK.fullmatch(name):
            raise Invalid(
                f"a property is named {{namespace}}local (an XML name), at most "
                f"{MAX_PROPERTY_NAME} characters"
            )
        if value is not None and len(value.encode("utf-8", "surrogatepass")) > MAX_PROPERTY_BYTES:
            raise Invalid(f"a property value is at most {MAX_PROPERTY_BYTES} bytes")


def _tags(text: str | None) -> list[str]:
    return list(json.loads(text)) if text else []


class Metadata:
    def __init__(self, db: Database, audit: AuditLog, index: IndexQueue | None = None) -> None:
        self._db = db
        self._audit = audit
        self._index = index

    async def get(self, principal: Principal, library_id: str, path: str) -> DocumentMetadata:
        async with located(self._db, principal, library_id, path, Level.READ) as here:
            props = await here.scoped.props.of_node(here.place.node["id"])
        node = here.place.node
        return DocumentMetadata(
            node["title"], node["description"], _tags(node["tags"]), node["label"],
            {row["name"]: row["value"] for row in props},
        )  # fmt: skip

    async def of_members(
        self, principal: Principal, library_id: str, path: str
    ) -> dict[str, dict[str, str]]:
        """Node id -> custom properties of a folder and each of its members, in one read
        (a PROPFIND of every property of a listing). Readable folder, readable members."""
        async with located(self._db, principal, library_id, path, Level.READ) as here:
            folder, scoped = here.place.node, here.scoped
            ids = [folder["id"]]
            if folder["folder"]:
                ids += [row["id"] for row in await scoped.nodes.children(folder["id"])]
            found: dict[str, dict[str, str]] = {node_id: {} for node_id in ids}
            for row in await scoped.props.of_nodes(ids):
                found[row["node_id"]][row["name"]] = row["value"]
        return found

    async def set_properties(
        self, principal: Principal, library_id: str, path: str,
        changes: dict[str, str | None], *, tokens: Tokens = None,
    ) -> None:  # fmt: skip
        """Set (or, with None, remove) custom properties, all or none (PROPPATCH). Everything
        that grows with the request is checked before the write transaction; inside it, one
        aggregate query, one DELETE and one INSERT, whatever the number of changes."""
        check_property_changes(changes)
        async with located(self._db, principal, library_id, path, Level.WRITE, write=True) as here:
            place, scoped = here.place, here.scoped
            node_id = place.node["id"]
            await check_unlocked(scoped, principal, library_id, paths.split(place.path), tokens)
            count, size = await scoped.props.footprint(node_id)
            existing = await scoped.props.sizes(node_id, list(changes))
            # names replaced or removed leave the counts first; what is set comes in
            new_count = count - len(existing) + sum(1 for v in changes.values() if v is not None)
            new_size = size - sum(existing.values()) + sum(len(v) for v in changes.values() if v)
            if new_count > MAX_PROPERTIES and new_count > count:
                raise QuotaExceeded(
                    f"a document or folder holds at most {MAX_PROPERTIES} properties"
                )
            if new_size > MAX_PROPERTIES_CHARS and new_size > size:
                raise QuotaExceeded(
                    f"the properties of a document or folder hold at most {MAX_PROPERTIES_CHARS} "
                    "characters together"
                )
            await scoped.props.remove_many(node_id, [n for n, v in changes.items() if v is None])
            await scoped.props.put_many(
                node_id, {n: v for n, v in changes.items() if v is not None}
            )

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
                if self._index is not None:  # title, description and tags are indexed
                    await self._index.add(here.tx, scoped, DOC_KIND, place.node["id"])
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
