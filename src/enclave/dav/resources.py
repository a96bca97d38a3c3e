"""What every WebDAV resource shares, and the virtual indexes (``/``, ``/files/``,
``/libraries/``). Folders and documents are in ``nodes``. Every operation is a core call
through the bridge; the core checks the principal's access, so nothing here decides who may
do what.

Lock and dead-property keys (``get_ref_url``) start with the tenant id: the stores behind them
(``dav.locks``, ``dav.properties``) are the core's and per tenant anyway, but wsgidav's lock
manager also keys its in-process bookkeeping (writes in progress) by URL, and shared library
names are per tenant.

``REQUEST`` holds the environ of the request the current worker thread serves: wsgidav calls
its lock storage without one. a2wsgi runs each request in a copy of the context, so setting it
in the WSGI wrapper (``app``) reaches exactly that request.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from wsgidav import util
from wsgidav.dav_error import HTTP_FORBIDDEN, HTTP_NOT_FOUND, DAVError
from wsgidav.dav_provider import DAVCollection

from enclave.core.principal import Principal
from enclave.dav import stored_xml

if TYPE_CHECKING:
    from enclave.dav.provider import EnclaveProvider

PRINCIPAL = "enclave.principal"  # environ key: who is asking (set by the auth layer)
CREATED = "enclave.dav.created"  # environ key: a COPY/MOVE created its target (201, not 204)
FILES, LIBRARIES = "files", "libraries"
HREF_SAFE = "/!*'(),$-_|.@"

REQUEST: ContextVar[dict[str, Any]] = ContextVar("enclave.dav.request")


def current_environ() -> dict[str, Any]:
    """The environ of the request this thread serves (``LookupError`` outside one)."""
    return REQUEST.get()


def principal_of(environ: dict[str, Any]) -> Principal:
    principal: Principal = environ[PRINCIPAL]
    return principal


def tenant_segment(environ: dict[str, Any]) -> str:
    return principal_of(environ).tenant_id or "-"


def ref_url(environ: dict[str, Any], path: str) -> str:
    return quote(f"/{tenant_segment(environ)}{path}")


def tokens_of(environ: dict[str, Any]) -> list[str]:
    """The lock tokens the client submitted in its If header (wsgidav parses it once)."""
    util.parse_if_header_dict(environ)
    return list(environ.get("wsgidav.ifLockTokenList") or [])


class Resource:
    """Mixed in before wsgidav's resource classes: the provider, the principal, and URLs."""

    environ: dict[str, Any]
    provider: Any
    path: str
    is_collection: bool

    if TYPE_CHECKING:

        def get_preferred_path(self) -> str: ...  # wsgidav's

    @property
    def enclave(self) -> EnclaveProvider:
        found: EnclaveProvider = self.provider
        return found

    @property
    def principal(self) -> Principal:
        return principal_of(self.environ)

    def get_ref_url(self) -> str:
        return ref_url(self.environ, self.get_preferred_path())

    def get_href(self) -> str:
        """wsgidav's, but with ``@`` left alone (personal libraries are named by address;
        clients compare hrefs with the URL they asked for)."""
        whole = self.provider.mount_path + self.provider.share_path + self.get_preferred_path()
        return quote(whole, safe=HREF_SAFE)

    def get_property_value(self, name: str) -> Any:
        """wsgidav's, but a dead property's stored value always renders (``stored_xml``)."""
        manager = self.provider.prop_manager
        if name.startswith("{DAV:}") or manager is None:
            return super().get_property_value(name)  # type: ignore[misc]
        value = manager.get_property(self.get_ref_url(), name, self.environ)
        if value is None:
            raise DAVError(HTTP_NOT_FOUND)
        return stored_xml.element(name, value)


class Index(Resource, DAVCollection):  # type: ignore[misc]
    """``/`` (the two indexes) or ``/files/`` and ``/libraries/`` (the libraries the principal
    can reach, personal ones by their owner's address, shared ones by name)."""

    def __init__(self, path: str, environ: dict[str, Any], kind: str | None) -> None:
        super().__init__(path, environ)
        self.kind = kind

    def get_display_name(self) -> str:
        return self.kind or "dav"

    def prevent_locking(self) -> bool:
        return True  # nothing to lock: the indexes are not stored anywhere

    def handle_delete(self) -> bool:
        """An index is not stored anywhere, so it cannot be deleted, and wsgidav would delete
        what it lists one by one instead (``DELETE /dav/files/`` emptied every library the
        principal could write; ``/dav/files/me/a/..%2f..%2f`` reaches it)."""
        raise DAVError(HTTP_FORBIDDEN, context_info="an index cannot be deleted")

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        raise DAVError(HTTP_FORBIDDEN, context_info="an index cannot be copied")

    def handle_move(self, dest_path: str) -> bool:
        raise DAVError(HTTP_FORBIDDEN, context_info="an index cannot be moved")

    def get_member_names(self) -> list[str]:
        if self.kind is None:
            return [FILES, LIBRARIES]
        reachable = self.enclave.bridge.call(
            self.enclave.services.libraries.visible(self.principal)
        )
        return [lib.name for lib in reachable if lib.personal == (self.kind == FILES)]

    def get_member(self, name: str) -> Any:
        return self.enclave.get_resource_inst(f"{self.path.rstrip('/')}/{name}", self.environ)

    def get_member_list(self) -> list[Any]:
        """The members that resolve: a library whose root the principal cannot read (a grant
        on a folder deeper down only) is reached by that folder's path, not listed."""
        members = (self.get_member(name) for name in self.get_member_names())
        return [member for member in members if member is not None]
