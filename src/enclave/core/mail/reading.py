"""Mail as a person reads it in the web app: folders with their counts, a page of a folder's
messages (newest first) from the metadata sealed at delivery, and one message opened for
reading (its text, its HTML made safe, its attachments).

Everything goes through ``Mailboxes`` or, for the sealed metadata, a read of the same rows in
the principal's own scope: a page of fifty messages opens fifty metadata records whatever the
size of the folder, and parsing a message runs off the event loop.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import transaction
from enclave.core import cpu
from enclave.core.content import ContentStore
from enclave.core.errors import NotFound
from enclave.core.mail.html import safe_html
from enclave.core.mail.mailboxes import Mailboxes, MailboxInfo, MessageRow
from enclave.core.mail.store import INBOX, open_meta
from enclave.core.mail.text import decoded
from enclave.core.principal import Principal

PAGE_MAX = 200


@dataclass(frozen=True)
class Folder:
    name: str
    special_use: str | None
    total: int
    unseen: int


@dataclass(frozen=True)
class Summary:
    uid: int
    subject: str
    sender: str  # a display name, or the address
    sent: datetime | None
    received: datetime
    size: int
    seen: bool
    flagged: bool
    attachments: bool


@dataclass(frozen=True)
class Page:
    folder: MailboxInfo
    total: int
    offset: int
    messages: list[Summary]


@dataclass(frozen=True)
class Attachment:
    index: int  # the part's position in a walk of the message
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class Reading:
    uid: int
    subject: str
    sender: str
    to: list[str]
    cc: list[str]
    sent: datetime | None
    text: str | None
    html: str | None  # sanitised (``html.safe_html``); remote resources still named
    remote: bool  # the HTML names remote resources (blocked until the reader allows them)
    attachments: list[Attachment]
    flagged: bool
    message_id: str | None
    references: str | None
    reply_address: str  # Reply-To if given, else From


SPECIAL_ORDER = ("\\Drafts", "\\Sent", "\\Archive", "\\Junk", "\\Trash")


def _folder_order(box: MailboxInfo) -> tuple[int, str]:
    if box.name == INBOX:
        return 0, ""
    if box.special_use in SPECIAL_ORDER:
        return 1 + SPECIAL_ORDER.index(box.special_use), box.name
    return len(SPECIAL_ORDER) + 1, box.name.lower()


def _date(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError):
        return None


def _sender(value: str | None) -> str:
    name, address = parseaddr(decoded((value or "").encode()))
    return name or address or "(unknown sender)"


def _has_attachments(structure: dict[str, Any]) -> bool:
    if structure.get("disposition") == "attachment" or structure.get("filename"):
        return True
    return any(_has_attachments(part) for part in structure.get("parts") or [])


def _summary(
    uid: int, flags: frozenset[str], size: int, when: datetime, meta: dict[str, Any]
) -> Summary:
    envelope = meta.get("envelope") or {}
    return Summary(
        uid=uid,
        subject=decoded((envelope.get("subject") or "").encode()) or "(no subject)",
        sender=_sender(envelope.get("from")),
        sent=_date(envelope.get("date")),
        received=when,
        size=size,
        seen="\\Seen" in flags,
        flagged="\\Flagged" in flags,
        attachments=_has_attachments(meta.get("structure") or {}),
    )


def parse_for_reading(raw: bytes) -> dict[str, Any]:
    """What ``Reading`` shows of a message, as plain data (run in a worker)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = html = None
    for kind in ("plain", "html"):
        part = message.get_body(preferencelist=(kind,))
        if part is not None:
            try:
                content = str(part.get_content())
            except (LookupError, ValueError):
                continue
            if kind == "plain":
                text = content
            else:
                html = content
    attachments = []
    for index, part in enumerate(message.walk()):
        if part.is_multipart() or part.get_content_disposition() not in ("attachment", "inline"):
            continue
        if part.get_content_disposition() == "inline" and not part.get_filename():
            continue
        payload = part.get_payload(decode=True)
        attachments.append(
            {
                "index": index,
                "filename": part.get_filename() or f"part-{index}",
                "content_type": part.get_content_type(),
                "size": len(payload) if isinstance(payload, bytes) else 0,
            }
        )
    safe, remote = safe_html(html) if html is not None else (None, False)
    return {
        "subject": str(message.get("subject", "")) or "(no subject)",
        "from": _sender(str(message.get("from", ""))),
        "to": [a for _, a in getaddresses([str(v) for v in message.get_all("to", [])]) if a],
        "cc": [a for _, a in getaddresses([str(v) for v in message.get_all("cc", [])]) if a],
        "date": str(message.get("date", "")) or None,
        "message_id": str(message.get("message-id", "")).strip() or None,
        "references": " ".join(str(message.get("references", "")).split()) or None,
        "reply_address": parseaddr(str(message.get("reply-to") or message.get("from", "")))[1],
        "text": text,
        "html": safe,
        "remote": remote,
        "attachments": attachments,
    }


