"""IMAP URLs (RFC 5092) as CATENATE (RFC 4469) takes them: a message, or a part of one, in a
mailbox. Pure: text in, an ``ImapUrl`` out, or ``BadUrl``.

Three forms are read:

- absolute, ``imap://[user[;AUTH=...]@]host[:port]/mailbox[;UIDVALIDITY=n]/;UID=n...``;
- a path on this server, ``/mailbox[;UIDVALIDITY=n]/;UID=n...``;
- relative to the selected mailbox (RFC 5092 7), ``;UID=n...``;

each ending in ``[/;SECTION=section][/;PARTIAL=offset[.length]]`` and perhaps URLAUTH
(``;EXPIRE=...``, ``;URLAUTH=...``), which is recognised so that it can be refused. The
mailbox name is %-decoded UTF-8 (RFC 5092 3.4; not modified UTF-7), the section %-decoded
and upper-cased. Who may read what a URL names is not decided here: see ``urlauth``,
``user`` and ``host`` in the session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

_SCHEME = "imap://"
_PARAM = re.compile(r"^([A-Za-z]+)=(.*)$", re.DOTALL)
_NUMBER = re.compile(r"^[1-9][0-9]{0,9}$")
_PARTIAL = re.compile(r"^(0|[1-9][0-9]{0,9})(?:\.([1-9][0-9]{0,9}))?$")
MAX_URL = 8 * 1024


class BadUrl(ValueError):
    """Not an IMAP URL naming a message (RFC 4469: ``NO [BADURL url]``)."""


@dataclass(frozen=True)
class ImapUrl:
    mailbox: str | None  # None: the selected mailbox (a relative URL)
    uid: int
    uidvalidity: int | None = None
    section: str | None = None  # as between BODY[ and ]
    partial: tuple[int, int | None] | None = None  # (offset, length or None for the rest)
    host: str | None = None  # absolute URLs only, lower-case, without the port
    port: int | None = None
    user: str | None = None  # the user named in an absolute URL
    urlauth: bool = False  # carries ;EXPIRE= or ;URLAUTH= (RFC 4467)

    def cut(self, data: bytes) -> bytes:
        """``data`` narrowed to the URL's PARTIAL range (past the end: nothing)."""
        if self.partial is None:
            return data
        start, length = self.partial
        return data[start:] if length is None else data[start : start + length]


def _decode(text: str, what: str) -> str:
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise BadUrl(f"the {what} is not UTF-8") from None


def _number(value: str, what: str) -> int:
    if not _NUMBER.match(value) or int(value) > 0xFFFFFFFF:
        raise BadUrl(f"bad {what}")
    return int(value)


