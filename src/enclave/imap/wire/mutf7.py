"""Mailbox names in modified UTF-7 (RFC 3501 section 5.1.3). Pure.

A name has one spelling: printable ASCII stands for itself (``&`` as ``&-``), everything else
is modified BASE64 of UTF-16, in as few shifts as possible, with no padding bits set. Names
that are spelt any other way are refused (``&AC4ALg-`` would be ``..``, ``&ACo-`` a ``*``):
``decode`` re-encodes what it decoded and compares. LIST and LSUB patterns are not names:
``decode_pattern`` decodes the sequences that are canonical and keeps any other ``&`` as
text, so a pattern of ordinary atom characters matches names literally.
"""

from __future__ import annotations

import base64
import binascii
import re

_SHIFT = re.compile(rb"&([A-Za-z0-9+,]*)-")  # one &-sequence: modified BASE64, then "-"


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


def _shifted(chunk: bytes) -> str | None:
    """The text of the modified BASE64 between ``&`` and ``-``, if it is the one spelling of
    that text; None otherwise."""
    if not chunk:
        return None
    padded = chunk.replace(b",", b"/") + b"=" * (-len(chunk) % 4)
    try:
        text = base64.b64decode(padded, validate=True).decode("utf-16-be")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    if encode(text) != b"&" + chunk + b"-":  # ASCII inside, padding bits, stray sextets
        return None
    return text


def _check_ascii(raw: bytes) -> None:
    if any(not 0x20 <= char <= 0x7E for char in raw):
        raise ValueError("mailbox name has a byte outside printable ASCII")


def decode(raw: bytes) -> str:
    """Raises ValueError for malformed names and for names not spelt canonically."""
    name = _scan(raw, lenient=False)
    if encode(name) != raw:  # e.g. two shifts in a row where one would do
        raise ValueError("mailbox name is not in canonical modified UTF-7")
    return name


def decode_pattern(raw: bytes) -> str:
    """A LIST/LSUB pattern: canonical &-sequences decoded, any other ``&`` kept as text.
    Raises ValueError only for bytes outside printable ASCII (no name has them)."""
    return _scan(raw, lenient=True)


def _scan(raw: bytes, *, lenient: bool) -> str:
    """The text of ``raw``, its &-sequences decoded; a bad one raises, or (``lenient``)
    stands for itself."""
    _check_ascii(raw)
    out: list[str] = []
    i = 0
    while i < len(raw):
        amp = raw.find(b"&", i)
        if amp < 0:
            out.append(raw[i:].decode("ascii"))
            break
        out.append(raw[i:amp].decode("ascii"))
        shift = _SHIFT.match(raw, amp)
        text = None
        if shift is not None:
            text = _shifted(shift.group(1)) if shift.group(1) else "&"
        if text is None or shift is None:
            if not lenient:
                raise ValueError("bad &-sequence in mailbox name")
            out.append("&")
            i = amp + 1
        else:
            out.append(text)
            i = shift.end()
    return "".join(out)
