"""The folders and documents of a library as WebDAV resources: one core call each, through
the bridge; content streams both ways (``bridge.Download``, ``bridge.Upload``). Every write
passes the lock tokens the client presented (``tokens_of``), so the core's lock check agrees
with wsgidav's."""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from wsgidav.dav_error import HTTP_FORBIDDEN, HTTP_NOT_FOUND, DAVError
from wsgidav.dav_provider import DAVCollection, DAVNonCollection

from enclave.core.content import Content
from enclave.core.documents.documents import Documents
from enclave.core.documents.model import Library, Node
from enclave.dav import properties, quota
from enclave.dav.bridge import Download, Upload
from enclave.dav.resources import CREATED, FILES, LIBRARIES, Resource, tokens_of

if TYPE_CHECKING:
    from enclave.dav.provider import Found

T = TypeVar("T")


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _strong_etag(header: str | None) -> str | None:
    """The one strong entity tag an If-Match names (wsgidav has checked it already; the core
    checks it again where it commits)."""
    value = (header or "").strip()
    if value.startswith('"') and value.endswith('"') and value.count('"') == 2:
        return value[1:-1]
    return None


class _Stored(Resource):
    """What folders and documents share: their library, node and path inside it."""

    library: Library
    node: Node | None
    inner: str

    def _setup(self, library: Library, node: Node | None, inner: str) -> None:
        self.library, self.node, self.inner = library, node, inner

    def prepared(self, found: Found) -> None:
        """Take what the provider's walk fetched for this request (members or content)."""

    def _changed(self) -> None:
        self.enclave.changed(self.environ)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.enclave.bridge.call(coro)

    @property
    def documents(self) -> Documents:
        return self.enclave.services.documents

    @property
    def tokens(self) -> list[str]:
        return tokens_of(self.environ)

    def get_display_name(self) -> str:
        return self.inner.rpartition("/")[2] or self.library.name

    def get_etag(self) -> str | None:
        return self.node.etag if self.node else None

    def support_etag(self) -> bool:
        return True

    def get_creation_date(self) -> float | None:
        return _epoch(self.node.created_at) if self.node else None

    def get_last_modified(self) -> float | None:
        return _epoch(self.node.modified_at) if self.node else None

    def support_modified(self) -> bool:
        return True

    # --- delete, copy, move --------------------------------------------------------------

    def handle_delete(self) -> bool:
        manager = self.enclave.lock_manager
        if manager is not None:  # wsgidav checks only the parent before a native delete
            manager.check_write_permission(
                url=self.get_ref_url(),
                depth="infinity",
                token_list=self.tokens,
                principal=self.environ["wsgidav.user_name"],
            )
        self._call(
            self.documents.delete(self.principal, self.library.id, self.inner, tokens=self.tokens)
        )
        self._changed()  # the core released the locks below, too
        return True

    def delete(self) -> None:
        self.handle_delete()

    def support_recursive_delete(self) -> bool:
        return True

    def _target(self, dest_path: str) -> tuple[Library, str]:
        parts = self.enclave.split(dest_path)
        if len(parts) < 3 or parts[0] not in (FILES, LIBRARIES):
            raise DAVError(HTTP_FORBIDDEN, "only files and folders inside a library")
        library = self.enclave.library(self.environ, parts[0], parts[1])
        return library, "/".join(parts[2:])

    def _overwrite(self) -> bool:
        return str(self.environ.get("HTTP_OVERWRITE", "T")).upper() == "T"

    def handle_move(self, dest_path: str) -> bool:
        """The core moves the node with its properties and releases the locks on and below
        the source (RFC 4918 9.9.4)."""
        library, inner = self._target(dest_path)
        _, replaced = self._call(
            self.documents.move(
                self.principal, self.library.id, self.inner, library.id, inner,
                overwrite=self._overwrite(), tokens=self.tokens,
            )
        )  # fmt: skip
        self.environ[CREATED] = not replaced
        self._changed()  # the core released the locks on and below the source, too
        return True

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        """The core copies the properties with the nodes (never the locks)."""
        library, inner = self._target(dest_path)
        if self.is_collection and not depth_infinity:
            replaced = self._shallow_copy(library, inner)
        else:
            _, replaced = self._call(
                self.documents.copy(
                    self.principal, self.library.id, self.inner, library.id, inner,
                    overwrite=self._overwrite(), tokens=self.tokens,
                )
            )  # fmt: skip
        self.environ[CREATED] = not replaced
        self._changed()
        return True

    def _shallow_copy(self, library: Library, inner: str) -> bool:
        """COPY with Depth 0 of a folder: a new empty folder at the target."""
        existing = self.enclave.find(self.environ, library, inner)
        tokens = self.tokens
        if existing is not None:
            self._call(self.documents.delete(self.principal, library.id, inner, tokens=tokens))
        self._call(self.documents.make_folder(self.principal, library.id, inner, tokens=tokens))
        self._changed()
        return existing is not None


