"""RFC 4331 quota properties on folders: ``DAV:quota-used-bytes`` and (when the library has a
quota) ``DAV:quota-available-bytes``, for the library the folder is in. They count what the
core's quota check counts: every version and the trash, plus the owner's mail in a personal
library. Not in ``allprop`` (RFC 4331 3), so a plain PROPFIND does not pay for them.
The figure is the core's (``Libraries.usage``), asked once per library per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wsgidav.dav_error import HTTP_NOT_FOUND, DAVError

from enclave.core.documents.model import Library
from enclave.core.principal import Principal

if TYPE_CHECKING:
    from enclave.dav.provider import EnclaveProvider

USED = "{DAV:}quota-used-bytes"
AVAILABLE = "{DAV:}quota-available-bytes"
CACHE = "enclave.dav.usage"  # environ key: {library id: bytes used}


class Quota:
    """Mixed in before wsgidav's ``DAVCollection`` by folders."""

    environ: dict[str, Any]
    library: Library
    enclave: EnclaveProvider
    principal: Principal

    def _used(self) -> int:
        cache: dict[str, int] = self.environ.setdefault(CACHE, {})
        if self.library.id not in cache:
            enclave = self.enclave
            cache[self.library.id] = enclave.bridge.call(
                enclave.services.libraries.usage(self.principal, self.library.id)
            )
        return cache[self.library.id]

    def _quota_names(self) -> list[str]:
        return [USED] if self.library.quota_bytes is None else [USED, AVAILABLE]

    def get_property_names(self, *, is_allprop: bool) -> list[str]:
        names: list[str] = super().get_property_names(is_allprop=is_allprop)  # type: ignore[misc]
        return names if is_allprop else [*names, *self._quota_names()]

    def get_property_value(self, name: str) -> Any:
        if name == USED:
            return str(self._used())
        if name == AVAILABLE:
            if self.library.quota_bytes is None:
                raise DAVError(HTTP_NOT_FOUND)  # no quota: nothing to count down from
            return str(max(0, self.library.quota_bytes - self._used()))
        return super().get_property_value(name)  # type: ignore[misc]
