"""Parsing framed commands into requests (RFC 3501 section 6 and the extensions Enclave
announces). Pure. ``parse`` returns a ``Request`` whose ``args`` hold typed values; the
session dispatches on ``name`` (``do_FETCH``...). Grammar errors raise ``ParseError``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from enclave.imap.wire.binary import is_binary_section
from enclave.imap.wire.framing import Command, tag_of
from enclave.imap.wire.listing import check_options
from enclave.imap.wire.notify import parse_notify
from enclave.imap.wire.tokens import Cursor, ParseError, SeqSet


@dataclass(frozen=True)
class FetchItem:
    name: str  # ENVELOPE, FLAGS, UID, BODY, BODYSTRUCTURE, RFC822.SIZE, BODY[] ...
    section: str | None = None  # for BODY[...]: "HEADER", "1.2", "HEADER.FIELDS (FROM)"
    peek: bool = False
    partial: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        """How the item is named in the response (BODY.PEEK answers as BODY, BINARY.PEEK as
        BINARY)."""
        if self.section is None:
            return self.name
        origin = f"<{self.partial[0]}>" if self.partial else ""
        return f"{self.name}[{self.section}]{origin}"


@dataclass(frozen=True)
class Request:
    tag: str
    name: str
    uid: bool = False
    args: dict[str, Any] = field(default_factory=dict)


MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
SIMPLE_ITEMS = frozenset({
    "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE",
    "RFC822.TEXT", "BODY", "BODYSTRUCTURE", "UID", "MODSEQ",
})  # fmt: skip
# Items with a [section]: what the client names -> the item (the .PEEK forms set no \Seen).
SECTION_ITEMS = {
    "BODY": "BODY", "BODY.PEEK": "BODY", "BINARY": "BINARY", "BINARY.PEEK": "BINARY",
    "BINARY.SIZE": "BINARY.SIZE",
}  # fmt: skip
STATUS_ITEMS = frozenset(
    {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE", "DELETED"}
)


def _section(cursor: Cursor) -> str:
    """The text between [ and ], lists included, upper-cased where it is grammar."""
    cursor.expect(b"[")
    parts: list[str] = []
    depth = 0
    while True:
        char = cursor.peek()
        if char is None:
            raise ParseError("unterminated section")
        if char == ord("]") and depth == 0:
            cursor.expect(b"]")
            return "".join(parts).upper()
        if char == ord("("):
            depth += 1
        elif char == ord(")"):
            depth -= 1
        if char == ord('"'):
            parts.append(cursor.quoted().decode("ascii", "replace"))
            continue
        parts.append(chr(char))
        cursor.expect(bytes([char]))


def _fetch_item(cursor: Cursor) -> list[FetchItem]:
    name = cursor.word().upper()
    if name in MACROS:
        return [FetchItem(n) for n in MACROS[name]]
    if name in SECTION_ITEMS and cursor.peek() == ord("["):
        section = _section(cursor)
        kind = SECTION_ITEMS[name]
        if kind != "BODY" and not is_binary_section(section):  # RFC 3516: part numbers only
            raise ParseError(f"{name} takes part numbers only")
        partial = None
        if kind != "BINARY.SIZE" and cursor.maybe(b"<"):
            start = cursor.number()
            cursor.expect(b".")
            partial = (start, cursor.nz_number())
            cursor.expect(b">")
        peek = name.endswith(".PEEK") or kind == "BINARY.SIZE"
        return [FetchItem(kind, section=section, peek=peek, partial=partial)]
    if name not in SIMPLE_ITEMS:
        raise ParseError(f"unknown FETCH item {name}")
    return [FetchItem(name)]


def _fetch(cursor: Cursor) -> dict[str, Any]:
    cursor.sp()
    sequence = cursor.sequence_set()
    cursor.sp()
    items: list[FetchItem] = []
    if cursor.maybe(b"("):
        while True:
            items += _fetch_item(cursor)
            if cursor.maybe(b")"):
                break
            cursor.sp()
    else:
        items = _fetch_item(cursor)
    changed_since = None
    vanished = False
    if cursor.maybe(b" ("):  # RFC 7162: (CHANGEDSINCE n [VANISHED])
        while True:
            modifier = cursor.atom().upper()
            if modifier == "CHANGEDSINCE" and changed_since is None:
                cursor.sp()
                changed_since = cursor.mod_sequence()
            elif modifier == "VANISHED" and not vanished:
                vanished = True
            else:
                raise ParseError(f"unknown FETCH modifier {modifier}")
            if cursor.maybe(b")"):
                break
            cursor.sp()
        if vanished and changed_since is None:
            raise ParseError("VANISHED needs CHANGEDSINCE")
    return {
        "sequence": sequence, "items": items, "changed_since": changed_since,
        "vanished": vanished,
    }  # fmt: skip


def _store(cursor: Cursor) -> dict[str, Any]:
    cursor.sp()
    sequence = cursor.sequence_set()
    cursor.sp()
    unchanged_since = None
    if cursor.maybe(b"("):
        if cursor.atom().upper() != "UNCHANGEDSINCE":
            raise ParseError("unknown STORE modifier")
        cursor.sp()
        unchanged_since = cursor.mod_sequence()
        cursor.expect(b") ")
    action = cursor.atom().upper()
    mode = {"FLAGS": "set", "+FLAGS": "add", "-FLAGS": "remove"}
    base = action.removesuffix(".SILENT")
    if base not in mode:
        raise ParseError("expected FLAGS, +FLAGS or -FLAGS")
    cursor.sp()
    return {
        "sequence": sequence,
        "mode": mode[base],
        "silent": action.endswith(".SILENT"),
        "flags": cursor.flags(),
        "unchanged_since": unchanged_since,
    }


def _copy(cursor: Cursor) -> dict[str, Any]:
    cursor.sp()
    sequence = cursor.sequence_set()
    cursor.sp()
    return {"sequence": sequence, "mailbox": cursor.astring()}


@dataclass(frozen=True)
class Resync:
    """SELECT's QRESYNC parameter (RFC 7162 3.2.5): what the client last knew."""

    uidvalidity: int
    modseq: int
    known_uids: SeqSet | None = None


