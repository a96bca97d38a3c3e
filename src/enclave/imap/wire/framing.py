"""Cutting the client's byte stream into commands (RFC 3501 section 2.2, RFC 7888).

A command is one or more lines; a line ending in ``{n}`` (synchronising: the server must say
``+`` first) or ``{n+}`` (LITERAL+: the client sends at once) is followed by exactly n octets
of literal data, then the command continues. ``CommandFramer`` buffers bytes and yields:

- ``Command(chunks)``: text segments and literal bytes, alternating, literal marker left in;
- ``NeedContinuation(size)``: send a ``+`` continuation before the client sends the literal;
- ``Refused(tag, reason, size)``: a literal over the limit. A synchronising one is refused
  before any of it is read; a non-synchronising one is read and thrown away, in bounded memory;
- ``LineTooLong(tag)``: the command text itself is over the limit (the rest of the line is
  discarded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LITERAL = re.compile(rb"\{(\d{1,20})(\+)?\}\r\n$")
TAG = re.compile(rb"^([^\s(){%*\"\\\]]+)")


@dataclass(frozen=True)
class Command:
    chunks: tuple[bytes, ...]  # text, literal, text, literal, ..., text (ends without CRLF)


@dataclass(frozen=True)
class NeedContinuation:
    size: int


@dataclass(frozen=True)
class Refused:
    tag: bytes
    reason: str
    size: int


@dataclass(frozen=True)
class LineTooLong:
    tag: bytes


Event = Command | NeedContinuation | Refused | LineTooLong


def tag_of(line: bytes) -> bytes:
    found = TAG.match(line)
    return found.group(1) if found else b"*"


class CommandFramer:
    def __init__(self, *, max_line: int = 64 * 1024, max_literal: int = 64 * 1024 * 1024) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self._buffer = bytearray()
        self._chunks: list[bytes] = []
        self._text = 0  # command text so far (without literals)
        self._literal: int | None = None  # octets of literal still to read
        self._discard = 0  # octets of a refused non-synchronising literal still to drop
        self._skip_line = False  # dropping the rest of an over-long line

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def _reset(self) -> None:
        self._chunks = []
        self._text = 0
        self._literal = None

    def next_event(self) -> Event | None:
        while True:
            if self._discard:
                dropped = min(self._discard, len(self._buffer))
                del self._buffer[:dropped]
                self._discard -= dropped
                if self._discard:
                    return None
                self._skip_line = True  # the rest of that command is void too
            if self._skip_line:
                end = self._buffer.find(b"\r\n")
                if end < 0:
                    self._buffer.clear()
                    return None
                del self._buffer[: end + 2]
                self._skip_line = False
                continue
            if self._literal is not None:
                if len(self._buffer) < self._literal:
                    return None
                self._chunks.append(bytes(self._buffer[: self._literal]))
                del self._buffer[: self._literal]
                self._literal = None
                continue
            end = self._buffer.find(b"\r\n")
            if end < 0:
                if self._text + len(self._buffer) > self.max_line:
                    tag = tag_of(self._chunks[0] if self._chunks else bytes(self._buffer))
                    self._buffer.clear()
                    self._reset()
                    self._skip_line = True
                    return LineTooLong(tag)
                return None
            line = bytes(self._buffer[: end + 2])
            del self._buffer[: end + 2]
            self._text += len(line)
            if self._text > self.max_line:
                tag = tag_of(self._chunks[0] if self._chunks else line)
                self._reset()
                return LineTooLong(tag)
            marker = LITERAL.search(line)
            if marker is None:
                self._chunks.append(line[:-2])
                command = Command(tuple(self._chunks))
                self._reset()
                return command
            size, plus = int(marker.group(1)), marker.group(2) is not None
            self._chunks.append(line[:-2])
            if size > self.max_literal:
                tag = tag_of(self._chunks[0])
                self._reset()
                if plus:
                    self._discard = size
                return Refused(tag, f"literal of {size} octets is over the limit", size)
            self._literal = size
            if not plus:
                return NeedContinuation(size)
