"""Cutting the client's byte stream into commands (RFC 3501 section 2.2, RFC 7888).

A command is one or more lines; a line ending in ``{n}`` (synchronising: the server must say
``+`` first) or ``{n+}`` (LITERAL+: the client sends at once) is followed by exactly n octets
of literal data, then the command continues. ``CommandFramer`` buffers bytes and yields:

- ``Command(chunks)``: text segments and literal bytes, alternating, literal marker left in;
- ``NeedContinuation(size)``: send a ``+`` continuation before the client sends the literal;
- ``Refused(tag, reason, size, code, close)``: a literal the framer will not keep. A
  synchronising one is refused before any of it is read; a non-synchronising one is read and
  thrown away in bounded memory, unless it is larger than ``max_discard``: then ``close`` is
  set and the framer yields nothing more (the connection must end);
- ``LineTooLong(tag)``: the command text itself is over the limit (the rest of the line is
  discarded).

What one command may buffer is bounded three ways: ``max_line`` octets of command text (all
its lines together), ``max_literal`` octets in any one literal and ``max_literals`` in all of
its literals together (code ``TOOBIG``), and a ``LiteralBudget`` shared by every framer of the
process (code ``LIMIT``). A command's literals hold their share of the budget until the framer
is asked for the event after that command, or is closed; ``set_limits`` changes the bounds
(a session raises them once the client has signed in).
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

LITERAL = re.compile(rb"\{(\d{1,20})(\+)?\}\r\n$")
TAG = re.compile(rb"^([^\s(){%*\"\\\]]+)")
MIN_DISCARD = 64 * 1024  # refused LITERAL+ data up to this size is always read and dropped


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
    code: str = "TOOBIG"  # TOOBIG: over this command's limits; LIMIT: the process's budget
    close: bool = False  # the literal is too large even to drop: end the connection


@dataclass(frozen=True)
class LineTooLong:
    tag: bytes


Event = Command | NeedContinuation | Refused | LineTooLong


def tag_of(line: bytes) -> bytes:
    found = TAG.match(line)
    return found.group(1) if found else b"*"


class LiteralBudget:
    """Octets of literal data that all connections together may hold (one per process)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used = max(0, self.used - size)


class _Held:
    """A framer's share of the budget; released on close, or when the framer is collected."""

    def __init__(self, budget: LiteralBudget | None) -> None:
        self.budget = budget
        self.octets = 0

    def take(self, size: int) -> bool:
        if self.budget is not None and not self.budget.take(size):
            return False
        self.octets += size
        return True

    def release(self) -> None:
        if self.budget is not None and self.octets:
            self.budget.give(self.octets)
        self.octets = 0


class CommandFramer:
    def __init__(
        self,
        *,
        max_line: int = 64 * 1024,
        max_literal: int = 64 * 1024 * 1024,
        max_literals: int | None = None,
        max_discard: int | None = None,
        budget: LiteralBudget | None = None,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.max_literals = max_literal if max_literals is None else max_literals
        self.max_discard = (
            max(MIN_DISCARD, self.max_literals) if max_discard is None else max_discard
        )
        self._held = _Held(budget)
        self._finalizer = weakref.finalize(self, self._held.release)
        self._buffer = bytearray()
        self._chunks: list[bytes] = []
        self._text = 0  # command text so far (without literals)
        self._literals = 0  # literal octets of this command so far
        self._literal: int | None = None  # octets of literal still to read
        self._discard = 0  # octets of a refused non-synchronising literal still to drop
        self._skip_line = False  # dropping the rest of an over-long line
        self._done = False  # the last event was a complete command: release its literals
        self._closed = False

    def set_limits(
        self,
        *,
        max_line: int | None = None,
        max_literal: int | None = None,
        max_literals: int | None = None,
        max_discard: int | None = None,
    ) -> None:
        """New bounds for the commands that follow (the one being read keeps what it has)."""
        if max_line is not None:
            self.max_line = max_line
        if max_literal is not None:
            self.max_literal = max_literal
        if max_literals is not None:
            self.max_literals = max_literals
        if max_discard is not None:
            self.max_discard = max_discard

    def feed(self, data: bytes) -> None:
        if not self._closed:
            self._buffer += data

    def close(self) -> None:
        """Drop everything and give the budget back (the connection has ended)."""
        self._closed = True
        self._buffer.clear()
        self._chunks = []
        self._held.release()

    def _start_over(self) -> None:
        self._chunks = []
        self._text = 0
        self._literals = 0
        self._literal = None

    def _reset(self) -> None:
        self._start_over()
        self._held.release()

    def next_event(self) -> Event | None:
        if self._done:  # the caller is done with the previous command
            self._done = False
            self._held.release()
        while not self._closed:
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
                marker = LITERAL.search(bytes(self._buffer[max(0, end - 24) : end + 2]))
                del self._buffer[: end + 2]
                self._skip_line = False
                if marker is not None and marker.group(2):  # a LITERAL+ of a void command
                    size = int(marker.group(1))
                    if size > self.max_discard:
                        self.close()
                        return Refused(b"*", "literal too large", size, close=True)
                    self._discard = size
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
                self._start_over()  # its literals stay held until the next call
                self._done = True
                return command
            size, plus = int(marker.group(1)), marker.group(2) is not None
            self._chunks.append(line[:-2])
            refusal = self._refusal(size, plus)
            if refusal is not None:
                self._reset()
                if refusal.close:
                    self.close()
                elif plus:
                    self._discard = size
                return refusal
            self._literals += size
            self._literal = size
            if not plus:
                return NeedContinuation(size)
        return None

    def _refusal(self, size: int, plus: bool) -> Refused | None:
        tag = tag_of(self._chunks[0])
        close = plus and size > self.max_discard
        if size > self.max_literal:
            return Refused(tag, f"literal of {size} octets is over the limit", size, close=close)
        if self._literals + size > self.max_literals:
            reason = f"command literals over the limit of {self.max_literals} octets"
            return Refused(tag, reason, size, close=close)
        if not self._held.take(size):
            return Refused(tag, "too much data in flight: try again later", size, "LIMIT", close)
        return None
