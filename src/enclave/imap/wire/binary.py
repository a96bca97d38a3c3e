"""BINARY (RFC 3516): a message part with its Content-Transfer-Encoding undone, and the
opposite for APPEND: binary parts a client uploads are stored base64-encoded. Pure.

``section`` answers ``BINARY[section]``: the part's body decoded (base64 and
quoted-printable; 7bit, 8bit and binary are as they are). A multipart or message/rfc822 part,
or the whole message (``BINARY[]``), is its octets with every part inside decoded, and the
header of each decoded part says ``Content-Transfer-Encoding: binary``. An encoding this
module does not know raises ``UnknownCTE`` (the session answers ``NO [UNKNOWN-CTE]``).

``storable`` is what APPEND keeps of a message sent as a literal8: an IMAP literal must not
carry NUL (RFC 3501 9, CHAR8), so a part whose encoding is ``binary`` or whose body holds NUL
is stored base64-encoded (its header relabelled), and ``BINARY[part]`` gives back exactly the
octets the client sent while ``BODY[part]`` stays a valid literal. Decoding is lenient, as
readers of mail have to be: characters outside the base64 alphabet are skipped, missing
padding is supplied, an ``=`` that starts no escape in quoted-printable is kept as it is.

Work here is input-sized: callers run it in a thread for large messages.
"""

from __future__ import annotations

import base64
import re

from enclave.imap.wire.headers import Field
from enclave.imap.wire.message import (
    _IDENTITY_ENCODINGS,
    _LEAF,
    _MULTIPART,
    _RFC822,
    _SECTION_PART,
    Message,
    _encoding,
    _Entity,
)

KNOWN = _IDENTITY_ENCODINGS | {b"base64", b"quoted-printable"}
BASE64_LINE = 76  # characters per line of the base64 that ``storable`` writes (RFC 2045 6.8)
_NOT_BASE64 = bytes(
    c
    for c in range(256)
    if c not in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
)
_PADDING = re.compile(rb"=+")
# One quoted-printable token: an escape, a soft line break (transport padding allowed before
# it, RFC 2045 6.7 rule 3), or white space at the end of a line (which is padding too).
_QP = re.compile(rb"=([0-9A-Fa-f]{2})|=[ \t]*(?:\r\n|\n|$)|[ \t]+(?=\r\n|\n|$)")


class UnknownCTE(ValueError):
    """A Content-Transfer-Encoding that cannot be undone (RFC 3516 4.3: UNKNOWN-CTE)."""

    def __init__(self, encoding: bytes) -> None:
        super().__init__(f"unknown content transfer encoding {encoding.decode('latin-1')!r}")
        self.encoding = encoding


def decode_base64(data: bytes) -> bytes:
    """Base64 as mail has it: line breaks and stray characters skipped, padding optional,
    several padded runs one after another decoded one by one."""
    out = []
    for run in _PADDING.split(data.translate(None, _NOT_BASE64)):
        cut = len(run) - len(run) % 4
        whole, rest = run[:cut], run[cut:]
        if len(rest) >= 2:  # 2 or 3 characters left: 1 or 2 octets; 1 character: nothing
            whole += rest + b"=" * (4 - len(rest))
        if whole:
            out.append(base64.b64decode(whole))
    return b"".join(out)


def _qp_token(found: re.Match[bytes]) -> bytes:
    hexa = found.group(1)
    return bytes((int(hexa, 16),)) if hexa is not None else b""


def decode_qp(data: bytes) -> bytes:
    """Quoted-printable (RFC 2045 6.7): escapes decoded, soft line breaks and trailing
    white space removed, hard line breaks kept as they are."""
    return _QP.sub(_qp_token, data)


def decode(data: bytes, encoding: bytes) -> bytes:
    """``data`` with the named Content-Transfer-Encoding undone (the name in any case)."""
    name = encoding.strip().lower() or b"7bit"
    if name in _IDENTITY_ENCODINGS:
        return data
    if name == b"base64":
        return decode_base64(data)
    if name == b"quoted-printable":
        return decode_qp(data)
    raise UnknownCTE(name)


def needs_literal8(data: bytes) -> bool:
    """Whether a BINARY answer must be a literal8 (RFC 3516 4.3: it holds NUL)."""
    return b"\x00" in data


