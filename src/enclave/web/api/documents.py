"""JSON API of the documents workload: libraries, browsing, upload and download (streamed),
folders, move and copy, versions, trash, locks (check-out), metadata, labels, grants, holds.

Handlers are thin: parse the request, call one core service, render. Libraries are addressed by
id; a document or folder by its path from the library root, as the URL suffix (percent-encoded;
empty for the root). Access rules, quotas, locks and labels are all decided in the core; its
errors become statuses in ``web/errors.py``.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from enclave.core.bounds import INT64_MAX
from enclave.core.documents.libraries import MAX_KEEP_DAYS
from enclave.core.errors import Invalid, NotFound, PreconditionFailed
from enclave.web.api import openapi
from enclave.web.api.documents_common import (
    entity_tag,
    etag_of,
    field,
    library_id_of,
    library_json,
    managed_client,
    node_json,
    path_of,
    plain,
    snippet_html,
)
from enclave.web.common import (
    attachment,
    body,
    int_field,
    int_param,
    int_required,
    principal,
    services,
)

LEVELS = ("read", "write", "manage")
MAX_CONTENT_TYPE = 255

# --- libraries -----------------------------------------------------------------------------


async def list_libraries(request: Request) -> Response:
    """The libraries the caller can reach (their personal one first)."""
    found = await services(request).libraries.visible(await principal(request))
    return JSONResponse([library_json(library) for library in found])


async def create_library(request: Request) -> Response:
    """A shared library (tenant administrators)."""
    who = await principal(request)
    data = await body(request, "name")
    library = await services(request).libraries.create(
        who, who.tenant_id or "", data["name"], quota_bytes=int_field(data, "quota_bytes"),
        keep_versions=int_field(data, "keep_versions", 1),
        keep_days=int_field(data, "keep_days", 1, MAX_KEEP_DAYS),
    )  # fmt: skip
    return JSONResponse(library_json(library), status_code=201)


async def personal_library(request: Request) -> Response:
    """The caller's own library, created on first use."""
    library = await services(request).libraries.personal(await principal(request))
    return JSONResponse(library_json(library))


async def get_library(request: Request) -> Response:
    found = await services(request).libraries.visible(await principal(request))
    for library in found:
        if library.id == library_id_of(request):
            return JSONResponse(library_json(library))
    raise NotFound("no such library")


# --- nodes and content ---------------------------------------------------------------------


async def get_node(request: Request) -> Response:
    """A document or folder; a folder with its children."""
    who, documents = await principal(request), services(request).documents
    node = await documents.stat(who, library_id_of(request), path_of(request))
    payload = node_json(node)
    if node.folder:
        children = await documents.children(who, library_id_of(request), node.path)
        payload["children"] = [node_json(child) for child in children]
    return JSONResponse(payload)


async def delete_node(request: Request) -> Response:
    """To the trash, with everything below it."""
    await services(request).documents.delete(
        await principal(request), library_id_of(request), path_of(request)
    )
    return Response(status_code=204)


async def make_folder(request: Request) -> Response:
    node = await services(request).documents.make_folder(
        await principal(request), library_id_of(request), path_of(request)
    )
    return JSONResponse(node_json(node), status_code=201)


async def put_content(request: Request) -> Response:
    """Upload: the body streams into the content store; 201 for a new document, 200 for a new
    version. ``If-Match`` (an ETag, or *) and ``If-None-Match: *`` answer 412 when unmet."""
    who, documents = await principal(request), services(request).documents
    library_id, path = library_id_of(request), path_of(request)
    if_match = entity_tag(request.headers.get("if-match"))
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and if_none_match.strip() != "*":
        raise Invalid("uploads take If-None-Match: * only")
    if if_match == "*":
        try:
            await documents.stat(who, library_id, path)
        except NotFound:
            raise PreconditionFailed("the document does not exist") from None
        if_match = None
    content_type = request.headers.get("content-type") or mimetypes.guess_type(path)[0]
    if content_type is not None and len(content_type) > MAX_CONTENT_TYPE:
        raise Invalid("content type too long")
    try:
        node, created = await documents.write(
            who, library_id, path, request.stream(), content_type,
            if_match=if_match, if_none_match=if_none_match is not None,
        )  # fmt: skip
    except ClientDisconnect:
        return Response(status_code=400)  # nothing was stored; nobody is listening
    return JSONResponse(
        node_json(node), status_code=201 if created else 200, headers={"ETag": etag_of(node)}
    )


