"""Rendering IMAP responses (RFC 3501 section 7). Pure: values in, bytes out."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime

NIL = b"NIL"
_SAFE_QUOTED = frozenset(range(0x20, 0x7F))
MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct",
          b"Nov", b"Dec")  # fmt: skip


def string(value: bytes | str | None) -> bytes:
    """A quoted string, or a literal when the value cannot be quoted."""
    if value is None:
        return NIL
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if len(raw) < 1024 and all(b in _SAFE_QUOTED for b in raw):
        return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(raw)


def literal(raw: bytes) -> bytes:
    return b"{%d}\r\n" % len(raw) + raw


def parenthesised(items: Iterable[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")"


def flags(values: Iterable[str]) -> bytes:
    return parenthesised(v.encode() for v in values)


@functools.lru_cache(maxsize=4096)
def flag_set(values: frozenset[str]) -> bytes:
    """A set of flags, sorted; remembered, as a mailbox has few distinct flag sets and a
    FETCH 1:* renders one per message."""
    return flags(sorted(values))


def date_time(moment: datetime) -> bytes:
    """INTERNALDATE: "17-Jul-1996 02:44:25 -0700"."""
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = b"+" if minutes >= 0 else b"-"
    minutes = abs(minutes)
    return b'"%02d-%s-%04d %02d:%02d:%02d %s%02d%02d"' % (
        moment.day, MONTHS[moment.month - 1], moment.year, moment.hour, moment.minute,
        moment.second, sign, minutes // 60, minutes % 60,
    )  # fmt: skip


def untagged(text: bytes | str) -> bytes:
    return b"* " + (text.encode() if isinstance(text, str) else text) + b"\r\n"


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    prefix = f"[{code}] " if code else ""
    return f"{tag} {status} {prefix}{text}\r\n".encode()


def continuation(text: str = "Ready") -> bytes:
    return f"+ {text}\r\n".encode()


def fetch(seq: int, items: list[tuple[bytes, bytes]]) -> bytes:
    body = b" ".join(label + b" " + value for label, value in items)
    return b"* %d FETCH (" % seq + body + b")\r\n"


def sequence_set(numbers: Iterable[int]) -> bytes:
    """Compact "1:3,7,9:10" form of sorted numbers (ESEARCH, COPYUID, VANISHED)."""
    runs: list[list[int]] = []
    for value in sorted(set(numbers)):
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return b",".join(b"%d" % lo if lo == hi else b"%d:%d" % (lo, hi) for lo, hi in runs)
