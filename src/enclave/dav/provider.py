"""Our wsgidav provider: maps DAV paths onto libraries and the nodes inside them.

/                              the two indexes
/files/                        personal libraries the principal can reach (by address)
/files/{owner email}/a/b       a folder or document in a personal library
/libraries/                    shared libraries the principal can reach (by name)
/libraries/{name}/a/b          a folder or document in a shared library

``locate`` maps the resources' ref URLs (``/{tenant}/files/{email}/a/b``), which wsgidav's lock
and property managers are keyed by, back to a library and a path inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from wsgidav.dav_error import HTTP_NOT_FOUND, DAVError
from wsgidav.dav_provider import DAVProvider

from enclave.core.documents.model import Library, Node
from enclave.dav.bridge import Bridge
from enclave.dav.nodes import member_of
from enclave.dav.resources import FILES, LIBRARIES, Index, principal_of, tenant_segment
from enclave.services import Services

LIBRARY_CACHE = "enclave.dav.libraries"  # environ key: libraries looked up in this request


@dataclass(frozen=True)
class Located:
    """A ref URL resolved: the library, the path inside it, and the library's own ref URL."""

    library: Library
    parts: list[str]
    base: str  # quoted, no trailing slash: /{tenant}/files/{email}

    @property
    def inner(self) -> str:
        return "/".join(self.parts)

    def url(self, path: str) -> str:
        """The ref URL of ``path`` (from the library root) in this library."""
        inner = "/".join(part for part in path.split("/") if part)
        return self.base + ("/" + quote(inner) if inner else "")


class EnclaveProvider(DAVProvider):  # type: ignore[misc]
    def __init__(self, services: Services, bridge: Bridge) -> None:
        super().__init__()
        self.services = services
        self.bridge = bridge

    def __repr__(self) -> str:
        return "EnclaveProvider"

    def is_readonly(self) -> bool:
        return False

    @staticmethod
    def split(path: str) -> list[str]:
        return [part for part in path.split("/") if part]

    def ref_url_to_path(self, ref_url: str) -> str:
        """Inverse of the resources' ``get_ref_url``: drop the tenant segment."""
        rest = unquote(ref_url).lstrip("/").partition("/")[2]
        return "/" + rest

    def library(self, environ: dict[str, Any], kind: str, name: str) -> Library:
        """A library by the name its index lists it under (cached for the request)."""
        cache: dict[tuple[str, str], Library] = environ.setdefault(LIBRARY_CACHE, {})
        key = (kind, name)
        if key not in cache:
            principal = principal_of(environ)
            libraries = self.services.libraries
            found: Library = self.bridge.call(
                libraries.personal(principal, name)
                if kind == FILES
                else libraries.shared(principal, name)
            )
            cache[key] = found
        return cache[key]

    def locate(self, environ: dict[str, Any], url: str) -> Located | None:
        """The library and path a ref URL names; None for the indexes, another tenant's
        URLs and libraries the principal cannot reach."""
        parts = self.split(unquote(url))
        if len(parts) < 3 or parts[0] != tenant_segment(environ):
            return None
        if parts[1] not in (FILES, LIBRARIES):
            return None
        try:
            library = self.library(environ, parts[1], parts[2])
        except DAVError as exc:
            if exc.value == HTTP_NOT_FOUND:
                return None
            raise
        return Located(library, parts[3:], quote("/" + "/".join(parts[:3])))

    def find(self, environ: dict[str, Any], library: Library, inner: str) -> Node | None:
        """The node at ``inner`` in the library, None if there is none (or none visible)."""
        try:
            node: Node = self.bridge.call(
                self.services.documents.stat(principal_of(environ), library.id, inner)
            )
        except DAVError as exc:
            if exc.value == HTTP_NOT_FOUND:
                return None
            raise
        return node

    def get_resource_inst(self, path: str | None, environ: dict[str, Any]) -> Any:
        self._count_get_resource_inst += 1
        if path is None:  # wsgidav asks for the parent of the root this way (DELETE /dav/)
            return None
        parts = self.split(path)
        if not parts:
            return Index("/", environ, None)
        kind = parts[0]
        if kind not in (FILES, LIBRARIES):
            return None
        if len(parts) == 1:
            return Index(f"/{kind}", environ, kind)
        try:
            library = self.library(environ, kind, parts[1])
        except DAVError as exc:
            if exc.value == HTTP_NOT_FOUND:
                return None
            raise
        inner = "/".join(parts[2:])
        node = self.find(environ, library, inner)
        if node is None:
            return None
        return member_of("/" + "/".join(parts), environ, library, node)