def _mailbox(cursor: Cursor) -> dict[str, Any]:
    cursor.sp()
    mailbox = cursor.astring()
    condstore = False
    resync: Resync | None = None
    if cursor.maybe(b" ("):  # SELECT/EXAMINE parameters: (CONDSTORE) (QRESYNC (...))
        while True:
            name = cursor.atom().upper()
            if name == "CONDSTORE":
                condstore = True
            elif name == "QRESYNC" and resync is None:
                cursor.sp()
                resync = _resync(cursor)
            else:
                raise ParseError(f"unknown SELECT parameter {name}")
            if cursor.maybe(b")"):
                break
            cursor.sp()
    return {"mailbox": mailbox, "condstore": condstore, "qresync": resync}


def _resync(cursor: Cursor) -> Resync:
    cursor.expect(b"(")
    uidvalidity = cursor.nz_number()
    cursor.sp()
    modseq = cursor.mod_sequence()
    known: SeqSet | None = None
    if cursor.maybe(b" "):
        if cursor.peek() != ord("("):
            known = cursor.sequence_set()
            cursor.maybe(b" ")
        if cursor.maybe(b"("):  # seq-match-data: a hint the server may ignore (3.2.5.2)
            cursor.sequence_set()
            cursor.sp()
            cursor.sequence_set()
            cursor.expect(b")")
    cursor.expect(b")")
    return Resync(uidvalidity, modseq, known)


def _rename(cursor: Cursor) -> dict[str, Any]:
    cursor.sp()
    old = cursor.astring()
    cursor.sp()
    return {"old": old, "new": cursor.astring()}


def _list(cursor: Cursor) -> dict[str, Any]:
    cursor.sp()
    selection: list[str] = []
    if cursor.maybe(b"("):  # LIST-EXTENDED selection options
        while not cursor.maybe(b")"):
            if selection:
                cursor.sp()
            selection.append(cursor.atom().upper())
        cursor.sp()
    reference = cursor.astring()
    cursor.sp()
    patterns: list[bytes] = []
    if cursor.maybe(b"("):
        while not cursor.maybe(b")"):
            if patterns:
                cursor.sp()
            patterns.append(cursor.list_mailbox())
    else:
        patterns.append(cursor.list_mailbox())
    returns: list[str] = []
    status: list[str] = []
    if cursor.rest()[:8].upper() == b" RETURN ":
        cursor.expect(cursor.rest()[:8])
        cursor.expect(b"(")
        while not cursor.maybe(b")"):
            if returns:
                cursor.sp()
            option = cursor.atom().upper()
            returns.append(option)
            if option == "STATUS":
                cursor.sp()
                status = _status_items(cursor)
    refused = check_options(selection, returns)
    if refused:
        raise ParseError(refused)
    return {
        "reference": reference, "patterns": patterns, "selection": selection,
        "returns": returns, "status": status,
    }  # fmt: skip


