"""Write locks on documents and folders: WebDAV LOCK/UNLOCK and check-out/check-in.

A lock names a path in a library (it may be taken on a name that does not exist yet, as RFC
4918 allows), with depth 0 or infinity, exclusive or shared, and expires after its timeout.
Writing at a path that a lock covers needs that lock: WebDAV clients prove it by sending the
token; other callers (the JSON API) hold it by being its owner. Adding or removing a member of
a folder is a write to the folder too. Only the owner unlocks; someone with manage access may
break another's lock, which is audited.

``conflicts`` and ``blocking`` are pure and decide everything; ``Locks`` keeps the rows.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Scoped, transaction
from enclave.core import clock
from enclave.core.audit import AuditEvent, AuditLog
from enclave.core.documents import paths
from enclave.core.documents.access import Level
from enclave.core.documents.lookup import Locator, tenant_scope
from enclave.core.errors import Conflict, Forbidden, Invalid, Locked, NotFound
from enclave.core.principal import Principal

# The lock tokens a WebDAV client presented; None when the caller acts as itself (its own
# locks then count as held).
Tokens = Collection[str] | None

DEFAULT_TIMEOUT = 3600  # a client that asks for "Infinite" gets the maximum
MAX_TIMEOUT = 7 * 24 * 3600
MAX_OWNER = 4096  # characters of the owner a client names (shown in every lockdiscovery)
INFINITY = "infinity"


@dataclass(frozen=True)
class Lock:
    token: str
    library_id: str
    path: str
    depth: str  # "0" | "infinity"
    exclusive: bool
    owner: str
    principal_id: str
    principal_name: str
    timeout: int
    expires_at: datetime

    @property
    def parts(self) -> list[str]:
        return paths.split(self.path)


def lock_of(row: Any) -> Lock:
    return Lock(
        token=row["token"], library_id=row["library_id"], path=row["path"], depth=row["depth"],
        exclusive=bool(row["exclusive"]), owner=row["owner"], principal_id=row["principal_id"],
        principal_name=row["principal_name"], timeout=int(row["timeout"]),
        expires_at=row["expires_at"],
    )  # fmt: skip


def covers(lock: Lock, path: list[str]) -> bool:
    """Whether the lock applies to ``path``: on it, or on a folder above with depth infinity."""
    if lock.parts == path:
        return True
    return lock.depth == INFINITY and paths.within(path, lock.parts)


def conflicts(locks: list[Lock], path: list[str], depth: str, exclusive: bool) -> list[Lock]:
    """The existing locks a new one at ``path`` would collide with."""
    found = []
    for lock in locks:
        overlaps = covers(lock, path) or (
            depth == INFINITY and paths.within(lock.parts, path) and lock.parts != path
        )
        if overlaps and (exclusive or lock.exclusive):
            found.append(lock)
    return found


def blocking(
    locks: list[Lock],
    principal: Principal,
    path: list[str],
    tokens: Tokens,
    *,
    subtree: bool = False,
    member_of_parent: bool = False,
) -> list[Lock]:
    """The locks that stop ``principal`` writing at ``path`` (and below it with ``subtree``;
    and the folder's membership with ``member_of_parent``). A lock does not stop its owner
    presenting its token, nor its owner when no tokens are presented (the JSON API)."""
    relevant = [
        lock for lock in locks
        if covers(lock, path)
        or (subtree and paths.within(lock.parts, path))
        or (member_of_parent and path and covers(lock, path[:-1]))
    ]  # fmt: skip
    if tokens is None:
        return [lock for lock in relevant if lock.principal_id != principal.id]
    # A token proves the lock only in its owner's hands (RFC 4918 6.4: a lock belongs to the
    # principal who took it; a leaked token is no key).
    return [
        lock for lock in relevant
        if lock.token not in tokens or lock.principal_id != principal.id
    ]  # fmt: skip


async def check_unlocked(
    scoped: Scoped,
    principal: Principal,
    library_id: str,
    path: list[str],
    tokens: Tokens,
    *,
    subtree: bool = False,
    member_of_parent: bool = False,
) -> None:
    """Raise Locked when a lock held by someone else (or not presented) covers the write."""
    locks = [lock_of(row) for row in await scoped.locks.of_library(library_id, clock.now())]
    if locks and blocking(
        locks, principal, path, tokens, subtree=subtree, member_of_parent=member_of_parent
    ):
        raise Locked(f"{paths.join(path) or 'the library'} is locked")


async def release_below(scoped: Scoped, library_id: str, path: list[str]) -> None:
    """Locks go with a deleted or moved-away resource (RFC 4918 7.7 and 9.9.4)."""
    for row in await scoped.locks.of_library(library_id, clock.now()):
        if paths.within(paths.split(row["path"]), path):
            await scoped.locks.remove(row["token"])


def _timeout(seconds: int | None) -> int:
    if seconds is None or seconds < 0:
        return MAX_TIMEOUT if seconds is not None else DEFAULT_TIMEOUT
    return max(1, min(seconds, MAX_TIMEOUT))


class Locks:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self._db = db
        self._audit = audit

    async def lock(
        self,
        principal: Principal,
        library_id: str,
        path: str,
        *,
        depth: str = "0",
        exclusive: bool = True,
        owner: str = "",
        seconds: int | None = None,
    ) -> Lock:
        """Take a lock. Needs write access at the path (at its folder, for a name that does
        not exist yet). ``seconds`` is the requested lifetime; negative means "as long as
        allowed", None the default."""
        if depth not in ("0", INFINITY):
            raise Invalid("lock depth is 0 or infinity")
        if len(owner) > MAX_OWNER:
            raise Invalid(f"a lock's owner is at most {MAX_OWNER} characters")
        parts = paths.split(path)
        scope = tenant_scope(principal)
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            locator = Locator(scoped, principal)
            try:
                place = await locator.place(library_id, parts)
            except NotFound:
                if not parts:
                    raise
                place = await locator.folder(library_id, parts[:-1], Level.WRITE)
            place.require(Level.WRITE)
            now = clock.now()
            await scoped.locks.remove_expired(now)
            current = [lock_of(row) for row in await scoped.locks.of_library(library_id, now)]
            if conflicts(current, parts, depth, exclusive):
                raise Locked(f"{path or 'the library'} is locked by someone else")
            seconds = _timeout(seconds)
            token = "opaquelocktoken:" + secrets.token_hex(16)
            await scoped.locks.add(
                token=token, library_id=library_id, path=paths.join(parts), depth=depth,
                exclusive=exclusive, owner=owner, principal_id=principal.id,
                principal_name=principal.name, timeout=seconds,
                expires_at=now + timedelta(seconds=seconds), created_at=now,
            )  # fmt: skip
            row = await scoped.locks.get(token)
        return lock_of(row)

    async def refresh(
        self, principal: Principal, library_id: str, token: str, seconds: int | None
    ) -> Lock:
        scope = tenant_scope(principal)
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            lock = await self._live(scoped, library_id, token)
            if lock.principal_id != principal.id:
                raise Forbidden("only the lock's owner can refresh it")
            seconds = _timeout(seconds)
            expires = clock.now() + timedelta(seconds=seconds)
            await scoped.locks.change(token, timeout=seconds, expires_at=expires)
            row = await scoped.locks.get(token)
        return lock_of(row)

    async def unlock(self, principal: Principal, library_id: str, token: str) -> None:
        """Release a lock: its owner may; someone with manage access at its path may break
        it (recorded in the tenant's audit log)."""
        scope = tenant_scope(principal)
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            lock = await self._live(scoped, library_id, token)
            if lock.principal_id != principal.id:
                locator = Locator(scoped, principal)
                try:
                    place = await locator.place(library_id, lock.parts)
                except NotFound:
                    place = await locator.place(library_id, lock.parts[:-1])
                if place.level < Level.MANAGE:
                    raise Forbidden("only the lock's owner can unlock it")
                library = await locator.library(library_id)
                await self._audit.record(
                    tx,
                    AuditEvent.by(
                        principal, "document.lock.break",
                        f"library:{library['name']}/{lock.path}",
                        reason=f"held by {lock.principal_name}",
                    ),
                )  # fmt: skip
            await scoped.locks.remove(token)

    async def active(self, principal: Principal, library_id: str, path: str = "") -> list[Lock]:
        """The live locks at or below ``path`` and those above it that cover it."""
        parts = paths.split(path)
        scope = tenant_scope(principal)
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            locator = Locator(scoped, principal)
            (await locator.place(library_id, parts[:-1] if parts else [])).require(Level.READ)
            rows = await scoped.locks.of_library(library_id, clock.now())
        locks = [lock_of(row) for row in rows]
        return [lock for lock in locks if covers(lock, parts) or paths.within(lock.parts, parts)]

    @staticmethod
    async def _live(scoped: Scoped, library_id: str, token: str) -> Lock:
        row = await scoped.locks.get(token)
        if row is None or row["library_id"] != library_id or row["expires_at"] <= clock.now():
            raise Conflict("no such lock")
        return lock_of(row)
