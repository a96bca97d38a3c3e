"""A user's mailboxes as a mail client sees them: listing, creating, renaming, selecting,
flags with modification sequences, expunge with tombstones, copy, move and append.

Every call takes the signed-in principal and works only on that user's own mailboxes: the
queries are keyed by the principal's user id inside the principal's tenant scope, so no
argument can name someone else's mailbox. Shared folders will come through explicit grants.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Scoped, Tx, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core.content import ContentStore
from enclave.core.errors import Conflict, Forbidden, Invalid, NotFound, QuotaExceeded
from enclave.core.events import ChangeBus
from enclave.core.lru import LruCache
from enclave.core.mail.store import (
    DEFAULT_NAMES,
    INBOX,
    MailStore,
    NewMessage,
    add_mailbox,
    ensure_mailboxes,
    open_meta,
)
from enclave.core.principal import Principal, Realm
from enclave.core.search.index import SearchIndex

DELIMITER = "/"
# Decrypted kept forms held in memory (a few KiB each): enough for a few large mailboxes.
FORMS_CACHE_ENTRIES = 50_000
SYSTEM_FLAGS = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})


@dataclass(frozen=True)
class MailboxInfo:
    id: str
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    noselect: bool = False
    recent_uid: int = 1  # UIDs from here on are \Recent (RFC 3501 2.3.2)


@dataclass(frozen=True)
class MessageState:
    uid: int
    flags: frozenset[str]
    modseq: int


class MessageRow(NamedTuple):  # a tuple: a FETCH 1:* makes one per message
    id: str
    uid: int
    flags: frozenset[str]
    modseq: int
    size: int
    internal_date: datetime
    blob: str


def user_topic(principal: Principal) -> str:
    """The change-bus topic of a user's mailbox names and subscriptions (NOTIFY MailboxName
    and SubscriptionChange); mailbox ids are the topics of their contents."""
    return f"user:{principal.id}"


def canonical(name: str) -> str:
    """INBOX is case-insensitive (RFC 3501 5.1); other names are kept as given."""
    clean = name.strip(DELIMITER)
    if clean.upper() == INBOX:
        return INBOX
    if clean.upper().startswith(INBOX + DELIMITER):
        return INBOX + clean[len(INBOX) :]
    return clean


@functools.lru_cache(maxsize=4096)
def _flags(text: str) -> frozenset[str]:
    # A mailbox has few distinct flag sets: one parse each, shared (frozensets are immutable).
    return frozenset(text.split())


def _flag_text(flags: frozenset[str]) -> str:
    return " ".join(sorted(flags))


def normalise_flag(flag: str) -> str:
    for system in SYSTEM_FLAGS:
        if flag.lower() == system.lower():
            return system
    if flag.startswith("\\"):
        raise Invalid(f"{flag} is not a flag that can be set")
    return flag


def _info(row: Any) -> MailboxInfo:
    return MailboxInfo(
        id=row["id"],
        name=row["name"],
        special_use=row["special_use"],
        uidvalidity=int(row["uidvalidity"]),
        uidnext=int(row["uidnext"]),
        highestmodseq=int(row["highestmodseq"]),
        noselect=bool(row["noselect"]),
        recent_uid=int(row["recent_uid"]),
    )


def _copied(row: Any, **changes: Any) -> dict[str, Any]:
    """A message row's values for a new copy (the scope stamps the tenant again)."""
    values = {key: value for key, value in dict(row).items() if key != "tenant_id"}
    return values | {"id": str(uuid.uuid4())} | changes