def _status_items(cursor: Cursor) -> list[str]:
    cursor.expect(b"(")
    items: list[str] = []
    while not cursor.maybe(b")"):
        if items:
            cursor.sp()
        item = cursor.atom().upper()
        if item not in STATUS_ITEMS:
            raise ParseError(f"unknown STATUS item {item}")
        items.append(item)
    return items


def _status(cursor: Cursor) -> dict[str, Any]:
    cursor.sp()
    mailbox = cursor.astring()
    cursor.sp()
    return {"mailbox": mailbox, "items": _status_items(cursor)}


@dataclass(frozen=True)
class AppendMessage:
    """One message of an APPEND (MULTIAPPEND, RFC 3502: one or more per command): its flags,
    date and parts, ("TEXT", octets) and, with CATENATE (RFC 4469), ("URL", url) too."""

    flags: tuple[str, ...]
    date: datetime | None
    parts: tuple[tuple[str, bytes], ...]
    catenate: bool = False
    binary: bool = False  # some of its text came as a literal8 (RFC 3516 4.4)


def _append_literal(cursor: Cursor) -> tuple[bytes, bool]:
    """A message literal: ``{n}`` or the literal8 ``~{n}``; (octets, was a literal8)."""
    binary = cursor.maybe(b"~")
    if cursor.peek() != ord("{"):
        raise ParseError("expected a literal")
    return cursor.literal(), binary


def _append_message(cursor: Cursor) -> AppendMessage:
    flags: list[str] = []
    when = None
    if cursor.peek() == ord("("):
        flags = cursor.flag_list()
        cursor.sp()
    if cursor.peek() == ord('"'):
        when = cursor.date_time()
        cursor.sp()
    if cursor.rest()[:9].upper() != b"CATENATE ":
        data, binary = _append_literal(cursor)
        return AppendMessage(tuple(flags), when, (("TEXT", data),), binary=binary)
    cursor.expect(cursor.rest()[:9])
    cursor.expect(b"(")
    parts: list[tuple[str, bytes]] = []
    binary = False
    while True:
        kind = cursor.atom().upper()
        cursor.sp()
        if kind == "TEXT":
            data, literal8 = _append_literal(cursor)
            parts.append(("TEXT", data))
            binary = binary or literal8
        elif kind == "URL":
            parts.append(("URL", cursor.astring()))
        else:
            raise ParseError(f"unknown CATENATE part {kind}")
        if cursor.maybe(b")"):
            break
        cursor.sp()
    return AppendMessage(tuple(flags), when, tuple(parts), catenate=True, binary=binary)


def _append(cursor: Cursor) -> dict[str, Any]:
    """APPEND mailbox, then one or more messages (RFC 3502), each [flags] [date] and a
    literal, a literal8 (RFC 3516) or CATENATE (parts) (RFC 4469). ``flags``, ``date`` and
    ``message`` (None for CATENATE) repeat the first message's."""
    cursor.sp()
    mailbox = cursor.astring()
    messages: list[AppendMessage] = []
    while cursor.maybe(b" "):
        messages.append(_append_message(cursor))
    if not messages:
        raise ParseError("APPEND needs a message")
    first = messages[0]
    return {
        "mailbox": mailbox, "messages": messages, "flags": list(first.flags),
        "date": first.date, "message": None if first.catenate else first.parts[0][1],
    }  # fmt: skip


def _login(cursor: Cursor) -> dict[str, Any]:
    cursor.sp()
    user = cursor.astring()
    cursor.sp()
    return {"user": user, "password": cursor.astring()}


def _authenticate(cursor: Cursor) -> dict[str, Any]:
    cursor.sp()
    mechanism = cursor.atom().upper()
    initial = None
    if cursor.maybe(b" "):  # SASL-IR
        initial = cursor.rest()
        cursor.expect(initial)
    return {"mechanism": mechanism, "initial": initial}


def _enable(cursor: Cursor) -> dict[str, Any]:
    capabilities = []
    while cursor.maybe(b" "):
        capabilities.append(cursor.atom().upper())
    if not capabilities:
        raise ParseError("ENABLE needs at least one capability")
    return {"capabilities": capabilities}


def _id(cursor: Cursor) -> dict[str, Any]:
    cursor.sp()
    fields: dict[str, str | None] = {}
    if cursor.rest()[:3].upper() == b"NIL":
        cursor.expect(cursor.rest()[:3])
    elif cursor.maybe(b"("):
        while not cursor.maybe(b")"):
            if fields:
                cursor.sp()
            key = cursor.string().decode("utf-8", "replace")
            cursor.sp()
            value = cursor.nstring()
            fields[key] = value.decode("utf-8", "replace") if value is not None else None
    return {"fields": fields}


