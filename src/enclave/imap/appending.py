"""APPEND (RFC 3501 6.3.11) with its extensions: several messages in one command
(MULTIAPPEND, RFC 3502), messages put together from text and IMAP URLs (CATENATE, RFC 4469)
and messages sent as a literal8 (BINARY, RFC 3516).

Each message is assembled first: CATENATE's URLs are resolved through the core as the
signed-in user (``Mailboxes.message``: only that user's own mailboxes, never another user's,
another server's, or a URLAUTH one: ``NO [BADURL url]``), and a literal8 message has its
binary parts base64-encoded (``wire.binary.storable``). Then all of them are stored in ONE
transaction (``Mailboxes.append_many``): a failure (quota, a bad URL, a message too big) leaves
nothing, and the tagged OK carries every new UID (``APPENDUID validity 5:7``).

Bounds: each assembled message is at most APPENDLIMIT octets (``NO [TOOBIG]``; the framer
already refused larger literals before reading them), and one command's messages together at
most MAX_MESSAGES times that, the most the framer lets one command's literals hold. The
messages its URLs name are read once each per command, and at most MAX_MESSAGES times
APPENDLIMIT octets of them (``NO [LIMIT]``): a line of a thousand URLs each taking one octet of
a large message must not make the server decrypt gigabytes. Parsing a referenced message and
converting a large one run in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from enclave.core.errors import Invalid, NotFound
from enclave.core.mail.store import NewMessage
from enclave.imap.fetch import INLINE_PARSE
from enclave.imap.wire import binary, imapurl, response
from enclave.imap.wire.commands import AppendMessage, Request
from enclave.imap.wire.message import Message

if TYPE_CHECKING:
    from enclave.imap.session import Session

T = TypeVar("T")
MAX_MESSAGES = 4  # one command's messages together: at most this many times APPENDLIMIT


class _Reads:
    """The messages one command's URLs have read (each read once), and how much of them."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.octets = 0
        self.seen: dict[tuple[str, int, int | None], bytes] = {}


class _Refused(Exception):
    """The APPEND fails with ``NO [code] text`` and stores nothing."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


async def _sized(size: int, call: Callable[[], T]) -> T:
    """``call()``, in a thread when it works on more than INLINE_PARSE octets."""
    if size > INLINE_PARSE:
        return await asyncio.to_thread(call)
    return call()


async def append(session: Session, request: Request) -> None:
    name = session.mailbox_name(request.args["mailbox"])
    mailboxes = session.services.mailboxes
    try:
        await mailboxes.get(session.user, name)
    except NotFound:
        await session.send(response.tagged(request.tag, "NO", "no such mailbox", "TRYCREATE"))
        return
    messages: list[NewMessage] = []
    total = 0
    reads = _Reads(MAX_MESSAGES * session.append_limit)
    try:
        for message in request.args["messages"]:
            raw = await _assemble(session, message, reads)
            total += len(raw)
            if total > MAX_MESSAGES * session.append_limit:
                raise _Refused("TOOBIG", "the messages together are too large")
            messages.append(NewMessage(raw, message.flags, message.date))
    except _Refused as refusal:
        await session.send(response.tagged(request.tag, "NO", refusal.text, refusal.code))
        return
    validity, uids = await mailboxes.append_many(session.user, name, messages)
    if session.view and session.view.mailbox.name == name:
        await session.refresh(allow_expunge=False)
    uid_set = response.sequence_set(uids).decode()
    await session.ok(request, code=f"APPENDUID {validity} {uid_set}")


async def _assemble(session: Session, message: AppendMessage, reads: _Reads) -> bytes:
    """The message's octets: its literal, or its CATENATE parts one after another."""
    limit = session.append_limit
    pieces: list[bytes] = []
    size = 0
    for kind, value in message.parts:
        piece = value if kind == "TEXT" else await _resolve(session, value, reads)
        size += len(piece)
        if size > limit:
            raise _Refused("TOOBIG", f"the message would be over {limit} octets (APPENDLIMIT)")
        pieces.append(piece)
    raw = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    if not raw:
        raise _Refused("CANNOT", "an empty message cannot be stored")
    if message.binary:
        raw = await _sized(len(raw), lambda: binary.storable(raw))
    return raw


def _foreign(session: Session, url: imapurl.ImapUrl) -> str | None:
    """Why a URL names something other than the signed-in user's own messages (or None)."""
    if url.urlauth:
        return "URLAUTH is not supported"
    if url.host is None:
        return None
    settings = session.services.settings
    ours = {h.lower() for h in settings.deployment.hostnames}
    if settings.smtp.hostname:
        ours.add(settings.smtp.hostname.lower())
    if url.host not in ours:
        return "the URL names another server"
    if url.user is None or url.user.lower() != session.user.name.lower():
        return "the URL names another user"
    return None


async def _resolve(session: Session, raw_url: bytes, reads: _Reads) -> bytes:
    """What a CATENATE URL names, read as the signed-in user; BADURL for anything else."""
    code = imapurl.response_code(raw_url)
    try:
        url = imapurl.parse(raw_url)
    except imapurl.BadUrl as exc:
        raise _Refused(code, str(exc)) from None
    reason = _foreign(session, url)
    if reason is not None:
        raise _Refused(code, reason)
    mailbox, uidvalidity = url.mailbox, url.uidvalidity
    if mailbox is None:  # relative to the selected mailbox, and to its UIDVALIDITY
        if session.view is None:
            raise _Refused(code, "a relative URL needs a selected mailbox")
        mailbox = session.view.mailbox.name
        uidvalidity = session.view.mailbox.uidvalidity
    key = (mailbox, url.uid, uidvalidity)
    if key not in reads.seen:
        try:
            read = await session.services.mailboxes.message(
                session.user, mailbox, url.uid, uidvalidity
            )
        except (NotFound, Invalid):
            raise _Refused(code, "the URL names no message of yours") from None
        reads.octets += len(read)
        if reads.octets > reads.budget:
            raise _Refused("LIMIT", "the URLs of this command name too much mail")
        reads.seen[key] = read
    whole = reads.seen[key]
    if url.section is None:
        return url.cut(whole)
    spec = url.section
    part = await _sized(len(whole), lambda: Message(whole).section(spec))
    if part is None:
        raise _Refused(code, "the message has no such section")
    return url.cut(part)