class Mailboxes:
    def __init__(
        self, db: Database, content: ContentStore, store: MailStore, bus: ChangeBus,
        index: SearchIndex | None = None,
    ) -> None:  # fmt: skip
        self._db = db
        self._content = content
        self._store = store
        self.bus = bus
        self._index = index
        self._forms: LruCache[tuple[str, str], dict[str, str]] = LruCache(FORMS_CACHE_ENTRIES)

    @staticmethod
    def owner(principal: Principal) -> tuple[TenantScope, str]:
        """The principal's tenant scope and user id, for tenant users who may use mail."""
        if principal.realm is not Realm.TENANT or principal.tenant_id is None:
            raise Forbidden("mailboxes belong to tenant users")
        if principal.restricted:
            raise Forbidden("enrol a second factor first")
        return TenantScope(principal.tenant_id), principal.id

    @staticmethod
    async def _owned(scoped: Scoped, user_id: str, mailbox_id: str) -> Any:
        """The user's mailbox with this id (ids come from clients' sessions: check the owner)."""
        box = await scoped.mailboxes.by_id(mailbox_id)
        if box is None or box["user_id"] != user_id:
            raise NotFound("the mailbox no longer exists")
        return box

    async def _box(self, scoped: Scoped, user_id: str, name: str) -> Any:
        row = await scoped.mailboxes.by_name(user_id, canonical(name))
        if row is None:
            raise NotFound(f"no mailbox {name}")
        return row

    # --- the list ------------------------------------------------------------------------

    async def list_all(self, principal: Principal) -> list[MailboxInfo]:
        scope, user_id = self.owner(principal)
        async with transaction(self._db) as tx:
            rows = await (await tx.scoped(scope)).mailboxes.of_user(user_id)
        if DEFAULT_NAMES <= {row["name"] for row in rows}:
            return [_info(row) for row in rows]
        async with transaction(self._db, write=True) as tx:  # first use: the default set
            scoped = await tx.scoped(scope)
            await ensure_mailboxes(scoped, user_id)
            return [_info(row) for row in await scoped.mailboxes.of_user(user_id)]

    async def _row(self, scope: TenantScope, user_id: str, name: str) -> Any:
        """The named mailbox's row, read without the write lock; the default set is created
        (a write) only the first time it is missing."""
        for attempt in range(2):
            async with transaction(self._db) as tx:
                row = await (await tx.scoped(scope)).mailboxes.by_name(user_id, canonical(name))
            if row is not None or attempt or canonical(name) not in DEFAULT_NAMES:
                break
            async with transaction(self._db, write=True) as tx:
                await ensure_mailboxes(await tx.scoped(scope), user_id)
        if row is None:
            raise NotFound(f"no mailbox {name}")
        if row["noselect"]:
            raise Invalid(f"{name} holds only other mailboxes (\\Noselect)")
        return row

    async def get(self, principal: Principal, name: str) -> MailboxInfo:
        scope, user_id = self.owner(principal)
        return _info(await self._row(scope, user_id, name))

    async def create(self, principal: Principal, name: str) -> MailboxInfo:
        scope, user_id = self.owner(principal)
        clean = canonical(name)
        if not clean or len(clean) > 400 or any(ord(c) < 0x20 for c in clean):
            raise Invalid("invalid mailbox name")
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            await ensure_mailboxes(scoped, user_id)
            rows = {row["name"]: row for row in await scoped.mailboxes.of_user(user_id)}
            existing = set(rows)
            if clean in rows and rows[clean]["noselect"]:  # a kept name becomes a mailbox again
                await scoped.mailboxes.change(rows[clean]["id"], noselect=False)
            elif clean in existing:
                raise Conflict(f"mailbox {clean} already exists")
            parts = clean.split(DELIMITER)
            for depth in range(1, len(parts) + 1):  # create missing parents too (RFC 3501 6.3.3)
                path = DELIMITER.join(parts[:depth])
                if path not in existing:
                    await add_mailbox(scoped, user_id, path)
                    existing.add(path)
            created = _info(await self._box(scoped, user_id, clean))
        self.bus.publish(user_topic(principal))
        return created

    async def delete(self, principal: Principal, name: str) -> None:
        """Delete a mailbox and its messages. One with children keeps its name as \\Noselect
        (RFC 3501 6.3.4); a \\Noselect parent left without children goes too."""
        scope, user_id = self.owner(principal)
        if canonical(name) == INBOX:
            raise Invalid("INBOX cannot be deleted")
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            box = await self._box(scoped, user_id, name)
            names = {row["name"]: row for row in await scoped.mailboxes.of_user(user_id)}
            has_children = any(n.startswith(box["name"] + DELIMITER) for n in names)
            if has_children and box["noselect"]:
                raise Invalid(f"{box['name']} has children and holds no messages")
            rows = await scoped.messages.in_mailbox(box["id"])
            for row in rows:
                await scoped.blobs.incref(row["blob"], -1)
            if has_children:
                modseq = await scoped.mailboxes.next_modseq(box["id"])
                for row in rows:
                    await scoped.messages.remove(row["id"])
                    await scoped.expunged.add(box["id"], int(row["uid"]), modseq)
                await scoped.mailboxes.change(box["id"], noselect=True)
            else:
                await scoped.mailboxes.remove(box["id"])
                del names[box["name"]]
                parts = box["name"].split(DELIMITER)
                for depth in range(len(parts) - 1, 0, -1):  # empty \\Noselect parents go too
                    parent = names.get(DELIMITER.join(parts[:depth]))
                    prefix = DELIMITER.join(parts[:depth]) + DELIMITER
                    if parent is None or not parent["noselect"]:
                        break
                    if any(n.startswith(prefix) for n in names):
                        break
                    await scoped.mailboxes.remove(parent["id"])
                    del names[parent["name"]]
        self.bus.publish(box["id"])
        self.bus.publish(user_topic(principal))

    async def rename(self, principal: Principal, old: str, new: str) -> None:
        scope, user_id = self.owner(principal)
        source, target = canonical(old), canonical(new)
        if target == INBOX or not target:
            raise Invalid("cannot rename to INBOX")
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            box = await self._box(scoped, user_id, source)
            boxes = await scoped.mailboxes.of_user(user_id)
            if any(row["name"] == target for row in boxes):
                raise Conflict(f"mailbox {target} already exists")
            if source == INBOX:  # RFC 3501: move INBOX's messages into a new mailbox
                await self._move_all(scoped, user_id, box, target)
            else:
                subscribed = await scoped.subscriptions.of_user(user_id)
                for row in boxes:  # the mailbox and its children, and their subscriptions
                    if row["name"] == source or row["name"].startswith(source + DELIMITER):
                        renamed = target + row["name"][len(source) :]
                        await scoped.mailboxes.change(row["id"], name=renamed)
                        if row["name"] in subscribed:
                            await scoped.subscriptions.rename(user_id, row["name"], renamed)
        self.bus.publish(user_topic(principal))

    async def _move_all(self, scoped: Scoped, user_id: str, inbox: Any, target: str) -> None:
        new_id = await add_mailbox(scoped, user_id, target)
        rows = await scoped.messages.in_mailbox(inbox["id"])
        if rows:
            first, modseq = await scoped.mailboxes.allocate(new_id, len(rows))
            expunged_at = await scoped.mailboxes.next_modseq(inbox["id"])
            for offset, row in enumerate(rows):
                await scoped.messages.add(
                    **_copied(row, mailbox_id=new_id, uid=first + offset, modseq=modseq)
                )
                await scoped.messages.remove(row["id"])
                await scoped.expunged.add(inbox["id"], int(row["uid"]), expunged_at)
        self.bus.publish(inbox["id"])

    async def subscriptions(self, principal: Principal) -> set[str]:
        """The names the user subscribed to; a name may outlive its mailbox (RFC 3501 6.3.6)."""
        scope, user_id = self.owner(principal)
        async with transaction(self._db) as tx:
            return await (await tx.scoped(scope)).subscriptions.of_user(user_id)

    async def subscribe(self, principal: Principal, name: str, subscribed: bool) -> None:
        """SUBSCRIBE needs an existing mailbox; UNSUBSCRIBE takes any name."""
        scope, user_id = self.owner(principal)
        clean = canonical(name)
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            if subscribed:
                await ensure_mailboxes(scoped, user_id)
                await self._box(scoped, user_id, clean)
                await scoped.subscriptions.add(user_id, clean)
            else:
                await scoped.subscriptions.remove(user_id, clean)  # a name not subscribed: done
        self.bus.publish(user_topic(principal))

    async def status(self, principal: Principal, name: str) -> dict[str, int]:
        scope, user_id = self.owner(principal)
        box = await self._row(scope, user_id, name)
        async with transaction(self._db) as tx:
            count, unseen, size, recent, deleted = await (await tx.scoped(scope)).messages.stats(
                box["id"], recent_from=int(box["recent_uid"])
            )
        return {
            "MESSAGES": count,
            "RECENT": recent,
            "UIDNEXT": int(box["uidnext"]),
            "UIDVALIDITY": int(box["uidvalidity"]),
            "UNSEEN": unseen,
            "HIGHESTMODSEQ": int(box["highestmodseq"]),
            "SIZE": size,
            "DELETED": deleted,  # IMAP4rev2
        }

    async def quota(self, principal: Principal) -> tuple[int, int | None]:
        """(bytes used, limit in bytes or None)."""
        scope, user_id = self.owner(principal)
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            user = await scoped.users.by_id(user_id)
            used = await scoped.messages.usage(user_id)
        return used, (user["quota_bytes"] if user else None)

    # --- a selected mailbox --------------------------------------------------------------

    async def state(
        self, principal: Principal, mailbox_id: str
    ) -> tuple[MailboxInfo, list[MessageState]]:
        scope, user_id = self.owner(principal)
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            box = await self._owned(scoped, user_id, mailbox_id)
            rows = await scoped.messages.state(mailbox_id)
        return _info(box), [MessageState(uid, _flags(flags), modseq) for uid, flags, modseq in rows]

    async def claim_recent(self, principal: Principal, mailbox_id: str, upto: int) -> int:
        """Claim the \\Recent messages below UID ``upto`` for the calling session: returns
        the first UID that is recent for it (RFC 3501 2.3.2: one session, the first to see a
        message, is told it is recent). A session claims as it selects, or sees new mail."""
        scope, user_id = self.owner(principal)
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            box = await self._owned(scoped, user_id, mailbox_id)
            first = int(box["recent_uid"])
            if upto > first:
                await scoped.mailboxes.change(mailbox_id, recent_uid=upto)
        return first

    async def changes(
        self, principal: Principal, mailbox_id: str, since: int
    ) -> tuple[MailboxInfo, list[MessageState], list[int]]:
        """What changed after modseq ``since``: (mailbox, changed or new messages, expunged)."""
        scope, user_id = self.owner(principal)
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            box = await self._owned(scoped, user_id, mailbox_id)
            changed = await scoped.messages.changed_since(mailbox_id, since)
            gone = await scoped.expunged.since(mailbox_id, since)
        states = [
            MessageState(int(r["uid"]), _flags(r["flags"]), int(r["modseq"])) for r in changed
        ]
        return _info(box), states, gone

    async def rows(
        self, principal: Principal, mailbox_id: str, uids: list[int]
    ) -> list[MessageRow]:
        return (await self.listing(principal, mailbox_id, uids, forms=False))[0]

    async def listing(
        self, principal: Principal, mailbox_id: str, uids: list[int], *, forms: bool
    ) -> tuple[list[MessageRow], dict[int, dict[str, str]]]:
        """The rows of these messages and, with ``forms``, the forms kept at delivery by UID
        (see ``derived``): what FETCH needs, in one transaction and one read of the rows."""
        scope, user_id = self.owner(principal)
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            await self._owned(scoped, user_id, mailbox_id)
            found = await scoped.messages.rows_of(mailbox_id, uids)
            rows = [
                MessageRow(message_id, uid, _flags(flags), modseq, size, when, blob)
                for uid, message_id, flags, modseq, size, when, blob in found
            ]
            kept = (
                await self._kept_forms(tx, scoped, [(r.uid, r.id, r.blob) for r in rows])
                if forms
                else {}
            )
        return rows, kept

    async def candidates(
        self, principal: Principal, mailbox_id: str, needles: list[str]
    ) -> set[int] | None:
        """UIDs in the mailbox that may contain every one of ``needles`` in their header or
        text (a superset of what a substring search finds there: the caller tests each), or
        None when the index cannot narrow the search (see ``SearchIndex.mail_uids``)."""
        if self._index is None:
            return None
        scope, user_id = self.owner(principal)
        async with transaction(self._db) as tx:
            await self._owned(await tx.scoped(scope), user_id, mailbox_id)
            return await self._index.mail_uids(tx, scope, mailbox_id, needles)

    async def derived(
        self, principal: Principal, mailbox_id: str, uids: list[int]
    ) -> dict[int, dict[str, str]]:
        """The forms a front end had kept at delivery (see ``MailStore``), by UID, read in
        one transaction; messages without them are left out."""
        scope, user_id = self.owner(principal)
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            await self._owned(scoped, user_id, mailbox_id)
            return await self._kept_forms(
                tx, scoped, await scoped.messages.blobs_of(mailbox_id, uids)
            )

    async def _kept_forms(
        self, tx: Tx, scoped: Scoped, rows: list[tuple[int, str, str]]
    ) -> dict[int, dict[str, str]]:
        """Forms by UID of (uid, message id, content name) rows of an owned mailbox. Forms
        depend on the content alone, so they are cached per content object: a mailbox
        listed again, or the same message in several mailboxes, is decrypted once."""
        scope = scoped.scope
        missing = [mid for _, mid, blob in rows if (scope.tenant_id, blob) not in self._forms]
        if missing:
            metas = await scoped.messages.metas(missing)
            sealers = await self._content.sealers(tx, scope, [r["blob"] for r in metas])
            for meta in metas:
                sealer = sealers.get(meta["blob"])
                if sealer is not None:
                    forms = open_meta(sealer, meta["id"], meta["meta"]).get("derived") or {}
                    self._forms.put((scope.tenant_id, meta["blob"]), forms)
        found: dict[int, dict[str, str]] = {}
        for uid, _, blob in rows:
            forms = self._forms.get((scope.tenant_id, blob))
            if forms:
                found[uid] = forms
        return found

    async def content(self, principal: Principal, row: MessageRow) -> bytes:
        scope, _ = self.owner(principal)
        return await self._content.read(scope, row.blob)

    async def contents(
        self, principal: Principal, rows: list[MessageRow]
    ) -> AsyncIterator[tuple[MessageRow, bytes]]:
        """Each message's content, in order: the keys of all of them found in one
        transaction, the files read one at a time as the caller goes on (a message gone
        meanwhile is left out)."""
        scope, _ = self.owner(principal)
        opened = []
        async with transaction(self._db) as tx:
            for row in rows:
                try:
                    opened.append((row, await self._content.opened(tx, scope, row.blob)))
                except NotFound:
                    continue
        for row, chunks in opened:
            yield row, b"".join([chunk async for chunk in chunks])

    async def store(
        self,
        principal: Principal,
        mailbox_id: str,
        uids: list[int],
        mode: str,
        flags: list[str],
        unchanged_since: int | None = None,
    ) -> tuple[list[MessageState], list[int]]:
        """Change flags; returns (messages whose flags changed, UIDs refused by
        UNCHANGEDSINCE). Each changed message gets the new modseq of this change."""
        scope, user_id = self.owner(principal)
        wanted = frozenset(normalise_flag(f) for f in flags)
        changed: list[MessageState] = []
        refused: list[int] = []
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            await self._owned(scoped, user_id, mailbox_id)
            rows = await scoped.messages.by_uids(mailbox_id, uids)
            modseq: int | None = None
            for row in rows:
                if unchanged_since is not None and int(row["modseq"]) > unchanged_since:
                    refused.append(int(row["uid"]))
                    continue
                current = _flags(row["flags"])
                new = {"set": wanted, "add": current | wanted, "remove": current - wanted}[mode]
                if new == current:
                    continue
                if modseq is None:
                    modseq = await scoped.mailboxes.next_modseq(mailbox_id)
                await scoped.messages.set_flags(row["id"], _flag_text(new), modseq)
                changed.append(MessageState(int(row["uid"]), new, modseq))
        if changed:
            self.bus.publish(mailbox_id)
        return changed, refused

    async def expunge(
        self, principal: Principal, mailbox_id: str, uids: list[int] | None = None
    ) -> list[int]:
        """Remove the \\Deleted messages (only those among ``uids`` if given)."""
        scope, user_id = self.owner(principal)
        removed: list[int] = []
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            await self._owned(scoped, user_id, mailbox_id)
            rows = await (
                scoped.messages.by_uids(mailbox_id, uids)
                if uids is not None
                else scoped.messages.in_mailbox(mailbox_id)
            )
            doomed = [r for r in rows if "\\Deleted" in _flags(r["flags"])]
            if doomed:
                modseq = await scoped.mailboxes.next_modseq(mailbox_id)
                for row in doomed:
                    await scoped.messages.remove(row["id"])
                    await scoped.expunged.add(mailbox_id, int(row["uid"]), modseq)
                    await scoped.blobs.incref(row["blob"], -1)
                    removed.append(int(row["uid"]))
        if removed:
            self.bus.publish(mailbox_id)
        return removed

    async def copy(
        self, principal: Principal, mailbox_id: str, uids: list[int], target: str, *, move: bool
    ) -> tuple[int, list[int], list[int]]:
        """Copy (or move) messages; returns (target UIDVALIDITY, source UIDs, new UIDs)."""
        scope, user_id = self.owner(principal)
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            await self._owned(scoped, user_id, mailbox_id)
            destination = await scoped.mailboxes.by_name(user_id, canonical(target))
            if destination is None:
                raise NotFound(f"no mailbox {target}")
            rows = await scoped.messages.by_uids(mailbox_id, uids)
            if not rows:
                return int(destination["uidvalidity"]), [], []
            if not move:
                user = await scoped.users.by_id(user_id)
                added = sum(int(r["size"]) for r in rows)
                limit = user["quota_bytes"] if user else None
                if limit is not None and await scoped.messages.usage(user_id) + added > limit:
                    raise QuotaExceeded("over quota")
            first, modseq = await scoped.mailboxes.allocate(destination["id"], len(rows))
            new_uids = list(range(first, first + len(rows)))
            for row, uid in zip(rows, new_uids, strict=True):
                await scoped.messages.add(
                    **_copied(row, mailbox_id=destination["id"], uid=uid, modseq=modseq)
                )
                if not move:
                    await scoped.blobs.incref(row["blob"], 1)
            if move:
                gone_at = await scoped.mailboxes.next_modseq(mailbox_id)
                for row in rows:
                    await scoped.messages.remove(row["id"])
                    await scoped.expunged.add(mailbox_id, int(row["uid"]), gone_at)
        self.bus.publish(destination["id"])
        if move:
            self.bus.publish(mailbox_id)
        return int(destination["uidvalidity"]), [int(r["uid"]) for r in rows], new_uids

    async def append(
        self, principal: Principal, name: str, raw: bytes, flags: list[str], when: datetime | None
    ) -> tuple[int, int]:
        """Store a message the client uploads; returns (UIDVALIDITY, UID) after commit."""
        scope, user_id = self.owner(principal)
        box = await self.get(principal, name)
        clean = tuple(normalise_flag(f) for f in flags)
        delivered = await self._store.deliver(
            scope.tenant_id, [user_id], raw, mailbox=box.name, flags=clean, internal_date=when
        )
        return box.uidvalidity, delivered[0].uid

    async def append_many(
        self, principal: Principal, name: str, messages: list[NewMessage]
    ) -> tuple[int, list[int]]:
        """Store several uploaded messages, all or none (one transaction; the quota checked
        for their sum); returns (UIDVALIDITY, their UIDs) after commit."""
        scope, user_id = self.owner(principal)
        box = await self.get(principal, name)
        clean = [
            NewMessage(m.raw, tuple(normalise_flag(f) for f in m.flags), m.internal_date)
            for m in messages
        ]
        delivered = await self._store.file_many(scope.tenant_id, user_id, box.name, clean)
        return box.uidvalidity, [item.uid for item in delivered]

    async def message(
        self, principal: Principal, name: str, uid: int, uidvalidity: int | None = None
    ) -> bytes:
        """The content of the user's message ``uid`` in their mailbox ``name`` (checked
        against ``uidvalidity`` when given): what an IMAP URL names (CATENATE)."""
        scope, user_id = self.owner(principal)
        box = await self._row(scope, user_id, name)
        if uidvalidity is not None and int(box["uidvalidity"]) != uidvalidity:
            raise NotFound(f"{name} has another UIDVALIDITY now")
        async with transaction(self._db) as tx:
            rows = await (await tx.scoped(scope)).messages.by_uids(box["id"], [uid])
        if not rows:
            raise NotFound(f"no message {uid} in {name}")
        return await self._content.read(scope, rows[0]["blob"])