def is_binary_section(spec: str) -> bool:
    """BINARY takes part numbers only (RFC 3516 section-binary): "" or "1.2.3"."""
    if not spec:
        return True
    found = _SECTION_PART.match(spec)
    return found is not None and found.group(2) is None


# --- BINARY[section] ---------------------------------------------------------------------


def _fields_end(ent: _Entity) -> int:
    return ent.start + sum(len(f.raw) for f in ent.fields)


def _relabelled(raw: bytes, ent: _Entity, encoding: bytes) -> bytes:
    """The entity's header with its Content-Transfer-Encoding field(s) saying ``encoding``."""
    label = b"Content-Transfer-Encoding: " + encoding + b"\r\n"
    fields = [label if f.key == b"content-transfer-encoding" else f.raw for f in ent.fields]
    return b"".join(fields) + raw[_fields_end(ent) : ent.body_start]


def _decoded_body(raw: bytes, ent: _Entity) -> bytes:
    if ent.kind == _MULTIPART:
        out, pos = [], ent.body_start
        for child in ent.children:
            start = max(pos, child.start)
            out += [raw[pos:start], _decoded_entity(raw, child)]
            pos = max(start, child.end)
        out.append(raw[pos : max(pos, ent.end)])
        return b"".join(out)
    if ent.kind == _RFC822 and ent.message is not None:
        inner = ent.message
        return _decoded_entity(raw, inner) + raw[inner.end : max(inner.end, ent.end)]
    return decode(raw[ent.body_start : ent.end], _encoding(ent.fields))


def _decoded_entity(raw: bytes, ent: _Entity) -> bytes:
    body = _decoded_body(raw, ent)
    opaque = ent.kind == _LEAF or (ent.kind == _RFC822 and ent.message is None)
    if opaque and _encoding(ent.fields).lower() not in _IDENTITY_ENCODINGS:
        return _relabelled(raw, ent, b"binary") + body
    return raw[ent.start : ent.body_start] + body


def section(message: Message, spec: str) -> bytes | None:
    """BINARY[spec]: None when the part does not exist (or ``spec`` is not part numbers).
    Raises UnknownCTE."""
    spec = spec.strip()
    if not is_binary_section(spec):
        return None
    raw = message.raw
    if not spec:
        return _decoded_entity(raw, message._root)
    part = message._part([int(n) for n in spec.split(".")])
    if part is None:
        return None
    return _decoded_body(raw, part)


# --- APPEND of a literal8 -----------------------------------------------------------------


def _base64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    lines = [encoded[i : i + BASE64_LINE] for i in range(0, len(encoded), BASE64_LINE)]
    return b"\r\n".join(lines)


def _leaves(ent: _Entity) -> list[_Entity]:
    found, stack = [], [ent]
    while stack:
        node = stack.pop()
        if node.kind == _MULTIPART:
            stack.extend(reversed(node.children))
        elif node.kind == _RFC822 and node.message is not None:
            stack.append(node.message)
        else:
            found.append(node)
    return found


def storable(raw: bytes) -> bytes:
    """The message as APPEND stores it when it came as a literal8: every part whose
    encoding is ``binary``, or that holds NUL without saying how it is encoded, is
    base64-encoded. A message with no such part is returned as it is (the same object)."""
    if b"\x00" not in raw and b"binary" not in raw.lower():
        return raw
    edits: list[tuple[int, int, bytes]] = []
    for leaf in _leaves(Message(raw)._root):
        body = raw[leaf.body_start : leaf.end]
        encoding = _encoding(leaf.fields).lower()
        if encoding == b"binary" or (encoding in _IDENTITY_ENCODINGS and b"\x00" in body):
            header = _relabelled(raw, leaf, b"base64")
            if not any(f.key == b"content-transfer-encoding" for f in leaf.fields):
                header = _with_field(raw, leaf, b"Content-Transfer-Encoding: base64\r\n")
            edits.append((leaf.start, leaf.end, header + _base64_lines(body)))
    if not edits:
        return raw
    out, pos = [], 0
    for start, end, replacement in sorted(edits):
        out += [raw[pos:start], replacement]
        pos = end
    out.append(raw[pos:])
    return b"".join(out)


def _with_field(raw: bytes, ent: _Entity, line: bytes) -> bytes:
    fields: list[Field] = ent.fields
    return b"".join(f.raw for f in fields) + line + raw[_fields_end(ent) : ent.body_start]
