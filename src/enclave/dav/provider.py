"""Our wsgidav provider: maps DAV paths onto libraries and the nodes inside them.

/                              the two indexes
/files/                        personal libraries the principal can reach (by address)
/files/{owner email}/a/b       a folder or document in a personal library
/libraries/                    shared libraries the principal can reach (by name)
/libraries/{name}/a/b          a folder or document in a shared library

``locate`` maps the resources' ref URLs (``/{tenant}/files/{email}/a/b``), which wsgidav's lock
and property managers are keyed by, back to a library and a path inside it.

One request asks about a resource several times (wsgidav resolves the target, then its
parent, then asks for their locks, then for the content or the members): the first question
is one core call (``Browser.walk``) that answers for every folder above the path too, and
fetches what the method will want next (a GET's content, a PROPFIND's members, a write's
locks). The answers are kept for the rest of the request, and dropped by any change
(``changed``). Which library a name means is remembered for ``LIBRARY_TTL_SECONDS`` per
principal: only the library's id is taken from it, and every core call checks access again.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from defusedxml import ElementTree
from wsgidav.dav_error import HTTP_NOT_FOUND, DAVError
from wsgidav.dav_provider import DAVProvider

from enclave.core.documents.browse import Browser, Walk
from enclave.core.documents.model import Library, Node
from enclave.core.principal import Principal
from enclave.dav import locks, properties
from enclave.dav.bridge import Bridge
from enclave.dav.nodes import member_of
from enclave.dav.resources import FILES, LIBRARIES, Index, principal_of, tenant_segment
from enclave.services import Services

LIBRARY_CACHE = "enclave.dav.libraries"  # environ key: libraries looked up in this request
WALKED = "enclave.dav.walked"  # environ key: {(library id, path): Found}
LIBRARY_TTL_SECONDS = 10.0
LIBRARY_CACHE_MAX = 10_000
WRITES = frozenset({"PUT", "DELETE", "MKCOL", "MOVE", "COPY", "PROPPATCH", "LOCK", "UNLOCK"})


@dataclass
class Found:
    """What this request knows about one path: the node (None: not there, or not visible),
    and what the walk fetched for the method (each handed out once)."""

    node: Node | None
    members: list[Node] | None = None
    content: Any = None  # the document's Content


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


def _wants_other(environ: dict[str, Any]) -> bool:
    """Whether a PROPFIND may want dead properties or locks: all of them (no body, allprop,
    propname), or a property not in the ``DAV:`` namespace, or DAV:lockdiscovery. The door
    has checked the body and left it in memory."""
    stream = environ.get("wsgi.input")
    body = stream.getvalue() if isinstance(stream, io.BytesIO) else b""
    if not body.strip() or b"allprop" in body or b"propname" in body:
        return True
    if b"lockdiscovery" in body:
        return True
    try:
        tree = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return True
    return any(not element.tag.startswith("{DAV:}") for element in tree.iter())


class EnclaveProvider(DAVProvider):  # type: ignore[misc]
    def __init__(self, services: Services, bridge: Bridge) -> None:
        super().__init__()
        self.services = services
        self.bridge = bridge
        self.browser = Browser(services.db, services.content)
        self._libraries: dict[tuple[Principal, str, str], tuple[Library, float]] = {}

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
        """A library by the name its index lists it under (cached for the request, and for
        ``LIBRARY_TTL_SECONDS`` per principal)."""
        cache: dict[tuple[str, str], Library] = environ.setdefault(LIBRARY_CACHE, {})
        key = (kind, name)
        if key not in cache:
            cache[key] = self._library(principal_of(environ), kind, name)
        return cache[key]

    def _library(self, principal: Principal, kind: str, name: str) -> Library:
        key, now = (principal, kind, name), time.monotonic()
        known = self._libraries.get(key)
        if known is not None and known[1] > now:
            return known[0]
        libraries = self.services.libraries
        found: Library = self.bridge.call(
            libraries.personal(principal, name)
            if kind == FILES
            else libraries.shared(principal, name)
        )
        if len(self._libraries) >= LIBRARY_CACHE_MAX:
            self._libraries = {k: v for k, v in self._libraries.items() if v[1] > now}
            if len(self._libraries) >= LIBRARY_CACHE_MAX:
                self._libraries = {}
        self._libraries[key] = (found, now + LIBRARY_TTL_SECONDS)
        return found

    def changed(self, environ: dict[str, Any]) -> None:
        """Something changed in this request: what it learnt about nodes and locks is old."""
        environ.pop(WALKED, None)
        environ.pop(properties.CACHE, None)
        locks.forget(environ)

    def found(self, environ: dict[str, Any], library: Library, inner: str) -> Found:
        """What this request knows about ``inner`` in the library: asked of the core the
        first time (with every folder above it, and what the method will want of it)."""
        walked: dict[tuple[str, str], Found] = environ.setdefault(WALKED, {})
        parts = self.split(inner)
        key = (library.id, "/".join(parts))
        if key in walked:
            return walked[key]
        method = environ.get("REQUEST_METHOD", "")
        target = self.split(environ.get("PATH_INFO", ""))[2:] == parts
        listing = target and method == "PROPFIND"
        walk: Walk = self.bridge.call(
            self.browser.walk(
                principal_of(environ), library.id, key[1],
                members=listing and environ.get("HTTP_DEPTH") == "1",
                content=target and method == "GET",
                managed=self.services.settings.http.is_managed(environ.get("REMOTE_ADDR")),
                locks=method in WRITES or (listing and _wants_other(environ)),
                properties=listing and _wants_other(environ),
            )
        )  # fmt: skip
        for depth, node in enumerate(walk.nodes):
            walked.setdefault((library.id, "/".join(parts[:depth])), Found(node))
        here = walked[key] = Found(walk.node, walk.members, walk.content)
        if walk.locks is not None:
            locks.prime(environ, library, walk.locks)
        if walk.properties is not None and walk.node is not None:
            nodes = [walk.node, *(walk.members or [])]
            properties.prime(environ, library, nodes, walk.properties)
        return here

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
        return self.found(environ, library, inner).node

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
        found = self.found(environ, library, "/".join(parts[2:]))
        if found.node is None:
            return None
        member = member_of("/" + "/".join(parts), environ, library, found.node)
        member.prepared(found)
        return member
