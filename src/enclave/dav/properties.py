"""wsgidav's property manager on the core ``Metadata`` service: dead properties are stored with
the node (keyed by Clark name ``{namespace}local``, the value the XML element the client sent),
so they survive a restart, go to the trash and back with it, stay with a moved node and are
duplicated by a copy; the managers' copy, move and remove calls are therefore no-ops here.

PROPPATCH stays all or nothing: wsgidav tries every change in a dry run, then makes them one
by one. The dry runs gather the changes (per resource, in the request's environ); the first
real one commits them all in one core call (one transaction) and the others only report how
that went.

A PROPFIND for all properties of a folder's members would ask for each member's properties
in a transaction of its own. ``listed`` notes the folder whose members a listing returned
instead, and the first of them asked for fetches them all in one core call
(``Metadata.of_members``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wsgidav.dav_error import (
    HTTP_BAD_REQUEST,
    HTTP_FORBIDDEN,
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_NOT_FOUND,
    DAVError,
)

from enclave.core.documents.metadata import MAX_PROPERTY_BYTES, MAX_PROPERTY_NAME
from enclave.core.documents.model import Library, Node
from enclave.dav import stored_xml
from enclave.dav.resources import current_environ, principal_of, tokens_of

if TYPE_CHECKING:
    from enclave.dav.provider import EnclaveProvider, Located

CACHE = "enclave.dav.props"  # environ key: {(library id, path): {name: value}}
PENDING = "enclave.dav.proppatch"  # environ key: {(library id, path): Batch}
LISTED = "enclave.dav.props.listed"  # environ key: {(library id, path): (folder path, node id)}

Key = tuple[str, str]


@dataclass
class Batch:
    """The changes one PROPPATCH makes to one resource (None removes)."""

    changes: dict[str, str | None] = field(default_factory=dict)
    done: bool = False
    error: DAVError | None = None


def _checked(name: str, value: str | None) -> None:
    """What the core would refuse, refused per property in the dry run (so the reply says
    which property failed): 507 for a value the server will not record (RFC 4918 9.2)."""
    if not name or len(name) > MAX_PROPERTY_NAME:
        raise DAVError(
            HTTP_BAD_REQUEST, context_info=f"property names are 1-{MAX_PROPERTY_NAME} chars"
        )
    if value is not None and len(value.encode("utf-8")) > MAX_PROPERTY_BYTES:
        raise DAVError(
            HTTP_INSUFFICIENT_STORAGE, context_info=f"values are at most {MAX_PROPERTY_BYTES}"
        )


def prime(
    environ: dict[str, Any], library: Library, nodes: list[Node], found: dict[str, dict[str, str]]
) -> None:
    """The dead properties of these nodes, found by the walk that found them."""
    cache: dict[Key, dict[str, str]] = environ.setdefault(CACHE, {})
    for node in nodes:
        if node.id in found:
            cache[(library.id, node.path)] = found[node.id]


def listed(environ: dict[str, Any], library: Library, folder: str, nodes: list[Node]) -> None:
    """Listing the folder at ``folder`` returned these nodes: should any one's properties be
    wanted, fetch all of theirs at once."""
    hints: dict[Key, tuple[str, str]] = environ.setdefault(LISTED, {})
    for node in nodes:
        hints[(library.id, node.path)] = (folder, node.id)


class CorePropertyManager:
    """The interface of ``wsgidav.prop_man.property_manager.PropertyManager``."""

    def __init__(self, provider: EnclaveProvider) -> None:
        self.provider = provider

    def __repr__(self) -> str:
        return "CorePropertyManager"

    def open(self) -> None:
        """Nothing to open: the core's database is."""

    def close(self) -> None:
        """Nothing to close."""

    def _check(self, msg: str = "") -> bool:
        return True

    # --- reading -------------------------------------------------------------------------

    def _locate(
        self, environ: dict[str, Any] | None, url: str
    ) -> tuple[dict[str, Any], Located | None]:
        environ = environ if environ is not None else current_environ()
        return environ, self.provider.locate(environ, url)

    def _properties(self, environ: dict[str, Any], located: Located) -> dict[str, str]:
        cache: dict[Key, dict[str, str]] = environ.setdefault(CACHE, {})
        key = (located.library.id, located.inner)
        hints: dict[Key, tuple[str, str]] = environ.get(LISTED, {})
        metadata = self.provider.services.metadata
        if key not in cache and key in hints:
            folder = hints[key][0]
            fetched = self.provider.bridge.call(
                metadata.of_members(principal_of(environ), located.library.id, folder)
            )
            for k, (parent, node_id) in list(hints.items()):
                if parent == folder and k[0] == located.library.id:
                    cache.setdefault(k, fetched.get(node_id, {}))
                    del hints[k]
        if key not in cache:
            try:
                found = self.provider.bridge.call(
                    metadata.get(principal_of(environ), located.library.id, located.inner)
                )
                cache[key] = dict(found.properties)
            except DAVError as exc:
                if exc.value != HTTP_NOT_FOUND:
                    raise
                cache[key] = {}
        return cache[key]

    def get_properties(self, norm_url: str, environ: dict[str, Any] | None = None) -> list[str]:
        """The names to list; one that cannot name an XML element (planted below the front
        ends) is left out, or the whole reply could not be built."""
        environ, located = self._locate(environ, norm_url)
        if located is None:
            return []
        names = list(self._properties(environ, located))
        kept = [name for name in names if stored_xml.renderable(name)]
        if len(kept) < len(names):
            stored_xml.log.warning("stored property names that are not XML names left out")
        return kept

    def get_property(
        self, norm_url: str, name: str, environ: dict[str, Any] | None = None
    ) -> str | None:
        environ, located = self._locate(environ, norm_url)
        return None if located is None else self._properties(environ, located).get(name)

    # --- changing ------------------------------------------------------------------------

    def write_property(
        self, norm_url: str, name: str, property_value: bytes | str, dry_run: bool = False,
        environ: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        value = property_value
        text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        self._change(environ, norm_url, name, text, dry_run)

    def remove_property(
        self, norm_url: str, name: str, dry_run: bool = False,
        environ: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """Removing a property that is not there is no error."""
        self._change(environ, norm_url, name, None, dry_run)

    def _change(
        self, environ: dict[str, Any] | None, url: str, name: str, value: str | None,
        dry_run: bool,
    ) -> None:  # fmt: skip
        environ, located = self._locate(environ, url)
        if located is None:
            raise DAVError(HTTP_FORBIDDEN, context_info="no properties here")
        key = (located.library.id, located.inner)
        batches: dict[Key, Batch] = environ.setdefault(PENDING, {})
        if dry_run:
            _checked(name, value)
            batches.setdefault(key, Batch()).changes[name] = value
            return
        batch = batches.get(key)
        if batch is None or name not in batch.changes:  # a change without a dry run first
            self._commit(environ, located, {name: value})
            return
        if not batch.done:
            batch.done = True
            try:
                self._commit(environ, located, batch.changes)
            except DAVError as exc:
                batch.error = exc
        if batch.error is not None:
            raise batch.error

    def _commit(
        self, environ: dict[str, Any], located: Located, changes: dict[str, str | None]
    ) -> None:
        metadata = self.provider.services.metadata
        environ.get(CACHE, {}).pop((located.library.id, located.inner), None)
        self.provider.bridge.call(
            metadata.set_properties(
                principal_of(environ), located.library.id, located.inner, dict(changes),
                tokens=tokens_of(environ),
            )
        )  # fmt: skip

    def remove_properties(self, norm_url: str, environ: dict[str, Any] | None = None) -> None:
        """No-op: a deleted node keeps its properties in the trash (a restore brings them
        back), and the core removes them when it purges the node."""

    def copy_properties(
        self, src_url: str, dest_url: str, environ: dict[str, Any] | None = None
    ) -> None:
        """No-op: the core's copy duplicates the properties with the nodes."""

    def move_properties(
        self, src_url: str, dest_url: str, with_children: bool,
        environ: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """No-op: a moved node keeps its id, and its properties with it."""
