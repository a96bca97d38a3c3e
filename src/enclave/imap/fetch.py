"""Rendering FETCH items for one message (RFC 3501 section 7.4.2, RFC 7162 MODSEQ).

ENVELOPE, BODY, BODYSTRUCTURE and the header block are rendered once, at delivery
(``derive``), and kept sealed with the message's metadata, so a client listing a mailbox costs
no message reads; the whole message is read only for items the kept forms cannot answer.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from enclave.core.mail.mailboxes import MessageRow
from enclave.imap.wire import binary, response
from enclave.imap.wire.commands import FetchItem
from enclave.imap.wire.headers import Field, envelope, split_fields
from enclave.imap.wire.message import Message, is_header_section

T = TypeVar("T")

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


# What the kept forms may grow to, whatever the message (its bytes are stored whole anyway):
# ENVELOPE names the first MAX_ADDRESSES addresses of each address field and at most
# MAX_VALUE octets of any field; a header block over MAX_KEPT_HEADER is kept without the
# fields that do not fit, marked "partial" (header sections are then read from the message).
MAX_ADDRESSES = 1000
MAX_VALUE = 64 * 1024
MAX_KEPT_HEADER = 256 * 1024
ADDRESS_FIELDS = frozenset({b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc"})
ENVELOPE_FIELDS = ADDRESS_FIELDS | {b"date", b"subject", b"in-reply-to", b"message-id"}
_ADDRESS_SYNTAX = re.compile(rb'\\.|["(),<>]', re.DOTALL)
INLINE_PARSE = 256 * 1024  # larger messages are parsed in a thread when FETCH needs them


def first_addresses(value: bytes, budget: int = MAX_ADDRESSES) -> tuple[bytes, int]:
    """The leading part of an address list holding at most ``budget`` whole addresses in at
    most MAX_VALUE octets (commas in quoted strings, comments and routes do not count), and
    about how many addresses it holds."""
    if len(value) <= MAX_VALUE and value.count(b",") < budget:
        return value, value.count(b",") + 1
    quoted, comments, angles, commas, cut = False, 0, 0, 0, 0
    for found in _ADDRESS_SYNTAX.finditer(value, 0, min(len(value), MAX_VALUE)):
        char = found.group()
        if len(char) == 2:  # a quoted pair
            continue
        if quoted:
            quoted = char != b'"'
        elif comments:
            comments += {b"(": 1, b")": -1}.get(char, 0)
        elif char == b'"':
            quoted = True
        elif char == b"(":
            comments = 1
        elif char in b"<>":
            angles = max(0, angles + (1 if char == b"<" else -1))
        elif char == b"," and not angles:
            commas, cut = commas + 1, found.start()
            if commas >= budget:
                return value[:cut], commas
    if len(value) <= MAX_VALUE:
        return value, commas + 1
    return value[:cut], commas


def _envelope_fields(fields: list[Field]) -> list[Field]:
    """The fields ENVELOPE is made of, bounded: MAX_VALUE octets each, MAX_ADDRESSES
    addresses for each address field name (over all the fields of that name)."""
    out = []
    left = dict.fromkeys(ADDRESS_FIELDS, MAX_ADDRESSES)
    for f in fields:
        if f.key is None or f.key not in ENVELOPE_FIELDS:
            continue
        if f.key in left:
            if left[f.key] <= 0:
                continue
            value, used = first_addresses(f.value, left[f.key])
            left[f.key] -= used
        else:
            value = f.value[:MAX_VALUE]
        out.append(f if value is f.value else Field(f.key, b"", value))
    return out


def _kept_header(fields: list[Field], header: bytes) -> tuple[bytes, bool]:
    """The header block to keep, and whether fields were left out of it."""
    if len(header) <= MAX_KEPT_HEADER:
        return header, False
    kept, size = [], 2
    for f in fields:
        if f.key and size + len(f.raw) <= MAX_KEPT_HEADER:
            kept.append(f.raw if f.raw.endswith(b"\n") else f.raw + b"\r\n")
            size += len(kept[-1])
    return b"".join(kept) + b"\r\n", True


def _forms(header: bytes, body: bytes, structure: bytes) -> dict[str, str]:
    fields = split_fields(header)
    kept, partial = _kept_header(fields, header)
    forms = {
        "imap": FORMS_VERSION,
        "envelope": envelope(_envelope_fields(fields)).decode("latin-1"),
        "body": body.decode("latin-1"),
        "bodystructure": structure.decode("latin-1"),
        "header": kept.decode("latin-1"),
    }
    if partial:
        forms["partial"] = "1"
    return forms


def derive(raw: bytes) -> dict[str, str]:
    """The forms kept with each message at delivery (bytes as latin-1, which round-trips).
    Input-sized work: callers run it in a thread. Never raises: a message whose structure
    cannot be rendered gets the ``minimal`` forms."""
    message = Message(raw)
    try:
        header = message.section("HEADER") or b""
        body = message.bodystructure(extended=False)
        structure = message.bodystructure(extended=True)
        return _forms(header, body, structure)
    except Exception:  # hostile input must never cost the message
        return minimal(raw)


def minimal(raw: bytes) -> dict[str, str]:
    """Degraded forms, cheap to make for any message: the ENVELOPE from its (bounded) header,
    the body as one text part. For messages ``derive`` failed on or took too long for."""
    end = raw.find(b"\r\n\r\n", 0, 4 * MAX_KEPT_HEADER)
    header = raw[: end + 4] if end >= 0 else raw[: min(len(raw), MAX_KEPT_HEADER)]
    size, lines = len(raw) - len(header), raw.count(b"\n", len(header))
    body = b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "8BIT" %d %d)' % (size, lines)
    structure = body[:-1] + b" NIL NIL NIL NIL)"
    return _forms(header, body, structure)


def kept_header(forms: dict[str, str] | None) -> bytes | None:
    """The header block kept at delivery, if the forms are current (it may lack fields that
    did not fit: good enough for SEARCH, not for FETCH)."""
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
        self._binary: dict[str, bytes | None] = {}  # BINARY and BINARY.SIZE of one part

    async def message(self) -> Message:
        if self._message is None:
            self._message = Message(await self._load())
        return self._message

    @staticmethod
    async def _parsed(message: Message, call: Callable[[Message], T]) -> T:
        """``call(message)``: in a thread when parsing the message is input-sized work."""
        if message.size > INLINE_PARSE:
            return await asyncio.to_thread(call, message)
        return call(message)

    async def form(self, name: str) -> bytes:
        if self._forms is not None:
            return self._forms[name].encode("latin-1")
        message = await self.message()
        if name == "envelope":
            return await self._parsed(message, Message.envelope)
        extended = name == "bodystructure"
        return await self._parsed(message, lambda m: m.bodystructure(extended=extended))

    async def section(self, spec: str) -> bytes | None:
        forms = self._forms
        if forms is not None and not forms.get("partial") and is_header_section(spec):
            if self._header is None:
                self._header = Message(forms["header"].encode("latin-1"))
            return await self._parsed(self._header, lambda m: m.section(spec))
        return await self._parsed(await self.message(), lambda m: m.section(spec))

    async def binary(self, spec: str) -> bytes | None:
        """BINARY[spec] (RFC 3516): the part with its transfer encoding undone. Raises
        binary.UnknownCTE."""
        if spec not in self._binary:
            message = await self.message()
            self._binary[spec] = await self._parsed(message, lambda m: binary.section(m, spec))
        return self._binary[spec]


def _binary_value(data: bytes | None) -> bytes:
    """A BINARY answer: a literal8 when it holds NUL (RFC 3516 4.3), else a literal."""
    if data is None:
        return b"NIL"
    if binary.needs_literal8(data):
        return b"~" + response.literal(data)
    return response.literal(data)


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
    modseq: int,
    with_modseq: bool,
) -> list[tuple[bytes, bytes]]:
    """The (label, value) pairs of one FETCH response line (``modseq``: the message's as
    this session knows it)."""
    out: list[tuple[bytes, bytes]] = []
    names = [item.name for item in items]
    if with_uid and "UID" not in names:
        out.append((b"UID", b"%d" % row.uid))
    for item in items:
        name = item.name
        if name == "BINARY.SIZE":
            found = await source.binary(item.section or "")
            out.append((item.label.encode(), b"%d" % len(found or b"")))
        elif name == "BINARY":
            found = await source.binary(item.section or "")
            data = _partial(found, item) if found is not None else None
            out.append((item.label.encode(), _binary_value(data)))
        elif item.section is not None:
            data = await source.section(item.section)
            value = response.literal(_partial(data, item)) if data is not None else b"NIL"
            out.append((item.label.encode(), value))
        elif name == "UID":
            out.append((b"UID", b"%d" % row.uid))
        elif name == "FLAGS":
            out.append((b"FLAGS", response.flag_set(flags)))
        elif name == "INTERNALDATE":
            out.append((b"INTERNALDATE", response.date_time(row.internal_date)))
        elif name == "RFC822.SIZE":
            out.append((b"RFC822.SIZE", b"%d" % row.size))
        elif name == "MODSEQ":
            out.append((b"MODSEQ", b"(%d)" % modseq))
        elif name in ("ENVELOPE", "BODY", "BODYSTRUCTURE"):
            out.append((name.encode(), await source.form(name.lower())))
        elif name in RFC822_SECTIONS:
            data = await source.section(RFC822_SECTIONS[name])
            out.append((name.encode(), response.literal(data or b"")))
    if with_modseq and "MODSEQ" not in names:
        out.append((b"MODSEQ", b"(%d)" % modseq))
    return out
