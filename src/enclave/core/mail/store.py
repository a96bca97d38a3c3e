"""Mailboxes and messages. The raw message is an encrypted content object stored once per
tenant however many recipients it has; each recipient's copy is a row with its own UID, flags
and modification sequence, committed in the same transaction as the object's references."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Scoped, Tx, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core import clock, cpu
from enclave.core.content import ContentStore, ObjectSealer, StoredObject
from enclave.core.errors import IntegrityError, NotFound, QuotaExceeded
from enclave.core.events import ChangeBus
from enclave.core.mail.parse import ENVELOPE_HEADERS, VERSION, summarise
from enclave.core.search.index import MAIL_KIND
from enclave.core.search.queue import IndexQueue

INBOX = "INBOX"
# The special-use set (RFC 6154) every user gets, created on first use.
DEFAULT_MAILBOXES = (
    (INBOX, None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)
DEFAULT_NAMES = frozenset(name for name, _ in DEFAULT_MAILBOXES)
# The meta is a function of the content alone, so it is bound to the content object (whose
# data key seals it) and copies of the row stay readable. Rows sealed before this carried
# their message id in the label.
META_LABEL = "message-meta"

# Forms of a message that a front end wants kept with it, computed once at delivery from the
# raw bytes and sealed with the meta (IMAP keeps its ENVELOPE and BODYSTRUCTURE there). The
# store treats them as opaque strings.
Derive = Callable[[bytes], dict[str, str]]

# Summarising is input-sized work (a header can fold 300,000 addresses; MIME can nest without
# end): it runs in a worker process (or a thread), at most PARSE_SLOTS at once, never on the
# event loop.
# After PARSE_SECONDS the message is stored with degraded forms (the caller's ``degraded``
# and a minimal summary) and the thread's late result is dropped; the message itself is
# always kept whole. Header values in the summary are cut at MAX_SUMMARY_VALUE octets.
PARSE_SLOTS = 2
PARSE_SECONDS = 20.0
MAX_SUMMARY_VALUE = 16 * 1024


def _summary(raw: bytes, derive: Derive | None, degraded: Derive | None) -> dict[str, Any]:
    """In a worker. Never raises: hostile structure must not cost the message."""
    try:
        summary = summarise(raw)
    except Exception:  # e.g. RecursionError for MIME nested a thousand levels deep
        summary = _minimal_summary(raw)
    envelope = summary["envelope"]
    for name, value in envelope.items():
        if value is not None and len(value) > MAX_SUMMARY_VALUE:
            envelope[name] = value[:MAX_SUMMARY_VALUE]
    if derive is not None:
        try:
            summary["derived"] = derive(raw)
        except Exception:
            if degraded is None:
                raise
            summary["derived"] = degraded(raw)
    return summary


def open_meta(sealer: ObjectSealer, message_id: str, sealed: bytes) -> dict[str, Any]:
    try:
        plain = sealer.open(META_LABEL, sealed)
    except IntegrityError:
        plain = sealer.open(f"{META_LABEL}/{message_id}", sealed)
    result: dict[str, Any] = json.loads(plain)
    return result


@dataclass(frozen=True)
class Delivered:
    user_id: str
    mailbox: str
    uid: int
    message_id: str
    mailbox_id: str


@dataclass(frozen=True)
class NewMessage:
    """A message a user files in one of their mailboxes (IMAP APPEND)."""

    raw: bytes
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None


@dataclass(frozen=True)
class StoredMessage:
    id: str
    mailbox: str
    uid: int
    size: int
    flags: tuple[str, ...]
    modseq: int
    internal_date: datetime
    blob: str


async def add_mailbox(
    scoped: Scoped,
    user_id: str,
    name: str,
    special_use: str | None = None,
    *,
    subscribe: bool = False,
) -> str:
    """A new, empty mailbox; returns its id. UIDVALIDITY is the creation time, or one more
    than the last the user's mailboxes had, whichever is larger (RFC 3501 2.3.1.1: a mailbox
    deleted and created again, or renamed and replaced, must not reuse the old value)."""
    mailbox_id = str(uuid.uuid4())
    user = await scoped.users.by_id(user_id)
    last = int(user["last_uidvalidity"]) if user is not None else 0
    uidvalidity = max(int(time.time()), last + 1)
    await scoped.users.change(user_id, last_uidvalidity=uidvalidity)
    await scoped.mailboxes.add(
        id=mailbox_id,
        user_id=user_id,
        name=name,
        special_use=special_use,
        uidvalidity=uidvalidity,
        uidnext=1,
        highestmodseq=1,
        recent_uid=1,
        noselect=False,
        created_at=clock.now(),
    )
    if subscribe:
        await scoped.subscriptions.add(user_id, name)
    return mailbox_id


async def ensure_mailboxes(scoped: Scoped, user_id: str) -> list[RowMapping]:
    """The default set, subscribed (clients show subscribed folders). Returns the user's
    mailboxes (one query when none was missing)."""
    rows = await scoped.mailboxes.of_user(user_id)
    existing = {row["name"] for row in rows}
    missing = [(name, use) for name, use in DEFAULT_MAILBOXES if name not in existing]
    for name, special_use in missing:
        await add_mailbox(scoped, user_id, name, special_use, subscribe=True)
    return await scoped.mailboxes.of_user(user_id) if missing else rows


class MailStore:
    def __init__(
        self,
        db: Database,
        content: ContentStore,
        bus: ChangeBus,
        derive: Derive | None = None,
        degraded: Derive | None = None,
        index: IndexQueue | None = None,
    ) -> None:
        self._db = db
        self._content = content
        self._bus = bus
        self._index = index
        self._derive = derive
        self._degraded = degraded
        self._slots = asyncio.Semaphore(PARSE_SLOTS)

    async def summary(self, raw: bytes) -> dict[str, Any]:
        """What the meta keeps about ``raw``, computed off the event loop (in a worker
        process, ``core.cpu``) and in bounded time; a slot is held until the work really
        ends, even after a time-out."""
        await self._slots.acquire()
        try:
            running = asyncio.ensure_future(
                cpu.run(_summary, raw, self._derive, self._degraded, size=len(raw))
            )
        except BaseException:
            self._slots.release()
            raise
        running.add_done_callback(self._parsed)
        try:
            return await asyncio.wait_for(asyncio.shield(running), PARSE_SECONDS)
        except (TimeoutError, cpu.WorkerLost):
            summary = _minimal_summary(raw)
            if self._degraded is not None:
                summary["derived"] = await asyncio.to_thread(self._degraded, raw)
            return summary

    def _parsed(self, running: asyncio.Future[Any]) -> None:
        self._slots.release()
        if not running.cancelled():
            running.exception()  # retrieved: a late failure after a time-out is not news

    async def deliver(
        self,
        tenant_id: str,
        user_ids: list[str],
        raw: bytes,
        *,
        special_use: str | None = None,
        mailbox: str | None = None,
        flags: tuple[str, ...] = (),
        internal_date: datetime | None = None,
    ) -> list[Delivered]:
        """Store ``raw`` once and file a copy in each user's INBOX (or the named mailbox, or
        the one with the given special use). All or nothing: returns after the commit is
        durable."""
        scope = TenantScope(tenant_id)
        meta = json.dumps(await self.summary(raw)).encode()
        when = internal_date or clock.now()
        flag_text = " ".join(sorted(set(flags)))
        delivered: list[Delivered] = []

        async def attach(tx: Tx, scoped: Scoped, stored: StoredObject, sealer: ObjectSealer) -> int:
            delivered.clear()
            for user_id in dict.fromkeys(user_ids):
                await self._check_quota(scoped, user_id, stored.size)
                boxes = await ensure_mailboxes(scoped, user_id)
                box = next(
                    (
                        row
                        for row in boxes
                        if (row["special_use"] == special_use if special_use else
                            row["name"] == (mailbox or INBOX))
                    ),
                    None,
                )  # fmt: skip
                if box is None:
                    raise NotFound(f"no mailbox {special_use or mailbox or INBOX}")
                uid, modseq = await scoped.mailboxes.allocate(box["id"], 1)
                message_id = str(uuid.uuid4())
                await scoped.messages.add(
                    id=message_id,
                    mailbox_id=box["id"],
                    uid=uid,
                    blob=stored.name,
                    size=stored.size,
                    internal_date=when,
                    flags=flag_text,
                    modseq=modseq,
                    meta=sealer.seal(META_LABEL, meta),
                )
                delivered.append(Delivered(user_id, box["name"], uid, message_id, box["id"]))
            await self._indexed(tx, scoped, [stored.name])
            return len(delivered)

        await self._content.put(scope, raw, attach)
        for item in delivered:
            self._bus.publish(item.mailbox_id)
        return delivered

    async def file_many(
        self, tenant_id: str, user_id: str, mailbox: str, messages: list[NewMessage]
    ) -> list[Delivered]:
        """File several messages in one of the user's mailboxes in ONE transaction (IMAP
        MULTIAPPEND, RFC 3502): all of them or none. The quota is checked once, for their sum;
        they get consecutive UIDs and one modseq. Returns after the commit is durable."""
        scope = TenantScope(tenant_id)
        metas = [json.dumps(await self.summary(m.raw)).encode() for m in messages]
        now = clock.now()
        delivered: list[Delivered] = []

        async def attach(
            tx: Tx, scoped: Scoped, objects: list[tuple[StoredObject, ObjectSealer]]
        ) -> list[int]:
            delivered.clear()
            await self._check_quota(scoped, user_id, sum(stored.size for stored, _ in objects))
            await ensure_mailboxes(scoped, user_id)
            box = await scoped.mailboxes.by_name(user_id, mailbox)
            if box is None:
                raise NotFound(f"no mailbox {mailbox}")
            first, modseq = await scoped.mailboxes.allocate(box["id"], len(objects))
            batch = zip(messages, metas, objects, strict=True)
            for offset, (message, meta, (stored, sealer)) in enumerate(batch):
                message_id = str(uuid.uuid4())
                await scoped.messages.add(
                    id=message_id, mailbox_id=box["id"], uid=first + offset, blob=stored.name,
                    size=stored.size, internal_date=message.internal_date or now,
                    flags=" ".join(sorted(set(message.flags))), modseq=modseq,
                    meta=sealer.seal(META_LABEL, meta),
                )  # fmt: skip
                delivered.append(
                    Delivered(user_id, box["name"], first + offset, message_id, box["id"])
                )
            await self._indexed(tx, scoped, [stored.name for stored, _ in objects])
            return [1] * len(objects)

        await self._content.put_many(scope, [m.raw for m in messages], attach)
        for mailbox_id in dict.fromkeys(item.mailbox_id for item in delivered):
            self._bus.publish(mailbox_id)
        return delivered

    async def _indexed(self, tx: Tx, scoped: Scoped, names: list[str]) -> None:
        """Queue the new content objects for the search index, in the filing transaction."""
        if self._index is not None:
            for name in dict.fromkeys(names):
                await self._index.add(tx, scoped, MAIL_KIND, name)

    @staticmethod
    async def _check_quota(scoped: Scoped, user_id: str, size: int) -> None:
        user = await scoped.users.by_id(user_id)
        if user is None:
            raise NotFound("no such user")
        quota = user["quota_bytes"]
        if quota is not None and await scoped.messages.usage(user_id) + size > quota:
            raise QuotaExceeded(f"{user['email']} is over quota")

    @classmethod
    async def has_room(cls, scoped: Scoped, user_id: str, size: int) -> bool:
        """Would a message of ``size`` bytes fit, in the caller's transaction?"""
        try:
            await cls._check_quota(scoped, user_id, size)
        except QuotaExceeded:
            return False
        return True

    async def room_for(self, tenant_id: str, user_id: str, size: int) -> bool:
        """Would a message of ``size`` bytes fit (checked early, at RCPT time)?"""
        async with transaction(self._db) as tx:
            return await self.has_room(await tx.scoped(TenantScope(tenant_id)), user_id, size)

    async def messages(self, tenant_id: str, user_id: str, mailbox: str) -> list[StoredMessage]:
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(TenantScope(tenant_id))
            box = await scoped.mailboxes.by_name(user_id, mailbox)
            if box is None and mailbox in DEFAULT_NAMES:
                return []  # the default set exists implicitly until first use
            if box is None:
                raise NotFound(f"no mailbox {mailbox}")
            rows = await scoped.messages.in_mailbox(box["id"])
        return [_message(mailbox, row) for row in rows]

    async def meta(self, tenant_id: str, message: StoredMessage) -> dict[str, Any]:
        scope = TenantScope(tenant_id)
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            row = await scoped.messages.by_id(message.id)
            if row is None:
                raise NotFound("no such message")
            sealer = await self._content.sealer(tx, scope, row["blob"])
        return open_meta(sealer, message.id, row["meta"])

    async def raw(self, tenant_id: str, message: StoredMessage) -> bytes:
        return await self._content.read(TenantScope(tenant_id), message.blob)


def _minimal_summary(raw: bytes) -> dict[str, Any]:
    """A summary for a message that could not be summarised (in time): no envelope
    headers, the whole message as one opaque part."""
    return {
        "version": VERSION,
        "envelope": dict.fromkeys(ENVELOPE_HEADERS),
        "structure": {"type": "application", "subtype": "octet-stream", "params": {},
                      "encoding": "7bit", "size": len(raw), "lines": raw.count(b"\n")},
        "degraded": True,
    }  # fmt: skip


def _message(mailbox: str, row: Any) -> StoredMessage:
    return StoredMessage(
        id=row["id"],
        mailbox=mailbox,
        uid=int(row["uid"]),
        size=int(row["size"]),
        flags=tuple(row["flags"].split()),
        modseq=int(row["modseq"]),
        internal_date=row["internal_date"],
        blob=row["blob"],
    )