class Folder(quota.Quota, _Stored, DAVCollection):  # type: ignore[misc]
    def __init__(
        self, path: str, environ: dict[str, Any], library: Library, node: Node, inner: str
    ) -> None:
        super().__init__(path, environ)
        self._setup(library, node, inner)

    def _child(self, name: str) -> str:
        return f"{self.inner}/{name}" if self.inner else name

    _members: list[Node] | None = None

    def prepared(self, found: Found) -> None:
        self._members = found.members

    def get_member_names(self) -> list[str]:
        return [member.name for member in self._children()]

    def _children(self) -> list[Node]:
        if self._members is not None:
            return self._members
        return self._call(self.documents.children(self.principal, self.library.id, self.inner))

    def get_member_list(self) -> list[Any]:
        base = self.path.rstrip("/")
        children = self._children()
        properties.listed(self.environ, self.library, self.inner, children)  # one read
        return [
            member_of(f"{base}/{node.name}", self.environ, self.library, node) for node in children
        ]

    def get_member(self, name: str) -> Any:
        node = self.enclave.find(self.environ, self.library, self._child(name))
        if node is None:
            return None
        return member_of(f"{self.path.rstrip('/')}/{name}", self.environ, self.library, node)

    def create_collection(self, name: str) -> Folder:
        node = self._call(
            self.documents.make_folder(
                self.principal, self.library.id, self._child(name), tokens=self.tokens
            )
        )
        self._changed()
        return Folder(
            f"{self.path.rstrip('/')}/{name}", self.environ, self.library, node, node.path
        )

    def create_empty_resource(self, name: str) -> Document:
        """For PUT, a document not stored yet (its content arrives with ``begin_write``); for
        LOCK on an unmapped URL, an empty document, stored now."""
        path, inner = f"{self.path.rstrip('/')}/{name}", self._child(name)
        if self.environ.get("REQUEST_METHOD") == "PUT":
            return Document(path, self.environ, self.library, None, inner)
        write = self.documents.write(
            self.principal, self.library.id, inner, b"", None, if_none_match=True,
            tokens=self.tokens,
        )  # fmt: skip
        node, _ = self._call(write)
        self._changed()
        return Document(path, self.environ, self.library, node, inner)


class Document(_Stored, DAVNonCollection):  # type: ignore[misc]
    def __init__(
        self, path: str, environ: dict[str, Any], library: Library, node: Node | None, inner: str
    ) -> None:
        super().__init__(path, environ)
        self._setup(library, node, inner)
        self._upload: Upload[tuple[Node, bool]] | None = None
        self._content: Content | None = None

    def prepared(self, found: Found) -> None:
        self._content, found.content = found.content, None  # one reader per stream

    def get_content_length(self) -> int | None:
        return self.node.size if self.node else 0

    def get_content_type(self) -> str:
        if self.node and self.node.content_type:
            return self.node.content_type
        guessed, _ = mimetypes.guess_type(self.inner.rpartition("/")[2])
        return guessed or "application/octet-stream"

    def support_ranges(self) -> bool:
        return True

    def get_property_value(self, name: str) -> Any:
        if name in (quota.USED, quota.AVAILABLE):
            raise DAVError(HTTP_NOT_FOUND)  # folders only (RFC 4331)
        return super().get_property_value(name)

    def get_content(self) -> Download:
        """The content; a label may allow it only to managed clients (``[http]
        managed_networks``), which the core checks with what we vouch for here."""
        chunks, self._content = self._content, None
        if chunks is None:  # not fetched with the resource (a label forbids it, say)
            managed = self.enclave.services.settings.http.is_managed(
                self.environ.get("REMOTE_ADDR")
            )
            _, chunks = self._call(
                self.documents.read(self.principal, self.library.id, self.inner, managed=managed)
            )
        return Download(chunks)

    def begin_write(self, *, content_type: str | None = None) -> Upload[tuple[Node, bool]]:
        environ = self.environ
        if_match = _strong_etag(environ.get("HTTP_IF_MATCH"))
        if_none_match = str(environ.get("HTTP_IF_NONE_MATCH", "")).strip() == "*"
        principal, library_id, inner = self.principal, self.library.id, self.inner
        documents, tokens = self.documents, self.tokens

        length = str(environ.get("CONTENT_LENGTH") or "")
        expected = int(length) if length.isdigit() else None

        async def start(body: AsyncIterator[bytes]) -> tuple[Node, bool]:
            return await documents.write(
                principal, library_id, inner, body, content_type or None,
                if_match=if_match, if_none_match=if_none_match, tokens=tokens, length=expected,
            )  # fmt: skip

        self._upload = Upload(self.enclave.bridge, start, expected)
        return self._upload

    def end_write(self, *, with_errors: bool) -> None:
        upload, self._upload = self._upload, None
        if upload is None:
            return
        if with_errors:
            upload.abort()
        elif upload.result is not None:
            self.node = upload.result[0]
        self._changed()


def member_of(path: str, environ: dict[str, Any], library: Library, node: Node) -> Any:
    if node.folder:
        return Folder(path, environ, library, node, node.path)
    return Document(path, environ, library, node, node.path)
