"""Mailbox names in modified UTF-7 (RFC 3501 section 5.1.3). Pure."""

from __future__ import annotations

import base64


def encode(name: str) -> bytes:
    out = bytearray()
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.extend(b"&" + base64.b64encode(raw).rstrip(b"=").replace(b"/", b",") + b"-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.extend(b"&-" if char == "&" else char.encode())
        else:
            pending.append(char)
    flush()
    return bytes(out)


def decode(raw: bytes) -> str:
    """Raises ValueError for malformed names."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char != ord("&"):
            if not 0x20 <= char <= 0x7E:
                raise ValueError("mailbox name has a byte outside printable ASCII")
            out.append(chr(char))
            i += 1
            continue
        end = raw.find(b"-", i)
        if end < 0:
            raise ValueError("unterminated &-sequence in mailbox name")
        chunk = raw[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            padded = chunk.replace(b",", b"/") + b"=" * (-len(chunk) % 4)
            try:
                out.append(base64.b64decode(padded, validate=True).decode("utf-16-be"))
            except (ValueError, UnicodeDecodeError):
                raise ValueError("bad &-sequence in mailbox name") from None
        i = end + 1
    return "".join(out)
