"""SEARCH criteria (RFC 3501 section 6.4.4, RFC 7162 MODSEQ, RFC 4731 ESEARCH RETURN):
parsing into a tree, and matching a message against it. Pure.

A key is a tuple: ``("ALL",)``, ``("FROM", "alice")``, ``("NOT", key)``, ``("OR", a, b)``,
``("AND", [keys])``, ``("SEQ", seqset)``, ``("UID", seqset)``, ``("LARGER", 100)`` ...
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Protocol

from enclave.imap.wire.tokens import SAVED, Cursor, ParseError, SeqSet

FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True), "UNANSWERED": ("\\Answered", False),
    "DELETED": ("\\Deleted", True), "UNDELETED": ("\\Deleted", False),
    "DRAFT": ("\\Draft", True), "UNDRAFT": ("\\Draft", False),
    "FLAGGED": ("\\Flagged", True), "UNFLAGGED": ("\\Flagged", False),
    "SEEN": ("\\Seen", True), "UNSEEN": ("\\Seen", False),
    "RECENT": ("\\Recent", True), "OLD": ("\\Recent", False),
}  # fmt: skip
STRING_KEYS = frozenset({"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"})
DATE_KEYS = frozenset({"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"})
RETURN_OPTIONS = frozenset({"MIN", "MAX", "COUNT", "ALL", "SAVE"})
# SEARCH alone also takes RFC 5267's: UPDATE (keep the result current), CONTEXT (a hint) and
# PARTIAL m:n (positions m to n of the result).
SEARCH_RETURN_OPTIONS = RETURN_OPTIONS | {"UPDATE", "CONTEXT", "PARTIAL"}
Key = tuple[Any, ...]
# Parentheses, NOT and OR nest keys; a client never needs more than a few levels, and the
# parser, matcher and planner all recurse, so deeper trees are refused with BAD.
MAX_DEPTH = 100


def _key(cursor: Cursor, charset: str, depth: int = 0) -> Key:
    if depth > MAX_DEPTH:
        raise ParseError(f"search keys nested more than {MAX_DEPTH} levels deep")
    if cursor.maybe(b"("):
        keys = [_key(cursor, charset, depth + 1)]
        while not cursor.maybe(b")"):
            cursor.sp()
            keys.append(_key(cursor, charset, depth + 1))
        return ("AND", keys)
    char = cursor.peek()
    if char is not None and (chr(char).isdigit() or char in b"*$"):
        return ("SEQ", cursor.sequence_set())
    name = cursor.atom().upper()
    if name in ("ALL", "NEW") or name in FLAG_KEYS:
        return (name,)
    if name in STRING_KEYS:
        cursor.sp()
        return (name, _text(cursor, charset))
    if name in DATE_KEYS:
        cursor.sp()
        return (name, cursor.date())
    if name in ("LARGER", "SMALLER", "MODSEQ"):
        cursor.sp()
        if name == "MODSEQ" and cursor.peek() == ord('"'):  # entry name and type: ignored
            cursor.quoted()
            cursor.sp()
            cursor.atom()
            cursor.sp()
        return (name, cursor.mod_sequence() if name == "MODSEQ" else cursor.number())
    if name in ("KEYWORD", "UNKEYWORD"):
        cursor.sp()
        return (name, cursor.flag())
    if name == "HEADER":
        cursor.sp()
        field = cursor.astring().decode("ascii", "replace")
        cursor.sp()
        return (name, field, _text(cursor, charset))
    if name == "UID":
        cursor.sp()
        return ("UID", cursor.sequence_set())
    if name == "NOT":
        cursor.sp()
        return ("NOT", _key(cursor, charset, depth + 1))
    if name == "OR":
        cursor.sp()
        first = _key(cursor, charset, depth + 1)
        cursor.sp()
        return ("OR", first, _key(cursor, charset, depth + 1))
    raise ParseError(f"unknown search key {name}")


def _text(cursor: Cursor, charset: str) -> str:
    raw = cursor.astring()
    try:
        return raw.decode(charset)
    except (LookupError, UnicodeDecodeError):
        raise ParseError(f"search text is not valid {charset}") from None


def parse_returns(
    cursor: Cursor, allowed: frozenset[str]
) -> tuple[list[str] | None, tuple[int, int] | None]:
    """``RETURN (options) `` where the cursor stands (SEARCH and SORT): the options, or None
    when there is no RETURN, and PARTIAL's range (low, high) if it is among them."""
    if cursor.rest()[:7].upper() != b"RETURN ":
        return None, None
    cursor.expect(cursor.rest()[:7])
    cursor.expect(b"(")
    returns: list[str] = []
    partial: tuple[int, int] | None = None
    while not cursor.maybe(b")"):
        if returns:
            cursor.sp()
        option = cursor.atom().upper()
        if option not in allowed:
            raise ParseError(f"unknown RETURN option {option}")
        returns.append(option)
        if option == "PARTIAL":
            cursor.sp()
            first = cursor.nz_number()
            cursor.expect(b":")
            last = cursor.nz_number()
            partial = (min(first, last), max(first, last))
    cursor.sp()
    return returns, partial