def _quota_root(cursor: Cursor) -> dict[str, Any]:
    cursor.sp()
    return {"root": cursor.astring()}


def _search_args(cursor: Cursor) -> dict[str, Any]:
    from enclave.imap.wire.search import parse_search

    return parse_search(cursor)


def _sort_args(cursor: Cursor) -> dict[str, Any]:
    from enclave.imap.wire.sort import parse_sort

    return parse_sort(cursor)


def _thread_args(cursor: Cursor) -> dict[str, Any]:
    from enclave.imap.wire.thread import parse_thread

    return parse_thread(cursor)


def _cancelupdate(cursor: Cursor) -> dict[str, Any]:
    """CANCELUPDATE "tag" ["tag" ...] (RFC 5267 4.2)."""
    tags = []
    while cursor.maybe(b" "):
        tags.append(cursor.string().decode("ascii", "replace"))
    if not tags:
        raise ParseError("CANCELUPDATE needs a tag")
    return {"tags": tags}


def _none(cursor: Cursor) -> dict[str, Any]:
    return {}


GRAMMAR: dict[str, Callable[[Cursor], dict[str, Any]]] = {
    "CAPABILITY": _none, "NOOP": _none, "LOGOUT": _none, "STARTTLS": _none,
    "CHECK": _none, "CLOSE": _none, "UNSELECT": _none, "EXPUNGE": _none, "IDLE": _none,
    "NAMESPACE": _none, "LOGIN": _login, "AUTHENTICATE": _authenticate, "ENABLE": _enable,
    "ID": _id, "SELECT": _mailbox, "EXAMINE": _mailbox, "CREATE": _mailbox,
    "DELETE": _mailbox, "SUBSCRIBE": _mailbox, "UNSUBSCRIBE": _mailbox, "RENAME": _rename,
    "LIST": _list, "LSUB": _list, "STATUS": _status, "APPEND": _append, "FETCH": _fetch,
    "STORE": _store, "COPY": _copy, "MOVE": _copy, "SEARCH": _search_args,
    "GETQUOTA": _quota_root, "GETQUOTAROOT": _quota_root, "CANCELUPDATE": _cancelupdate, "NOTIFY": parse_notify, "SORT": _sort_args,
    "THREAD": _thread_args,
}  # fmt: skip
UID_COMMANDS = frozenset({"FETCH", "STORE", "COPY", "MOVE", "SEARCH", "EXPUNGE", "SORT", "THREAD"})


def parse(command: Command) -> Request:
    """A framed command as a request. Raises ParseError (with the tag, if one was read)."""
    cursor = Cursor(command.chunks)
    try:
        tag = cursor.atom(extra=b"]")
    except ParseError:
        raise ParseError("missing tag") from None
    if tag == "*" or tag.startswith("+"):
        raise ParseError("invalid tag")
    try:
        cursor.sp()
        name = cursor.atom().upper()
        uid = False
        if name == "UID":
            cursor.sp()
            name = cursor.atom().upper()
            if name not in UID_COMMANDS:
                raise ParseError(f"UID {name} is not a command")
            uid = True
        grammar = GRAMMAR.get(name)
        if grammar is None:
            raise UnknownCommand(tag, name)
        if name == "EXPUNGE" and uid:
            cursor.sp()
            args: dict[str, Any] = {"sequence": cursor.sequence_set()}
        else:
            args = grammar(cursor)
        cursor.end()
    except UnknownCommand:
        raise
    except ParseError as exc:
        raise TaggedParseError(tag, str(exc), getattr(exc, "code", None)) from None
    return Request(tag=tag, name=name, uid=uid, args=args)


class TaggedParseError(ParseError):
    """BAD for grammar errors; NO with a response code when the grammar was fine but a value
    is not supported (``BADCHARSET``)."""

    def __init__(self, tag: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.tag = tag
        self.code = code
        self.status = "NO" if code else "BAD"


class UnknownCommand(ParseError):
    def __init__(self, tag: str, name: str) -> None:
        super().__init__(f"unknown command {name}")
        self.tag = tag
        self.name = name


__all__ = [
    "FetchItem",
    "ParseError",
    "Request",
    "Resync",
    "SeqSet",
    "UnknownCommand",
    "parse",
    "tag_of",
]
