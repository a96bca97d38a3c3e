"""Rendering and parsing shared by the documents API (``api_documents``): core values as JSON,
typed JSON fields, entity tags, and whether a client counts as managed."""

from __future__ import annotations

import html
from dataclasses import asdict
from datetime import datetime
from typing import Any, TypeVar

from starlette.requests import Request

from enclave.core.documents.access import Level
from enclave.core.documents.model import Library, Node
from enclave.core.errors import Invalid
from enclave.core.search.snippets import MARK_END, MARK_START
from enclave.web.common import services, source

T = TypeVar("T")


def plain(value: Any) -> dict[str, Any]:
    """A core value (a frozen dataclass) as JSON: dates in ISO 8601, access levels by name."""

    def convert(item: Any) -> Any:
        if isinstance(item, datetime):
            return item.isoformat()
        if isinstance(item, Level):
            return item.name.lower()
        return item

    return {key: convert(item) for key, item in asdict(value).items()}


def node_json(node: Node) -> dict[str, Any]:
    # label: core's Node does not carry it yet (the metadata endpoint has it)
    return plain(node) | {"label": getattr(node, "label", None)}


def library_json(library: Library) -> dict[str, Any]:
    return plain(library) | {"personal": library.personal}


# --- parsing -------------------------------------------------------------------------------


def field(data: dict[str, Any], name: str, kind: type[T], default: T | None = None) -> T | None:
    """An optional field of the given JSON type (null allowed; booleans are not integers)."""
    value = data.get(name, default)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Invalid(f"{name} must be a {kind.__name__}")
    return value


def required(data: dict[str, Any], name: str, kind: type[T]) -> T:
    value = field(data, name, kind)
    if value is None:
        raise Invalid(f"{name} is required")
    return value


def library_id_of(request: Request) -> str:
    return str(request.path_params["library_id"])


def path_of(request: Request) -> str:
    return str(request.path_params.get("path", ""))


def etag_of(node: Node) -> str:
    return f'"{node.etag}"'


def entity_tag(header: str | None) -> str | None:
    """The one entity tag of an If-Match header, unquoted ("*" stays "*")."""
    if header is None:
        return None
    value = header.strip()
    if "," in value:
        raise Invalid("If-Match takes a single entity tag")
    return value.removeprefix("W/").strip('"')


def managed_client(request: Request) -> bool:
    """Whether the client is on one of ``[http] managed_networks`` (labels may restrict
    downloads to such clients)."""
    return services(request).settings.http.is_managed(source(request))


def snippet_html(snippet: str) -> str:
    """A search snippet as HTML: the text escaped, the index's match markers made <b>."""
    escaped = html.escape(snippet)
    return escaped.replace(MARK_START, "<b>").replace(MARK_END, "</b>")
