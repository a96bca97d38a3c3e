"""Reading IMAP tokens from a framed command (RFC 3501 section 9): atoms, numbers, quoted
strings, literals, parenthesised lists, sequence sets, flags and dates. Pure.

Every reader raises ``ParseError`` with a message fit for a ``BAD`` reply.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

from enclave.imap.wire.framing import LITERAL


class ParseError(Exception):
    """The command does not follow the grammar; the text goes into ``BAD``."""


ATOM_SPECIALS = frozenset(b'(){ %*"\\]') | frozenset(range(0x00, 0x20)) | {0x7F}
LIST_WILDCARDS = frozenset(b"%*")
WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DATE = re.compile(rb"^(\d{1,2})-([A-Za-z]{3})-(\d{4})$")
_DATE_TIME = re.compile(
    rb"^([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$"
)
SeqSet = tuple[tuple[int | None, int | None], ...]  # (low, high); None stands for "*"
# "$": the result the last SEARCH RETURN (SAVE) kept (RFC 5182). Its range names no message,
# so code that does not know the saved result matches nothing with it.
SAVED: SeqSet = ((0, 0),)


class Cursor:
    def __init__(self, chunks: tuple[bytes, ...]) -> None:
        self._chunks = chunks
        self._index = 0
        self._pos = 0

    # --- position ------------------------------------------------------------------------

    @property
    def _text(self) -> bytes:
        return self._chunks[self._index]

    def at_end(self) -> bool:
        return self._index == len(self._chunks) - 1 and self._pos >= len(self._text)

    def peek(self) -> int | None:
        if self._pos < len(self._text):
            return self._text[self._pos]
        return None

    def rest(self) -> bytes:
        return self._text[self._pos :]

    def _literal_here(self) -> bool:
        return (
            self.peek() == ord("{")
            and LITERAL.search(self.rest() + b"\r\n") is not None
            and (self._index + 1 < len(self._chunks))
        )

    # --- small pieces --------------------------------------------------------------------

    def expect(self, char: bytes) -> None:
        if self._text[self._pos : self._pos + len(char)] != char:
            found = self._text[self._pos : self._pos + 10].decode("latin-1")
            raise ParseError(f"expected {char.decode()!r}, found {found!r}")
        self._pos += len(char)

    def sp(self) -> None:
        self.expect(b" ")

    def maybe(self, char: bytes) -> bool:
        if self._text[self._pos : self._pos + len(char)] == char:
            self._pos += len(char)
            return True
        return False

    def end(self) -> None:
        if not self.at_end():
            raise ParseError(f"unexpected {self.rest()[:20].decode('latin-1')!r} at end of command")

    def _take(self, allowed: frozenset[int] | None, forbidden: frozenset[int]) -> bytes:
        start = self._pos
        text = self._text
        while self._pos < len(text) and text[self._pos] not in forbidden:
            if allowed is not None and text[self._pos] not in allowed:
                break
            self._pos += 1
        return text[start : self._pos]

    # --- tokens --------------------------------------------------------------------------

    def atom(self, *, extra: bytes = b"") -> str:
        forbidden = ATOM_SPECIALS - frozenset(extra)
        found = self._take(None, forbidden)
        if not found:
            raise ParseError("expected an atom")
        return found.decode("ascii", "replace")

    def word(self) -> str:
        """Letters, digits, dots and dashes: a FETCH item or keyword name before ``[``."""
        found = self._take(WORD, frozenset())
        if not found:
            raise ParseError("expected a name")
        return found.decode("ascii")

    def number(self) -> int:
        found = self._take(frozenset(b"0123456789"), frozenset())
        if not found or len(found) > 10:
            raise ParseError("expected a number")
        value = int(found)
        if value > 0xFFFFFFFF:
            raise ParseError("number out of range")
        return value

    def mod_sequence(self) -> int:
        """A mod-sequence value (RFC 7162 7): 63 bits, not the 32 of other numbers."""
        found = self._take(frozenset(b"0123456789"), frozenset())
        if not found or len(found) > 19 or int(found) > 2**63 - 1:
            raise ParseError("expected a mod-sequence value")
        return int(found)

    def nz_number(self) -> int:
        value = self.number()
        if value == 0:
            raise ParseError("expected a non-zero number")
        return value

    def quoted(self) -> bytes:
        self.expect(b'"')
        out = bytearray()
        text = self._text
        while True:
            if self._pos >= len(text):
                raise ParseError("unterminated quoted string")
            char = text[self._pos]
            self._pos += 1
            if char == ord('"'):
                return bytes(out)
            if char == ord("\\"):
                if self._pos >= len(text) or text[self._pos] not in b'"\\':
                    raise ParseError("bad escape in quoted string")
                char = text[self._pos]
                self._pos += 1
            elif char in (0x0D, 0x0A, 0x00):
                raise ParseError("CR, LF or NUL in quoted string")
            out.append(char)

    def literal(self) -> bytes:
        marker = LITERAL.search(self.rest() + b"\r\n")
        if marker is None or self._index + 1 >= len(self._chunks):
            raise ParseError("expected a literal")
        value = self._chunks[self._index + 1]
        self._index += 2
        self._pos = 0
        return value

    def string(self) -> bytes:
        if self.peek() == ord('"'):
            return self.quoted()
        if self._literal_here():
            return self.literal()
        raise ParseError("expected a string")

    def astring(self) -> bytes:
        if self.peek() == ord('"') or self._literal_here():
            return self.string()
        found = self._take(None, ATOM_SPECIALS - {ord("]")})
        if not found:
            raise ParseError("expected an atom or a string")
        return found

    def nstring(self) -> bytes | None:
        if self.rest()[:3].upper() == b"NIL":
            self._pos += 3
            return None
        return self.string()

    def list_mailbox(self) -> bytes:
        if self.peek() == ord('"') or self._literal_here():
            return self.string()
        found = self._take(None, ATOM_SPECIALS - LIST_WILDCARDS - {ord("]")})
        if not found:
            raise ParseError("expected a mailbox pattern")
        return found

    def parenthesised(self) -> bool:
        return self.maybe(b"(")

    # --- composite -----------------------------------------------------------------------

    def sequence_set(self) -> SeqSet:
        if self.maybe(b"$"):
            return SAVED
        ranges: list[tuple[int | None, int | None]] = []
        while True:
            low = self._seq_number()
            high = low
            if self.maybe(b":"):
                high = self._seq_number()
            ranges.append((low, high))
            if not self.maybe(b","):
                return tuple(ranges)

    def _seq_number(self) -> int | None:
        if self.maybe(b"*"):
            return None
        return self.nz_number()

    def flag(self) -> str:
        if self.maybe(b"\\"):
            if self.maybe(b"*"):
                return "\\*"
            return "\\" + self.atom()
        return self.atom()

    def flag_list(self) -> list[str]:
        self.expect(b"(")
        flags: list[str] = []
        while not self.maybe(b")"):
            if flags:
                self.sp()
            flags.append(self.flag())
        return flags

    def flags(self) -> list[str]:
        """A flag list, or (as STORE allows) flags without parentheses."""
        if self.peek() == ord("("):
            return self.flag_list()
        flags = [self.flag()]
        while self.maybe(b" "):
            flags.append(self.flag())
        return flags

    def date(self) -> date:
        quoted = self.peek() == ord('"')
        raw = self.quoted() if quoted else self.atom().encode()
        found = _DATE.match(raw)
        if not found or found.group(2).decode().lower() not in MONTHS:
            raise ParseError("expected a date like 1-Feb-1994")
        month = MONTHS.index(found.group(2).decode().lower()) + 1
        try:
            return date(int(found.group(3)), month, int(found.group(1)))
        except ValueError:
            raise ParseError("no such date") from None

    def date_time(self) -> datetime:
        found = _DATE_TIME.match(self.quoted())
        if not found or found.group(2).decode().lower() not in MONTHS:
            raise ParseError('expected a date-time like "01-Feb-1994 21:52:25 -0800"')
        day, _, year, hour, minute, second, sign, zh, zm = found.groups()
        offset = timedelta(hours=int(zh), minutes=int(zm)) * (1 if sign == b"+" else -1)
        try:
            moment = datetime(
                int(year), MONTHS.index(found.group(2).decode().lower()) + 1, int(day),
                int(hour), int(minute), int(second), tzinfo=timezone(offset),
            )  # fmt: skip
        except ValueError:
            raise ParseError("no such date-time") from None
        return moment.astimezone(UTC)