def parse_search(cursor: Cursor) -> dict[str, Any]:
    """``[RETURN (...)] [CHARSET x] key...`` after SEARCH."""
    cursor.sp()
    returns, partial = parse_returns(cursor, SEARCH_RETURN_OPTIONS)
    charset = "utf-8"
    if cursor.rest()[:7].upper() == b"CHARSET":
        cursor.expect(cursor.rest()[:7])
        cursor.sp()
        name = cursor.astring().decode("ascii", "replace").lower()
        if name not in ("utf-8", "us-ascii", "utf8"):
            raise CharsetNotSupported(name)
        charset = "utf-8"
        cursor.sp()
    keys = [_key(cursor, charset)]
    while cursor.maybe(b" "):
        keys.append(_key(cursor, charset))
    return {"key": ("AND", keys), "returns": returns, "partial": partial}


class CharsetNotSupported(ParseError):
    code = "BADCHARSET (UTF-8 US-ASCII)"

    def __init__(self, name: str) -> None:
        super().__init__(f"charset {name} is not supported")


class Subject(Protocol):
    """What matching needs to know about one message; text is fetched only when asked."""

    seq: int
    uid: int
    flags: frozenset[str]
    internal_date: datetime
    size: int
    modseq: int

    def header(self, name: str) -> list[str]: ...  # decoded values of every such field

    def body_text(self) -> str: ...  # decoded text of the body parts

    def sent(self) -> date | None: ...


def in_set(value: int, ranges: SeqSet, largest: int) -> bool:
    for low, high in ranges:
        lo = largest if low is None else low
        hi = largest if high is None else high
        if min(lo, hi) <= value <= max(lo, hi):
            return True
    return False


def matches(key: Key, msg: Subject, *, largest_seq: int, largest_uid: int) -> bool:
    name = key[0]
    if name == "AND":
        return all(
            matches(k, msg, largest_seq=largest_seq, largest_uid=largest_uid) for k in key[1]
        )
    if name == "OR":
        return matches(key[1], msg, largest_seq=largest_seq, largest_uid=largest_uid) or matches(
            key[2], msg, largest_seq=largest_seq, largest_uid=largest_uid
        )
    if name == "NOT":
        return not matches(key[1], msg, largest_seq=largest_seq, largest_uid=largest_uid)
    if name == "ALL":
        return True
    if name in FLAG_KEYS:
        flag, wanted = FLAG_KEYS[name]
        return (flag in msg.flags) is wanted
    if name == "NEW":
        return "\\Recent" in msg.flags and "\\Seen" not in msg.flags
    if name == "KEYWORD":
        return key[1].lower() in {f.lower() for f in msg.flags}
    if name == "UNKEYWORD":
        return key[1].lower() not in {f.lower() for f in msg.flags}
    if name == "SEQ":
        return in_set(msg.seq, key[1], largest_seq)
    if name == "UID":
        return in_set(msg.uid, key[1], largest_uid)
    if name == "LARGER":
        return msg.size > int(key[1])
    if name == "SMALLER":
        return msg.size < int(key[1])
    if name == "MODSEQ":
        return msg.modseq >= int(key[1])
    if name in ("BEFORE", "ON", "SINCE"):
        return _compare(name, msg.internal_date.date(), key[1])
    if name in ("SENTBEFORE", "SENTON", "SENTSINCE"):
        sent = msg.sent()
        return sent is not None and _compare(name.removeprefix("SENT"), sent, key[1])
    if name == "HEADER":
        needle = key[2].casefold()
        return any(needle in value.casefold() for value in msg.header(key[1]))
    if name in ("FROM", "TO", "CC", "BCC", "SUBJECT"):
        needle = key[1].casefold()
        return any(needle in value.casefold() for value in msg.header(name))
    if name == "BODY":
        return key[1].casefold() in msg.body_text().casefold()
    if name == "TEXT":
        needle = key[1].casefold()
        return needle in msg.body_text().casefold() or any(
            needle in value.casefold() for value in msg.header("*")
        )
    raise ValueError(f"unknown search key {name}")


def _compare(kind: str, day: date, wanted: date) -> bool:
    if kind == "BEFORE":
        return day < wanted
    if kind == "ON":
        return day == wanted
    return day >= wanted


HEADER_KEYS = frozenset(
    {"BCC", "CC", "FROM", "SUBJECT", "TO", "HEADER", "SENTBEFORE", "SENTON", "SENTSINCE"}
)
BODY_KEYS = frozenset({"BODY", "TEXT"})
ROW_KEYS = frozenset({"BEFORE", "ON", "SINCE", "LARGER", "SMALLER"})


def bind_saved(key: Key, saved: SeqSet) -> Key:
    """The key with "$" (the saved result, RFC 5182) replaced by the saved UIDs."""
    name = key[0]
    if name in ("SEQ", "UID") and key[1] == SAVED:
        return ("UID", saved)
    if name == "AND":
        return ("AND", [bind_saved(k, saved) for k in key[1]])
    if name == "OR":
        return ("OR", bind_saved(key[1], saved), bind_saved(key[2], saved))
    if name == "NOT":
        return ("NOT", bind_saved(key[1], saved))
    return key


def key_names(key: Key) -> set[str]:
    """The names of the leaf keys of a search tree (what it will need to look at)."""
    name = key[0]
    if name == "AND":
        return set().union(*(key_names(k) for k in key[1]))
    if name == "OR":
        return key_names(key[1]) | key_names(key[2])
    if name == "NOT":
        return key_names(key[1])
    return {name}
