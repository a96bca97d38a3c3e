"""The text of a message as searching sees it (pure): header values decoded (RFC 2047), with
addresses also as parsed (so comments do not hide them), and the text of its text parts. IMAP
SEARCH matches against exactly these, and the search index is built from them, so whatever
a search finds at the start of a word the index holds too."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.policy import default as default_policy
from email.utils import getaddresses

ADDRESS_FIELDS = frozenset({"from", "to", "cc", "bcc", "sender", "reply-to"})
MAX_TEXT_CHARS = 1024 * 1024  # of body text indexed per message
MAX_PARSED_BYTES = 32 * 1024 * 1024  # larger messages are not parsed for the index


def decoded(value: bytes) -> str:
    """A header value with its encoded words decoded (RFC 2047); raw UTF-8 taken as such."""
    text = value.decode("utf-8", "replace")
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except (LookupError, UnicodeError, ValueError):
        return text


_BLANK = re.compile(rb"\r?\n\r?\n")
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:(.*)", re.S)


def fields(raw: bytes) -> list[tuple[str, bytes]]:
    """(name, unfolded value) of each header field, leniently: bare LF line ends, lines that
    are not fields skipped, as IMAP's own header reading does."""
    end = _BLANK.search(raw)
    block = raw[: end.start()] if end else raw
    found: list[tuple[str, bytes]] = []
    for line in block.split(b"\n"):
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t") and found:
            found[-1] = (found[-1][0], found[-1][1] + line)
            continue
        match = _FIELD.match(line)
        if match:
            found.append((match.group(1).decode("ascii"), match.group(2)))
    return [(name, value.strip(b" \t")) for name, value in found]


def with_addresses(name: str, values: list[str]) -> list[str]:
    """``values`` of the field ``name``, plus the addresses in them as parsed."""
    if name.lower() in ADDRESS_FIELDS:
        return values + [address for _, address in getaddresses(values) if address]
    return values


def body_text(raw: bytes) -> str:
    """The text of every text part, decoded, one after another."""
    texts = []
    for part in email.message_from_bytes(raw, policy=default_policy).walk():
        if part.get_content_maintype() == "text":
            try:
                texts.append(str(part.get_content()))
            except (LookupError, ValueError):
                continue
    return "\n".join(texts)


@dataclass(frozen=True)
class SearchText:
    header: str
    body: str
    complete: bool  # False when something was cut or could not be read


def search_text(raw: bytes) -> SearchText:
    """What the index holds of a message. Never raises: a message it cannot read whole is
    marked incomplete, and searches then read that message themselves."""
    if len(raw) > MAX_PARSED_BYTES:
        return SearchText("", "", False)
    values: list[str] = []
    for name, value in fields(raw):
        text = decoded(value)
        values += with_addresses(name, [text])
        if "=?" in text:  # not decoded (malformed): its words as they stand, too
            values.append(text.replace("?", " ").replace("=", " "))
    try:
        body = body_text(raw)
    except Exception:  # hostile structure (e.g. nesting that exhausts recursion)
        return SearchText("\n".join(values), "", False)
    complete = len(body) <= MAX_TEXT_CHARS
    return SearchText("\n".join(values), body[:MAX_TEXT_CHARS], complete)
