"""Rendering FETCH items for one message (RFC 3501 section 7.4.2, RFC 7162 MODSEQ).

ENVELOPE, BODY, BODYSTRUCTURE and the header block are rendered once, at delivery
(``derive``), and kept sealed with the message's metadata, so a client listing a mailbox costs
no message reads; the whole message is read only for items the kept forms cannot answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from enclave.core.mail.mailboxes import MessageRow
from enclave.imap.wire import response
from enclave.imap.wire.commands import FetchItem
from enclave.imap.wire.message import Message, is_header_section

CONTENT_ITEMS = frozenset(
    {"ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822", "RFC822.HEADER", "RFC822.TEXT"}
)
SETS_SEEN = frozenset({"RFC822", "RFC822.TEXT"})
RFC822_SECTIONS = {"RFC822": "", "RFC822.HEADER": "HEADER", "RFC822.TEXT": "TEXT"}


def needs_content(items: list[FetchItem]) -> bool:
    return any(item.section is not None or item.name in CONTENT_ITEMS for item in items)


def sets_seen(items: list[FetchItem]) -> bool:
    return any(
        (item.section is not None and not item.peek) or item.name in SETS_SEEN for item in items
    )


# Bump when the rendering in wire.message changes, so forms kept by an older one are not used.
FORMS_VERSION = "1"


def derive(raw: bytes) -> dict[str, str]:
    """The forms kept with each message at delivery (bytes as latin-1, which round-trips)."""
    message = Message(raw)
    return {
        "imap": FORMS_VERSION,
        "envelope": message.envelope().decode("latin-1"),
        "body": message.bodystructure(extended=False).decode("latin-1"),
        "bodystructure": message.bodystructure(extended=True).decode("latin-1"),
        "header": (message.section("HEADER") or b"").decode("latin-1"),
    }


def kept_header(forms: dict[str, str] | None) -> bytes | None:
    """The header block kept at delivery, if the forms are current."""
    if forms is None or forms.get("imap") != FORMS_VERSION:
        return None
    return forms["header"].encode("latin-1")


class Source:
    """One message's content for FETCH: the kept forms where they answer, otherwise the
    whole message, read at most once."""

    def __init__(self, forms: dict[str, str] | None, load: Callable[[], Awaitable[bytes]]):
        current = forms is not None and forms.get("imap") == FORMS_VERSION
        self._forms = forms if current else None
        self._load = load
        self._message: Message | None = None
        self._header: Message | None = None

    async def message(self) -> Message:
        if self._message is None:
            self._message = Message(await self._load())
        return self._message

    async def form(self, name: str) -> bytes:
        if self._forms is not None:
            return self._forms[name].encode("latin-1")
        message = await self.message()
        if name == "envelope":
            return message.envelope()
        return message.bodystructure(extended=name == "bodystructure")

    async def section(self, spec: str) -> bytes | None:
        if self._forms is not None and is_header_section(spec):
            if self._header is None:
                self._header = Message(self._forms["header"].encode("latin-1"))
            return self._header.section(spec)
        return (await self.message()).section(spec)


def _partial(data: bytes, item: FetchItem) -> bytes:
    if item.partial is None:
        return data
    start, length = item.partial
    return data[start : start + length]


async def render(
    row: MessageRow,
    flags: frozenset[str],
    items: list[FetchItem],
    source: Source,
    *,
    with_uid: bool,
    with_modseq: bool,
) -> list[tuple[bytes, bytes]]:
    """The (label, value) pairs of one FETCH response line."""
    out: list[tuple[bytes, bytes]] = []
    names = [item.name for item in items]
    if with_uid and "UID" not in names:
        out.append((b"UID", b"%d" % row.uid))
    for item in items:
        name = item.name
        if item.section is not None:
            data = await source.section(item.section)
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
        elif name in ("ENVELOPE", "BODY", "BODYSTRUCTURE"):
            out.append((name.encode(), await source.form(name.lower())))
        elif name in RFC822_SECTIONS:
            data = await source.section(RFC822_SECTIONS[name])
            out.append((name.encode(), response.literal(data or b"")))
    if with_modseq and "MODSEQ" not in names:
        out.append((b"MODSEQ", b"(%d)" % row.modseq))
    return out