def part_of(raw: bytes, index: int) -> tuple[str, str, bytes] | None:
    """(file name, content type, decoded bytes) of the part at ``index`` (run in a worker)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    for position, part in enumerate(message.walk()):
        if position == index and not part.is_multipart():
            payload = part.get_payload(decode=True)
            name = part.get_filename() or f"part-{index}"
            return name, part.get_content_type(), payload if isinstance(payload, bytes) else b""
    return None


class MailReader:
    def __init__(self, db: Database, content: ContentStore, mailboxes: Mailboxes) -> None:
        self._db = db
        self._content = content
        self._mailboxes = mailboxes

    async def folders(self, principal: Principal) -> list[Folder]:
        """Every selectable folder with its counts: INBOX, the special ones, then the rest
        (counted by the database in one statement, whatever the folders hold)."""
        boxes = sorted(await self._mailboxes.list_all(principal), key=_folder_order)
        boxes = [box for box in boxes if not box.noselect]
        scope, _ = Mailboxes.owner(principal)
        async with transaction(self._db) as tx:
            counts = await (await tx.scoped(scope)).messages.counts([b.id for b in boxes])
        return [Folder(box.name, box.special_use, *counts.get(box.id, (0, 0))) for box in boxes]

    async def page(self, principal: Principal, name: str, offset: int, limit: int) -> Page:
        """Messages ``offset`` to ``offset + limit`` of the folder, newest first: only that
        page's rows and metadata are read, so a large folder opens like a small one."""
        box = await self._mailboxes.get(principal, name)
        scope, _ = Mailboxes.owner(principal)
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            total = (await scoped.messages.counts([box.id])).get(box.id, (0, 0))[0]
            wanted = await scoped.messages.newest_uids(box.id, offset, min(limit, PAGE_MAX))
        rows = await self._mailboxes.rows(principal, box.id, sorted(wanted))
        metas = await self._metas(principal, [row.id for row in rows])
        by_uid = {
            row.uid: _summary(row.uid, row.flags, row.size, row.internal_date, metas[row.id])
            for row in rows
            if row.id in metas
        }
        summaries = [by_uid[uid] for uid in wanted if uid in by_uid]
        return Page(box, total, offset, summaries)

    async def _metas(self, principal: Principal, ids: list[str]) -> dict[str, dict[str, Any]]:
        scope, _ = Mailboxes.owner(principal)
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            rows = await scoped.messages.metas(ids)
            sealers = await self._content.sealers(tx, scope, [row["blob"] for row in rows])
        return {
            row["id"]: open_meta(sealers[row["blob"]], row["id"], row["meta"])
            for row in rows
            if row["blob"] in sealers
        }

    async def _raw(
        self, principal: Principal, name: str, uid: int
    ) -> tuple[MailboxInfo, MessageRow, bytes]:
        box = await self._mailboxes.get(principal, name)
        rows = await self._mailboxes.rows(principal, box.id, [uid])
        if not rows:
            raise NotFound(f"no message {uid} in {name}")
        return box, rows[0], await self._mailboxes.content(principal, rows[0])

    async def read(self, principal: Principal, name: str, uid: int) -> Reading:
        """The message, parsed for reading, and marked as read."""
        box, row, raw = await self._raw(principal, name, uid)
        parsed = await cpu.run(parse_for_reading, raw, size=len(raw))
        await self._mailboxes.store(principal, box.id, [uid], "add", ["\\Seen"])
        return Reading(
            uid=uid,
            subject=parsed["subject"],
            sender=parsed["from"],
            to=parsed["to"],
            cc=parsed["cc"],
            sent=_date(parsed["date"]),
            text=parsed["text"],
            html=parsed["html"],
            remote=parsed["remote"],
            attachments=[Attachment(**each) for each in parsed["attachments"]],
            flagged="\\Flagged" in row.flags,
            message_id=parsed["message_id"],
            references=parsed["references"],
            reply_address=parsed["reply_address"],
        )

    async def attachment(
        self, principal: Principal, name: str, uid: int, index: int
    ) -> tuple[str, str, bytes]:
        _, _, raw = await self._raw(principal, name, uid)
        found = await cpu.run(part_of, raw, index, size=len(raw))
        if found is None:
            raise NotFound(f"message {uid} has no part {index}")
        return found

    # --- what a reader does with a message ----------------------------------------------

    async def mark(
        self, principal: Principal, name: str, uid: int, *, seen: bool | None = None,
        flagged: bool | None = None,
    ) -> None:  # fmt: skip
        box = await self._mailboxes.get(principal, name)
        for flag, wanted in (("\\Seen", seen), ("\\Flagged", flagged)):
            if wanted is not None:
                mode = "add" if wanted else "remove"
                await self._mailboxes.store(principal, box.id, [uid], mode, [flag])

    async def move(self, principal: Principal, name: str, uid: int, target: str) -> None:
        box = await self._mailboxes.get(principal, name)
        await self._mailboxes.get(principal, target)  # NotFound names the folder
        await self._mailboxes.copy(principal, box.id, [uid], target, move=True)

    async def trash(self, principal: Principal, name: str, uid: int) -> None:
        """To the Trash folder; from the Trash, gone for good."""
        box = await self._mailboxes.get(principal, name)
        trash = next(
            (b for b in await self._mailboxes.list_all(principal) if b.special_use == "\\Trash"),
            None,
        )
        if trash is None or trash.id == box.id:
            await self._mailboxes.store(principal, box.id, [uid], "add", ["\\Deleted"])
            await self._mailboxes.expunge(principal, box.id, [uid])
        else:
            await self._mailboxes.copy(principal, box.id, [uid], trash.name, move=True)
