"""wsgidav's lock storage on the core ``Locks`` service: WebDAV locks are rows in the database,
so they survive a restart and the JSON API's check-out sees the same ones.

wsgidav's ``LockManager`` keys locks by ref URL (``/{tenant}/files/{email}/a/b``) and calls its
storage without the request; the request comes from ``resources.REQUEST``, its principal acts,
and ``EnclaveProvider.locate`` turns the URL into a library and a path. What the core answers
is cached for the rest of the request (wsgidav asks about every folder above a path, often
several times) and forgotten whenever a lock is taken, refreshed or released here, or a
delete or move released some in the core (``forget``).

The lock dictionaries are wsgidav's: root, type, scope, depth, owner (XML bytes), timeout,
expire (epoch seconds), token and principal (the principal's id, wsgidav's user name).
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

from wsgidav.dav_error import (
    HTTP_FORBIDDEN,
    HTTP_NOT_FOUND,
    HTTP_PRECONDITION_FAILED,
    DAVError,
)

from enclave.core.documents import paths
from enclave.core.documents.locks import Lock
from enclave.dav import stored_xml
from enclave.dav.resources import current_environ, principal_of, ref_url

if TYPE_CHECKING:
    from enclave.core.documents.model import Library
    from enclave.dav.provider import EnclaveProvider, Located

CACHE = "enclave.dav.locks"  # environ key: {(library id, path prefix): locks, None if refused}
LockDict = dict[str, Any]


def forget(environ: dict[str, Any]) -> None:
    """Drop what this request learnt about locks (after a change)."""
    environ.pop(CACHE, None)


def prime(environ: dict[str, Any], library: Library, live: list[Lock]) -> None:
    """The library's live locks, found by a walk that could read its root: what
    ``Locks.active`` would answer for the whole library."""
    environ.setdefault(CACHE, {})[(library.id, ())] = live


def as_dict(located: Located, lock: Lock) -> LockDict:
    expires = lock.expires_at
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return {
        "root": located.url(lock.path),
        "type": "write",
        "scope": "exclusive" if lock.exclusive else "shared",
        "depth": lock.depth,
        "owner": stored_xml.owner_element(lock.owner),
        "timeout": lock.timeout,
        "expire": expires.timestamp(),
        "token": lock.token,
        "principal": lock.principal_id,
    }


class CoreLockStorage:
    """The interface of ``wsgidav.lock_man.lock_storage.LockStorageDict``."""

    def __init__(self, provider: EnclaveProvider) -> None:
        self.provider = provider

    def __repr__(self) -> str:
        return "CoreLockStorage"

    def open(self) -> None:
        """Nothing to open: the core's database is."""

    def close(self) -> None:
        """Nothing to close."""

    def cleanup(self) -> None:
        """Expired locks are ignored by the core and removed by its housekeeping."""

    def clear(self) -> None:
        """Not offered: the locks belong to the core (break one with UNLOCK or the API)."""

    # --- reading -------------------------------------------------------------------------

    def _query(self, environ: dict[str, Any], library: Library, prefix: list[str]) -> Any:
        """The live locks at or below ``prefix`` and those above covering it, or None if the
        principal may not look there (cached for the request)."""
        cache: dict[tuple[str, tuple[str, ...]], list[Lock] | None]
        cache = environ.setdefault(CACHE, {})
        key = (library.id, tuple(prefix))
        if key not in cache:
            locks = self.provider.services.locks
            try:
                cache[key] = self.provider.bridge.call(
                    locks.active(principal_of(environ), library.id, paths.join(prefix))
                )
            except DAVError as exc:
                if exc.value not in (HTTP_NOT_FOUND, HTTP_FORBIDDEN):
                    raise
                cache[key] = None
        return cache[key]

    def _under(self, environ: dict[str, Any], located: Located) -> list[Lock]:
        """Every lock at or below the located path: asked of the whole library once per
        request where the principal may read it all, else of the path itself."""
        for prefix in ([], located.parts):
            found: list[Lock] | None = self._query(environ, located.library, prefix)
            if found is not None:
                return found
        return []

    def _find(self, environ: dict[str, Any], token: str) -> tuple[Located, Lock] | None:
        """A lock by its token, among those around the resource the request names (UNLOCK
        and LOCK refreshes name the resource or one the lock covers)."""
        located = self.provider.locate(environ, ref_url(environ, environ["PATH_INFO"]))
        if located is None:
            return None
        for lock in self._under(environ, located):
            if lock.token == token:
                return located, lock
        return None

    def get(self, token: str) -> LockDict | None:
        found = self._find(current_environ(), token)
        return None if found is None else as_dict(*found)

    def get_lock_list(
        self, path: str, *, include_root: bool, include_children: bool, token_only: bool
    ) -> list[Any]:
        environ = current_environ()
        located = self.provider.locate(environ, path)
        if located is None:
            return []
        here = located.parts
        found: list[Any] = []
        for lock in self._under(environ, located):
            there = lock.parts
            direct = include_root and there == here
            below = include_children and len(there) > len(here) and paths.within(there, here)
            if direct or below:
                found.append(lock.token if token_only else as_dict(located, lock))
        return found

    # --- changing ------------------------------------------------------------------------

    def create(self, path: str, lock: LockDict) -> LockDict:
        """Take the lock in the core; ``lock`` gets its root, timeout, expire and token."""
        environ = current_environ()
        located = self.provider.locate(environ, path)
        if located is None:
            raise DAVError(HTTP_FORBIDDEN, context_info="nothing to lock here")
        timeout = lock.get("timeout")
        owner = lock.get("owner") or b""
        taken: Lock = self.provider.bridge.call(
            self.provider.services.locks.lock(
                principal_of(environ), located.library.id, located.inner,
                depth=str(lock["depth"]), exclusive=lock["scope"] == "exclusive",
                owner=owner.decode("utf-8", "replace") if isinstance(owner, bytes) else owner,
                seconds=None if timeout is None else int(float(timeout)),
            )
        )  # fmt: skip
        forget(environ)
        lock.update(as_dict(located, taken))
        return lock

    def refresh(self, token: str, *, timeout: float | None = None) -> LockDict:
        environ = current_environ()
        found = self._find(environ, token)
        if found is None:
            raise DAVError(HTTP_PRECONDITION_FAILED, context_info="no such lock")
        located, lock = found
        refreshed: Lock = self.provider.bridge.call(
            self.provider.services.locks.refresh(
                principal_of(environ), lock.library_id, token,
                None if timeout is None else int(timeout),
            )
        )  # fmt: skip
        forget(environ)
        return as_dict(located, refreshed)

    def delete(self, token: str) -> bool:
        environ = current_environ()
        found = self._find(environ, token)
        if found is None:
            return False
        self.provider.bridge.call(
            self.provider.services.locks.unlock(principal_of(environ), found[1].library_id, token)
        )
        forget(environ)
        return True
