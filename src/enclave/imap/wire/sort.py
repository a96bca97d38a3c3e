"""SORT (RFC 5256 section 3, RFC 5957 DISPLAYFROM/DISPLAYTO, RFC 5267 ESORT RETURN): the
command's grammar, base-subject extraction (RFC 5256 section 2.1), sent dates (2.2) and the
sort keys. Pure.

Strings compare under i;ascii-casemap (a-z folded to A-Z, then octet order; Python's code
point order is UTF-8's octet order). Messages equal under every criterion keep sequence
order, whatever REVERSE says (RFC 5256 section 3: ties go by sequence number).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any

from enclave.imap.wire.headers import MISSING_DOMAIN, MISSING_MAILBOX, SYNTAX_ERROR
from enclave.imap.wire.headers import _addresses as addresses
from enclave.imap.wire.search import RETURN_OPTIONS, CharsetNotSupported, Key, parse_returns
from enclave.imap.wire.search import _key as search_key
from enclave.imap.wire.tokens import Cursor, ParseError

SORT_KEYS = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
)
ROW_SORT_KEYS = frozenset({"ARRIVAL", "SIZE"})  # answered by the message row alone
HEADER_SORT_KEYS = SORT_KEYS - ROW_SORT_KEYS  # need the header block (DATE maybe the row too)
CHARSETS = frozenset({"utf-8", "utf8", "us-ascii"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Criterion:
    key: str  # one of SORT_KEYS
    reverse: bool = False


# --- grammar -----------------------------------------------------------------------------


def parse_charset_and_keys(cursor: Cursor) -> Key:
    """``charset SP search-key *(SP search-key)``: the charset is mandatory in SORT and
    THREAD (RFC 5256 section 3); an unsupported one is NO [BADCHARSET]."""
    name = cursor.astring().decode("ascii", "replace").lower()
    if name not in CHARSETS:
        raise CharsetNotSupported(name)
    cursor.sp()
    keys = [search_key(cursor, "utf-8")]
    while cursor.maybe(b" "):
        keys.append(search_key(cursor, "utf-8"))
    return ("AND", keys)


def parse_sort(cursor: Cursor) -> dict[str, Any]:
    """``SORT [RETURN (options)] (criteria) charset search-keys`` (RFC 5256, RFC 5267)."""
    cursor.sp()
    returns, _ = parse_returns(cursor, RETURN_OPTIONS)
    cursor.expect(b"(")
    criteria: list[Criterion] = []
    while True:
        name = cursor.atom().upper()
        reverse = name == "REVERSE"
        if reverse:
            cursor.sp()
            name = cursor.atom().upper()
        if name not in SORT_KEYS:
            raise ParseError(f"unknown sort key {name}")
        criteria.append(Criterion(name, reverse))
        if cursor.maybe(b")"):
            break
        cursor.sp()
    cursor.sp()
    return {"criteria": criteria, "returns": returns, "key": parse_charset_and_keys(cursor)}


# --- encoded words and base subjects -----------------------------------------------------

_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(rb"(\?=)[ \t\r\n]+(=\?)")
_Q_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def _decode_word(match: re.Match[bytes]) -> bytes:
    charset = match.group(1).split(b"*", 1)[0].decode("ascii", "replace")  # RFC 2231 language
    data = match.group(3)
    try:
        if match.group(2) in b"Bb":
            raw = base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
        else:
            raw = _Q_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), data.replace(b"_", b" "))
        return raw.decode(charset, "replace").encode("utf-8")
    except (LookupError, binascii.Error, ValueError):
        return match.group(0)  # unknown charset or broken data: the word stays as it was


def decode_words(value: bytes) -> str:
    """RFC 2047 encoded words in a header value decoded to text (white space between two
    adjacent encoded words is dropped); other octets are taken as UTF-8."""
    if b"=?" in value:
        value = _BETWEEN_WORDS.sub(rb"\1\2", value)
        value = _ENCODED_WORD.sub(_decode_word, value)
    return value.decode("utf-8", "replace")


_WSP_RUN = re.compile(r"[ \t\r\n]+")
_ARTIFACT = re.compile(r"[\[\]():\t\r\n]|^ | $|  ")
_TRAILER = re.compile(r"(?:[ \t]|\(fwd\))$", re.IGNORECASE)
_BLOB = r"\[[^\[\]]*\][ \t]*"
_LEADER = re.compile(rf"(?:{_BLOB})*(?:re|fwd?)[ \t]*(?:{_BLOB})?:|[ \t]", re.IGNORECASE)
_BLOB_PREFIX = re.compile(_BLOB)


def base_subject(subject: str) -> tuple[str, bool]:
    """The base subject of a decoded Subject value (RFC 5256 section 2.1), and whether the
    extraction removed a subj-refwd, a "(fwd)" trailer or a [fwd: ...] wrapper, which is
    what makes a message a reply or forward (RFC 5256 section 4, REFERENCES step 5)."""
    if not _ARTIFACT.search(subject):  # nothing any step could remove: most subjects
        return subject, False
    text = _WSP_RUN.sub(" ", subject)  # (1): tabs and continuations to one space
    reply = False
    while True:
        while found := _TRAILER.search(text):  # (2)
            reply |= found.group(0) not in (" ", "\t")
            text = text[: found.start()]
        while True:  # (5): repeat (3) and (4) until nothing changes
            before = text
            while found := _LEADER.match(text):  # (3)
                reply |= found.group(0) not in (" ", "\t")
                text = text[found.end() :]
            blob = _BLOB_PREFIX.match(text)  # (4): a blob goes if something follows it
            if blob and blob.end() < len(text):
                text = text[blob.end() :]
            if text == before:
                break
        if text[:5].lower() == "[fwd:" and text.endswith("]"):  # (6)
            text = text[5:-1]
            reply = True
            continue
        return text, reply


_FOLD = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def casemap(text: str) -> str:
    """i;ascii-casemap (RFC 4790): only a-z fold."""
    return text.translate(_FOLD)


# --- one message ---------------------------------------------------------------------------


FIELDS = frozenset(
    {b"date", b"subject", b"from", b"to", b"cc", b"message-id", b"references", b"in-reply-to"}
)


def fields(header: bytes) -> dict[bytes, list[bytes]]:
    """The unfolded values of the fields SORT and THREAD read, by lower-case name, in one
    pass over the header block (a regular expression per field costs several times more)."""
    found: dict[bytes, list[bytes]] = {}
    current: list[bytes] | None = None
    name = b""
    for line in header.split(b"\n"):
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        if current is not None:
            found[name].append(b"".join(current).lstrip(b" \t"))
            current = None
        name, colon, value = line.partition(b":")
        name = name.rstrip(b" \t").lower()
        if colon and name in FIELDS:
            found.setdefault(name, [])
            current = [value]
    if current is not None:
        found[name].append(b"".join(current).lstrip(b" \t"))
    return found


def sent_date(header: bytes) -> datetime | None:
    """The Date field in UTC, or None when it is missing or cannot be parsed."""
    return _parsed_date(fields(header).get(b"date"))


def _parsed_date(values: list[bytes] | None) -> datetime | None:
    if not values:
        return None
    try:
        when = parsedate_to_datetime(values[0].decode("ascii", "replace"))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _clean(value: bytes | None, placeholders: tuple[bytes, ...]) -> bytes:
    return b"" if value is None or value in placeholders else value


class Sortable:
    """What SORT and THREAD know of one message: its sequence number, its header block
    (kept at delivery) and, only when a key needs them, its internal date and size."""

    def __init__(
        self, seq: int, header: bytes, internal_date: datetime | None = None, size: int = 0
    ) -> None:
        self.seq = seq
        self.header = header
        if internal_date is not None and internal_date.tzinfo is None:
            internal_date = internal_date.replace(tzinfo=UTC)
        self.internal_date = internal_date
        self.size = size

    @cached_property
    def fields(self) -> dict[bytes, list[bytes]]:
        return fields(self.header)

    def values(self, name: bytes) -> list[bytes]:
        return self.fields.get(name, [])

    @cached_property
    def sent(self) -> datetime:
        """The sent date (RFC 5256 section 2.2): the Date field, else the internal date."""
        return _parsed_date(self.fields.get(b"date")) or self.internal_date or EPOCH

    @cached_property
    def _subject(self) -> tuple[str, bool]:
        values = self.values(b"subject")
        return base_subject(decode_words(values[0])) if values else ("", False)

    @property
    def base_subject(self) -> str:
        return self._subject[0]

    @property
    def is_reply(self) -> bool:
        return self._subject[1]

    def _first_address(
        self, field: str
    ) -> tuple[bytes | None, bytes | None, bytes | None, bytes | None] | None:
        for value in self.values(field.encode()):
            found = addresses(value)
            if found:
                return found[0]
        return None

    def mailbox(self, field: str) -> str:
        """addr-mailbox of the first address (a group's name for a group), as SORT FROM, TO
        and CC compare it (RFC 5256 section 3)."""
        first = self._first_address(field)
        if first is None:
            return ""
        return decode_words(_clean(first[2], (MISSING_MAILBOX,)))

    def display(self, field: str) -> str:
        """The display name of the first address, else its address (RFC 5957); a group's
        name for a group."""
        first = self._first_address(field)
        if first is None:
            return ""
        name, _, mailbox, host = first
        shown = decode_words(name).strip() if name else ""
        if shown:
            return shown
        local = _clean(mailbox, (MISSING_MAILBOX,))
        domain = _clean(host, (MISSING_DOMAIN, SYNTAX_ERROR))
        return decode_words(local + b"@" + domain if domain else local)

    def sort_key(self, key: str) -> Any:
        if key == "ARRIVAL":
            return self.internal_date or EPOCH
        if key == "SIZE":
            return self.size
        if key == "DATE":
            return self.sent
        if key == "SUBJECT":
            return casemap(self.base_subject)
        if key in ("FROM", "TO", "CC"):
            return casemap(self.mailbox(key.lower()))
        if key in ("DISPLAYFROM", "DISPLAYTO"):
            return casemap(self.display(key.removeprefix("DISPLAY").lower()))
        raise ValueError(f"unknown sort key {key}")


def needs_rows(criteria: list[Criterion]) -> bool:
    return any(c.key in ROW_SORT_KEYS for c in criteria)


def needs_header(criteria: list[Criterion]) -> bool:
    return any(c.key in HEADER_SORT_KEYS for c in criteria)


def sort(messages: list[Sortable], criteria: list[Criterion]) -> list[int]:
    """Sequence numbers in the order the criteria give. Python's sort is stable also when
    reversed, so sorting by the last criterion first leaves ties in sequence order."""
    ordered = sorted(messages, key=lambda m: m.seq)
    for criterion in reversed(criteria):
        keys = {m.seq: m.sort_key(criterion.key) for m in ordered}
        ordered.sort(key=lambda m: keys[m.seq], reverse=criterion.reverse)
    return [m.seq for m in ordered]


def sequence_in_order(numbers: list[int]) -> bytes:
    """A sequence set that keeps the given order (RFC 5267 ESORT ALL): ascending runs of
    consecutive numbers become ranges, nothing is reordered."""
    runs: list[list[int]] = []
    for value in numbers:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return b",".join(b"%d" % lo if lo == hi else b"%d:%d" % (lo, hi) for lo, hi in runs)
