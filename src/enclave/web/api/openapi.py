"""``GET /api/openapi.json``: an OpenAPI 3.1 description of the JSON API, built from the app's
routes and the operation table below, so a path is documented exactly when it is routed (a
route without an entry here is left out; the tests insist the documents routes all have one).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

import enclave

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: Iterable[str] = (), **props: Schema) -> Schema:
    return {"type": "object", "required": list(required), "properties": props}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
LEVEL: Schema = {"type": "string", "enum": ["none", "read", "write", "manage"]}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


SCHEMAS: dict[str, Schema] = {
    "Error": obj(["error", "message"], error=STR, message=STR),
    "Library": obj(
        ["id", "name", "personal", "level"],
        id=STR,
        name=STR,
        owner_id=nullable(STR),
        personal=BOOL,
        quota_bytes=nullable(INT),
        keep_versions=nullable(INT),
        keep_days=nullable(INT),
        level=LEVEL,
    ),
    "LibraryCreate": obj(
        ["name"],
        name=STR,
        quota_bytes=nullable(INT),
        keep_versions=nullable(INT),
        keep_days=nullable(INT),
    ),
    "Node": obj(
        ["id", "library_id", "name", "path", "folder", "size", "version", "etag", "level"],
        id=STR,
        library_id=STR,
        name=STR,
        path=STR,
        folder=BOOL,
        size=INT,
        version=INT,
        content_type=nullable(STR),
        etag=STR,
        created_at=TIME,
        modified_at=TIME,
        level=LEVEL,
        label=nullable(STR),
        legal_hold=BOOL,
        retain_until=nullable(TIME),
        children={"type": "array", "items": ref("Node"), "description": "folders only"},
    ),
    "Version": obj(
        ["number", "size", "current"],
        number=INT,
        size=INT,
        content_type=nullable(STR),
        created_at=TIME,
        created_by=nullable(STR),
        current=BOOL,
    ),
    "Trashed": obj(
        ["id", "name", "folder", "size"],
        id=STR,
        name=STR,
        folder=BOOL,
        size=INT,
        deleted_at=TIME,
        deleted_by=nullable(STR),
    ),
    "Transfer": obj(["from", "to"], **{"from": STR}, to=STR, to_library=STR, overwrite=BOOL),
    "RestoreVersion": obj(["path", "version"], path=STR, version=INT),
    "Lock": obj(
        ["token", "path", "depth", "exclusive", "expires_at"],
        token=STR,
        library_id=STR,
        path=STR,
        depth={"type": "string", "enum": ["0", "infinity"]},
        exclusive=BOOL,
        owner=STR,
        principal_id=STR,
        principal_name=STR,
        timeout=INT,
        expires_at=TIME,
    ),
    "LockRequest": obj(
        ["path"],
        path=STR,
        depth={"type": "string", "enum": ["0", "infinity"]},
        exclusive=BOOL,
        seconds=nullable(INT),
        owner=STR,
    ),
    "LockRefresh": obj(seconds=nullable(INT)),
    "Metadata": obj(
        ["tags", "properties"],
        title=nullable(STR),
        description=nullable(STR),
        tags={"type": "array", "items": STR},
        label=nullable(STR),
        properties={"type": "object", "additionalProperties": STR},
    ),
    "MetadataPatch": obj(
        title=nullable(STR),
        description=nullable(STR),
        tags=nullable({"type": "array", "items": STR}),
        label=nullable(STR),
        properties={"type": "object", "additionalProperties": nullable(STR)},
    ),
    "Label": obj(
        ["name", "rank", "managed_download_only"],
        name=STR,
        rank=INT,
        managed_download_only=BOOL,
        share_group=nullable(STR),
    ),
    "LabelDefine": obj(["rank"], rank=INT, managed_download_only=BOOL, share_group=nullable(STR)),
    "GrantRequest": obj(
        ["subject_kind", "level"],
        path=STR,
        subject_kind={"type": "string", "enum": ["user", "group", "tenant"]},
        subject=nullable(STR),
        level={"type": "string", "enum": ["read", "write", "manage"]},
    ),
    "Grant": obj(["id"], id=STR),
    "SearchHits": obj(
        ["hits"],
        hits={
            "type": "array",
            "items": obj(
                ["library_id", "library", "path", "name", "snippet", "score"],
                library_id=STR,
                library=STR,
                path=STR,
                name=STR,
                snippet=STR,
                score={"type": "number"},
            ),
        },
    ),
    "HoldRequest": obj(["path"], path=STR, legal_hold=BOOL, retain_until=TIME),
    "Login": obj(["email", "password"], email=STR, password=STR, code=STR),
    "SignedIn": obj(["token", "expires_at"], token=STR, expires_at=TIME),
}

BINARY: Schema = {"type": "string", "format": "binary"}


def _json(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def op(
    summary: str,
    status: int = 200,
    out: str | None = None,
    *,
    many: bool = False,
    body: str | None = None,
    query: dict[str, Schema] | None = None,
    binary_in: bool = False,
    binary_out: bool = False,
    headers: Iterable[str] = (),
    public: bool = False,
) -> dict[str, Any]:
    """One operation: its summary, JSON body (a schema name), reply and query parameters."""
    reply: dict[str, Any] = {"description": summary}
    if out is not None:
        reply["content"] = _json({"type": "array", "items": ref(out)} if many else ref(out))
    if binary_out:
        reply["content"] = {"*/*": {"schema": BINARY}}
    if headers:
        reply["headers"] = {name: {"schema": STR} for name in headers}
    found: dict[str, Any] = {
        "summary": summary,
        "responses": {
            str(status): reply,
            "default": {"description": "an error", "content": _json(ref("Error"))},
        },
    }
    if body is not None:
        found["requestBody"] = {"required": True, "content": _json(ref(body))}
    if binary_in:
        found["requestBody"] = {"required": True, "content": {"*/*": {"schema": BINARY}}}
    if public:
        found["security"] = []
    if query:
        found["parameters"] = [
            {"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in query.items()
        ]
    return found


LIB = "/api/libraries/{library_id}"

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/login", "POST"): op(
        "Sign in (sets the session cookie)", out="SignedIn", body="Login", public=True
    ),
    ("/api/logout", "POST"): op("Sign out"),
    ("/api/openapi.json", "GET"): op("This description", public=True),
    ("/api/libraries", "GET"): op("Libraries the caller can reach", out="Library", many=True),
    ("/api/libraries", "POST"): op(
        "Create a shared library (tenant administrators)", 201, "Library", body="LibraryCreate"
    ),
    ("/api/libraries/personal", "GET"): op("The caller's personal library", out="Library"),
    (LIB, "GET"): op("A library", out="Library"),
    (LIB + "/nodes/{path:path}", "GET"): op(
        "A document, or a folder with its children", out="Node"
    ),
    (LIB + "/nodes/{path:path}", "DELETE"): op("Move to the trash", 204),
    (LIB + "/content/{path:path}", "GET"): op(
        "Download (HEAD too)",
        binary_out=True,
        query={"version": INT},
        headers=("ETag", "Content-Length", "Content-Type"),
    ),
    (LIB + "/content/{path:path}", "PUT"): op(
        "Upload (201 new document, 200 new version; If-Match, If-None-Match: *)",
        201,
        "Node",
        binary_in=True,
        headers=("ETag",),
    ),
    (LIB + "/folders/{path:path}", "POST"): op("Create a folder", 201, "Node"),
    (LIB + "/move", "POST"): op("Move or rename (200 replaced)", 201, "Node", body="Transfer"),
    (LIB + "/copy", "POST"): op("Copy (200 replaced)", 201, "Node", body="Transfer"),
    (LIB + "/versions/{path:path}", "GET"): op("A document's versions", out="Version", many=True),
    (LIB + "/restore-version", "POST"): op(
        "Make an old version current", out="Node", body="RestoreVersion"
    ),
    (LIB + "/trash", "GET"): op("The library's trash", out="Trashed", many=True),
    (LIB + "/trash/{node_id}/restore", "POST"): op("Restore from the trash", out="Node"),
    (LIB + "/trash/{node_id}", "DELETE"): op("Purge for good (manage access)", 204),
    (LIB + "/locks", "GET"): op(
        "Live locks at, above or below a path", out="Lock", many=True, query={"path": STR}
    ),
    (LIB + "/locks", "POST"): op("Lock (check out)", 201, "Lock", body="LockRequest"),
    (LIB + "/locks/{token}", "DELETE"): op("Unlock (check in) or break a lock", 204),
    (LIB + "/locks/{token}/refresh", "POST"): op("Extend a lock", out="Lock", body="LockRefresh"),
    (LIB + "/metadata/{path:path}", "GET"): op("Title, tags, label, properties", out="Metadata"),
    (LIB + "/metadata/{path:path}", "PATCH"): op(
        "Change metadata (absent keys unchanged)", out="Metadata", body="MetadataPatch"
    ),
    (LIB + "/grants", "POST"): op("Grant access", 201, "Grant", body="GrantRequest"),
    (LIB + "/holds", "POST"): op("Legal hold or retention date", out="Node", body="HoldRequest"),
    ("/api/labels", "GET"): op("Classification labels", out="Label", many=True),
    ("/api/labels/{name}", "PUT"): op(
        "Define a label (tenant administrators)", out="Label", body="LabelDefine"
    ),
    ("/api/labels/{name}", "DELETE"): op("Remove an unused label", 204),
    ("/api/search", "GET"): op(
        "Full-text search over names, metadata and text the caller may read",
        out="SearchHits",
        query={"q": STR, "library": STR, "limit": INT},
    ),
}

PARAMETER_NOTES = {
    "path": "path from the library root, percent-encoded, slashes between names; empty for "
    "the root",
}


def openapi_path(route_path: str) -> str:
    """Starlette's ``{name:convertor}`` as OpenAPI's ``{name}``."""
    out, rest = "", route_path
    while "{" in rest:
        head, _, tail = rest.partition("{")
        name, _, rest = tail.partition("}")
        out += head + "{" + name.split(":")[0] + "}"
    return out + rest


def document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        for method in sorted(route.methods or ()):
            spec = OPERATIONS.get((route.path, method))
            if spec is None:
                continue
            params = [
                {"name": name, "in": "path", "required": True, "schema": STR}
                | ({"description": PARAMETER_NOTES[name]} if name in PARAMETER_NOTES else {})
                for name in route.param_convertors
            ]
            entry = dict(spec)
            if params:
                entry["parameters"] = params + list(spec.get("parameters", []))
            entry["operationId"] = route.name
            paths.setdefault(openapi_path(route.path), {})[method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "Enclave", "version": getattr(enclave, "__version__", "0")},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "enclave_session"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }


async def openapi_json(request: Request) -> Response:
    return JSONResponse(document(request.app.routes))
