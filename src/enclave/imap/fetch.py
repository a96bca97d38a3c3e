"""Rendering FETCH items for one message (RFC 3501 section 7.4.2, RFC 7162 MODSEQ)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from enclave.core.mail.mailboxes import MessageRow
from enclave.imap.wire import response
from enclave.imap.wire.commands import FetchItem
from enclave.imap.wire.message import Message

CONTENT_ITEMS = frozenset(
    {"ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822", "RFC822.HEADER", "RFC822.TEXT"}
)
SETS_SEEN = frozenset({"RFC822", "RFC822.TEXT"})


def needs_content(items: list[FetchItem]) -> bool:
    return any(item.section is not None or item.name in CONTENT_ITEMS for item in items)


def sets_seen(items: list[FetchItem]) -> bool:
    return any(
        (item.section is not None and not item.peek) or item.name in SETS_SEEN for item in items
    )


def _partial(data: bytes, item: FetchItem) -> bytes:
    if item.partial is None:
        return data
    start, length = item.partial
    return data[start : start + length]


async def render(
    row: MessageRow,
    flags: frozenset[str],
    items: list[FetchItem],
    load: Callable[[], Awaitable[bytes]],
    *,
    with_uid: bool,
    with_modseq: bool,
) -> list[tuple[bytes, bytes]]:
    """The (label, value) pairs of one FETCH response line."""
    out: list[tuple[bytes, bytes]] = []
    names = [item.name for item in items]
    if with_uid and "UID" not in names:
        out.append((b"UID", b"%d" % row.uid))
    message: Message | None = None
    if needs_content(items):
        message = Message(await load())
    for item in items:
        name = item.name
        if item.section is not None:
            assert message is not None
            data = message.section(item.section)
            value = response.literal(_partial(data, item)) if data is not None else b"NIL"
            out.append((item.label.encode(), value))
        elif name == "UID":
            out.append((b"UID", b"%d" % row.uid))
        elif name == "FLAGS":
            out.append((b"FLAGS", response.flags(sorted(flags))))
        elif name == "INTERNALDATE":
            out.append((b"INTERNALDATE", response.date_time(row.internal_date)))
        elif name == "RFC822.SIZE":
            out.append((b"RFC822.SIZE", b"%d" % row.size))
        elif name == "MODSEQ":
            out.append((b"MODSEQ", b"(%d)" % row.modseq))
        else:
            assert message is not None
            if name == "ENVELOPE":
                out.append((b"ENVELOPE", message.envelope()))
            elif name == "BODYSTRUCTURE":
                out.append((b"BODYSTRUCTURE", message.bodystructure(extended=True)))
            elif name == "BODY":
                out.append((b"BODY", message.bodystructure(extended=False)))
            elif name == "RFC822":
                out.append((b"RFC822", response.literal(message.section("") or b"")))
            elif name == "RFC822.HEADER":
                out.append((b"RFC822.HEADER", response.literal(message.section("HEADER") or b"")))
            elif name == "RFC822.TEXT":
                out.append((b"RFC822.TEXT", response.literal(message.section("TEXT") or b"")))
    if with_modseq and "MODSEQ" not in names:
        out.append((b"MODSEQ", b"(%d)" % row.modseq))
    return out