def _server(text: str) -> tuple[str | None, str, int | None, str]:
    """(user, host, port, path) of the part after ``imap://``."""
    authority, slash, path = text.partition("/")
    if not slash:
        raise BadUrl("the URL names no message")
    userinfo, at, hostport = authority.rpartition("@")
    user = None
    if at:
        name = userinfo.split(";", 1)[0]  # ;AUTH=<type> says how to sign in: not our concern
        user = _decode(name, "user") if name else None
    host, port = hostport, None
    if hostport.startswith("["):  # an IPv6 literal
        close = hostport.find("]")
        if close < 0:
            raise BadUrl("bad host")
        host, rest = hostport[: close + 1], hostport[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise BadUrl("bad host")
            port = _number(rest[1:], "port")
    elif ":" in hostport:
        host, _, digits = hostport.partition(":")
        port = _number(digits, "port") if digits else None
    if not host:
        raise BadUrl("no host")
    return user, _decode(host, "host").lower(), port, path


def parse(text: bytes | str) -> ImapUrl:
    """An IMAP URL naming a message (and maybe a section and a range of it)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise BadUrl("URLs are ASCII (%-encode the rest)") from None
    if len(text) > MAX_URL or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in text):
        raise BadUrl("not a URL")
    user = host = None
    port = None
    if text[: len(_SCHEME)].lower() == _SCHEME:
        user, host, port, path = _server(text[len(_SCHEME) :])
        mailbox_part, params = _split_mailbox(path)
    elif text.startswith("/"):
        mailbox_part, params = _split_mailbox(text[1:])
    elif text.startswith(";"):
        mailbox_part, params = None, text
    else:
        raise BadUrl("not an IMAP URL")
    mailbox = _decode(mailbox_part, "mailbox") if mailbox_part is not None else None
    if mailbox == "":
        raise BadUrl("no mailbox")
    found = _params(params, relative=mailbox is None)
    return ImapUrl(
        mailbox=mailbox,
        uid=found["UID"],
        uidvalidity=found.get("UIDVALIDITY"),
        section=found.get("SECTION"),
        partial=found.get("PARTIAL"),
        host=host,
        port=port,
        user=user,
        urlauth="URLAUTH" in found or "EXPIRE" in found,
    )


def _split_mailbox(path: str) -> tuple[str, str]:
    """The encoded mailbox name and what follows it (``;UIDVALIDITY=...`` or ``/;UID=...``);
    ``;`` is no character of a mailbox name in a URL (it is %3B there)."""
    cut = path.find(";")
    if cut < 0:
        raise BadUrl("the URL names no message (;UID= is missing)")
    name = path[:cut]
    if name.endswith("/"):
        return name[:-1], "/" + path[cut:]
    return name, path[cut:]


# The order RFC 5092 gives them, and whether a "/" comes before each.
_ORDER = ("UIDVALIDITY", "UID", "SECTION", "PARTIAL", "EXPIRE", "URLAUTH")
_AFTER_SLASH = frozenset({"UID", "SECTION", "PARTIAL"})


def _params(text: str, *, relative: bool) -> dict[str, Any]:
    found: dict[str, Any] = {}
    last = -1
    pieces = text.split(";")
    if pieces[0] not in ("", "/"):
        raise BadUrl("bad URL")
    slash = pieces[0] == "/"
    for index, piece in enumerate(pieces[1:]):
        more = index + 2 < len(pieces)
        next_slash = more and piece.endswith("/")
        if next_slash:
            piece = piece[:-1]
        m = _PARAM.match(piece)
        if m is None:
            raise BadUrl("bad URL parameter")
        name, value = m.group(1).upper(), m.group(2)
        if name not in _ORDER or _ORDER.index(name) <= last:
            raise BadUrl(f"unexpected ;{name}=")
        last = _ORDER.index(name)
        wants_slash = name in _AFTER_SLASH and not (relative and not found)
        if wants_slash != slash:
            raise BadUrl(f"misplaced ;{name}=")
        found[name] = _value(name, value)
        slash = next_slash
    if slash:
        raise BadUrl("the URL ends in /")
    if "UID" not in found:
        raise BadUrl("the URL names no message (;UID= is missing)")
    if relative and "UIDVALIDITY" in found:
        raise BadUrl("UIDVALIDITY belongs after a mailbox")
    return found


def _value(name: str, value: str) -> Any:
    if name in ("UID", "UIDVALIDITY"):
        return _number(value, name)
    if name == "SECTION":
        section = _decode(value, "section").upper()
        if not section:
            raise BadUrl("empty section")
        return section
    if name == "PARTIAL":
        m = _PARTIAL.match(value)
        if m is None:
            raise BadUrl("bad PARTIAL")
        return (int(m.group(1)), int(m.group(2)) if m.group(2) else None)
    return value  # EXPIRE, URLAUTH: only noticed


def response_code(url: bytes | str) -> str:
    """``BADURL <url>`` for a tagged NO: the URL as ASCII, without what would end the code
    (RFC 4469 url-resp-text: no "]", no CR or LF)."""
    text = url.decode("ascii", "replace") if isinstance(url, bytes) else url
    clean = "".join(c for c in text if 0x20 < ord(c) < 0x7F and c != "]")[:1024]
    return f"BADURL {clean}" if clean else "BADURL"