async def get_content(request: Request) -> Response:
    """Download (or HEAD): the current version or ``?version=N``. Labels may limit downloads
    to managed clients (403 for others)."""
    who, documents = await principal(request), services(request).documents
    library_id, path = library_id_of(request), path_of(request)
    number = int_param(request, "version", 0) or None
    if request.method == "HEAD":
        node, chunks = await documents.stat(who, library_id, path), None
        if node.folder:
            raise Invalid("a folder has no content")
    else:
        node, chunks = await documents.read(
            who, library_id, path, number, managed=managed_client(request)
        )
    size, content_type, etag = node.size, node.content_type, etag_of(node)
    if number is not None and number != node.version:
        versions = await documents.versions(who, library_id, path)
        version = next((v for v in versions if v.number == number), None)
        if version is None:
            raise NotFound(f"no version {number}")
        size, content_type, etag = version.size, version.content_type, f'"{node.id}.v{number}"'
    headers = {
        "ETag": etag,
        "Content-Length": str(size),
        "Content-Type": content_type or "application/octet-stream",
        "Content-Disposition": attachment(node.name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",  # stored content never runs as our origin
        "Cache-Control": "private, no-cache",
    }
    if chunks is None:
        return Response(headers=headers)
    if request.headers.get("if-none-match", "").strip() == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return StreamingResponse(chunks, headers=headers)


async def transfer(request: Request) -> Response:
    """Move or copy (the last URL segment says which): {from, to_library?, to, overwrite?};
    201 when the target is new, 200 when it replaced one (which went to the trash)."""
    who = await principal(request)
    data = await body(request, "from", "to")
    library_id = library_id_of(request)
    target_library = field(data, "to_library", str) or library_id
    overwrite = bool(field(data, "overwrite", bool, False))
    documents = services(request).documents
    act = documents.move if request.url.path.endswith("/move") else documents.copy
    node, replaced = await act(
        who, library_id, data["from"], target_library, data["to"], overwrite=overwrite
    )
    return JSONResponse(node_json(node), status_code=200 if replaced else 201)


# --- versions and trash --------------------------------------------------------------------


async def list_versions(request: Request) -> Response:
    versions = await services(request).documents.versions(
        await principal(request), library_id_of(request), path_of(request)
    )
    return JSONResponse([plain(v) for v in versions])


async def restore_version(request: Request) -> Response:
    """{path, version}: that version's content becomes a new current version."""
    who = await principal(request)
    data = await body(request, "path")
    node = await services(request).documents.restore_version(
        who, library_id_of(request), data["path"], int_required(data, "version", 1)
    )
    return JSONResponse(node_json(node))


async def list_trash(request: Request) -> Response:
    items = await services(request).documents.trash(
        await principal(request), library_id_of(request)
    )
    return JSONResponse([plain(item) for item in items])


async def restore_trashed(request: Request) -> Response:
    node = await services(request).documents.restore(
        await principal(request), library_id_of(request), request.path_params["node_id"]
    )
    return JSONResponse(node_json(node))


async def purge_trashed(request: Request) -> Response:
    await services(request).documents.purge(
        await principal(request), library_id_of(request), request.path_params["node_id"]
    )
    return Response(status_code=204)


# --- locks (check-out / check-in) ----------------------------------------------------------


async def take_lock(request: Request) -> Response:
    """{path, depth?: "0"|"infinity", exclusive?, seconds?, owner?}: 201 with the lock."""
    who = await principal(request)
    data = await body(request, "path")
    lock = await services(request).locks.lock(
        who, library_id_of(request), data["path"], depth=field(data, "depth", str, "0") or "0",
        exclusive=bool(field(data, "exclusive", bool, True)),
        owner=field(data, "owner", str, "") or "", seconds=int_field(data, "seconds", -1),
    )  # fmt: skip
    return JSONResponse(plain(lock), status_code=201)


async def list_locks(request: Request) -> Response:
    """The live locks at, above (covering) or below ``?path=``."""
    locks = await services(request).locks.active(
        await principal(request), library_id_of(request), request.query_params.get("path", "")
    )
    return JSONResponse([plain(lock) for lock in locks])


async def refresh_lock(request: Request) -> Response:
    who = await principal(request)
    data = await body(request)
    lock = await services(request).locks.refresh(
        who, library_id_of(request), request.path_params["token"], int_field(data, "seconds", -1)
    )
    return JSONResponse(plain(lock))


async def unlock(request: Request) -> Response:
    """The owner releases a lock; someone with manage access may break it (audited)."""
    await services(request).locks.unlock(
        await principal(request), library_id_of(request), request.path_params["token"]
    )
    return Response(status_code=204)


# --- metadata and labels -------------------------------------------------------------------


async def get_metadata(request: Request) -> Response:
    meta = await services(request).metadata.get(
        await principal(request), library_id_of(request), path_of(request)
    )
    return JSONResponse(plain(meta))


async def patch_metadata(request: Request) -> Response:
    """{title?, description?, tags?, label?, properties?: {name: value|null}}: absent keys stay
    as they are; null clears."""
    who, svc = await principal(request), services(request)
    data = await body(request)
    library_id, path = library_id_of(request), path_of(request)
    changes: dict[str, Any] = {k: field(data, k, str) for k in ("title", "description", "label")}
    changes = {k: v for k, v in changes.items() if k in data}
    if "tags" in data:
        tags = field(data, "tags", list)
        if tags is not None and not all(isinstance(t, str) for t in tags):
            raise Invalid("tags must be a list of strings")
        changes["tags"] = tags
    props = field(data, "properties", dict) or {}
    if not all(isinstance(v, str | None) for v in props.values()):
        raise Invalid("property values are strings (or null to remove)")
    if props:
        await svc.metadata.set_properties(who, library_id, path, props)
    if changes:
        meta = await svc.metadata.describe(who, library_id, path, **changes)
    else:
        meta = await svc.metadata.get(who, library_id, path)
    return JSONResponse(plain(meta))


async def list_labels(request: Request) -> Response:
    labels = await services(request).labels.all(await principal(request))
    return JSONResponse([plain(label) for label in labels])


async def define_label(request: Request) -> Response:
    """{rank, managed_download_only?, share_group?} (tenant administrators)."""
    who = await principal(request)
    data = await body(request)
    label = await services(request).labels.define(
        who, who.tenant_id or "", request.path_params["name"],
        int_required(data, "rank", -INT64_MAX - 1),
        managed_download_only=bool(field(data, "managed_download_only", bool, False)),
        share_group=field(data, "share_group", str),
    )  # fmt: skip
    return JSONResponse(plain(label))


async def remove_label(request: Request) -> Response:
    who = await principal(request)
    await services(request).labels.remove(who, who.tenant_id or "", request.path_params["name"])
    return Response(status_code=204)


# --- grants and holds ----------------------------------------------------------------------


async def add_grant(request: Request) -> Response:
    """{path, subject_kind: user|group|tenant, subject?, level: read|write|manage}."""
    who = await principal(request)
    data = await body(request, "subject_kind", "level")
    path = field(data, "path", str, "") or ""
    grant_id = await services(request).libraries.grant(
        who, who.tenant_id or "", library_id_of(request), path, data["subject_kind"],
        field(data, "subject", str), data["level"],
    )  # fmt: skip
    return JSONResponse({"id": grant_id}, status_code=201)


async def set_hold(request: Request) -> Response:
    """{path, legal_hold?, retain_until?: ISO 8601 with a time zone}; returns the node."""
    who, svc = await principal(request), services(request)
    data = await body(request, "path")
    legal_hold = field(data, "legal_hold", bool)
    until_text = field(data, "retain_until", str)
    until = None
    if until_text is not None:
        try:
            until = datetime.fromisoformat(until_text)
        except ValueError:
            raise Invalid("retain_until must be an ISO 8601 date and time") from None
        if until.tzinfo is None:
            raise Invalid("retain_until needs a time zone")
        until = until.astimezone(UTC)
    if legal_hold is None and until is None:
        raise Invalid("set legal_hold or retain_until")
    library_id = library_id_of(request)
    await svc.libraries.hold(
        who, who.tenant_id or "", library_id, data["path"], legal_hold=legal_hold,
        retain_until=until,
    )  # fmt: skip
    return JSONResponse(node_json(await svc.documents.stat(who, library_id, data["path"])))


# --- search --------------------------------------------------------------------------------


async def search(request: Request) -> Response:
    """?q=words[&library=id][&limit=n]: documents matching every word (the last as a prefix),
    among those the caller may read; snippets mark matches with <b>...</b>."""
    who, svc = await principal(request), services(request)
    text = request.query_params.get("q", "").strip()
    if not text:
        raise Invalid("q: what to search for")
    hits = await svc.search.query(
        who, text, library_id=request.query_params.get("library") or None,
        limit=min(int_param(request, "limit", 20, 1), 100),
        managed=managed_client(request),
    )  # fmt: skip
    return JSONResponse({"hits": [
        {"library_id": h.library_id, "library": h.library_name, "path": h.path, "name": h.name,
         "snippet": snippet_html(h.snippet), "score": h.score}
        for h in hits
    ]})  # fmt: skip


LIB = "/api/libraries/{library_id}"

routes = [
    Route("/api/openapi.json", openapi.openapi_json),
    Route("/api/libraries", list_libraries),
    Route("/api/libraries", create_library, methods=["POST"]),
    Route("/api/libraries/personal", personal_library),
    Route(LIB, get_library),
    Route(LIB + "/nodes/{path:path}", get_node),
    Route(LIB + "/nodes/{path:path}", delete_node, methods=["DELETE"]),
    Route(LIB + "/content/{path:path}", get_content),
    Route(LIB + "/content/{path:path}", put_content, methods=["PUT"]),
    Route(LIB + "/folders/{path:path}", make_folder, methods=["POST"]),
    Route(LIB + "/move", transfer, methods=["POST"], name="move"),
    Route(LIB + "/copy", transfer, methods=["POST"], name="copy"),
    Route(LIB + "/versions/{path:path}", list_versions),
    Route(LIB + "/restore-version", restore_version, methods=["POST"]),
    Route(LIB + "/trash", list_trash),
    Route(LIB + "/trash/{node_id}/restore", restore_trashed, methods=["POST"]),
    Route(LIB + "/trash/{node_id}", purge_trashed, methods=["DELETE"]),
    Route(LIB + "/locks", list_locks),
    Route(LIB + "/locks", take_lock, methods=["POST"]),
    Route(LIB + "/locks/{token}", unlock, methods=["DELETE"]),
    Route(LIB + "/locks/{token}/refresh", refresh_lock, methods=["POST"]),
    Route(LIB + "/metadata/{path:path}", get_metadata),
    Route(LIB + "/metadata/{path:path}", patch_metadata, methods=["PATCH"]),
    Route(LIB + "/grants", add_grant, methods=["POST"]),
    Route(LIB + "/holds", set_hold, methods=["POST"]),
    Route("/api/labels", list_labels),
    Route("/api/labels/{name}", define_label, methods=["PUT"]),
    Route("/api/labels/{name}", remove_label, methods=["DELETE"]),
    Route("/api/search", search),
]
