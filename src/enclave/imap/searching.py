"""A message as SEARCH sees it (``wire.search.Subject``): its row, its header block (kept at
delivery, so header keys read no message) and, only for BODY and TEXT, its whole content."""

from __future__ import annotations

import email
from datetime import date, datetime
from email.header import decode_header, make_header
from email.policy import default as default_policy
from email.utils import getaddresses, parsedate_to_datetime

from enclave.core.mail.mailboxes import MessageRow
from enclave.imap.wire.headers import header_values
from enclave.imap.wire.message import Message

ADDRESS_FIELDS = frozenset({"from", "to", "cc", "bcc", "sender", "reply-to"})


def _decoded(value: bytes) -> str:
    """A header value with its encoded words decoded (RFC 2047); raw UTF-8 taken as such."""
    text = value.decode("utf-8", "replace")
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except (LookupError, UnicodeError, ValueError):
        return text


class Searchable:
    def __init__(
        self,
        seq: int,
        uid: int,
        flags: frozenset[str],
        modseq: int,
        row: MessageRow | None,
        header: bytes | None = None,
        raw: bytes | None = None,
    ) -> None:
        self.seq, self.uid, self.flags, self.modseq = seq, uid, flags, modseq
        # Rows are read only when a key needs a date or size (ROW_KEYS and content keys).
        self.internal_date = row.internal_date if row else datetime.min
        self.size = row.size if row else 0
        if header is None and raw is not None:
            header = Message(raw).section("HEADER")
        self._header = header or b""
        self._raw = raw

    def header(self, name: str) -> list[str]:
        values = [_decoded(v) for v in header_values(self._header, None if name == "*" else name)]
        if name.lower() in ADDRESS_FIELDS:  # also as parsed: comments and routes dropped
            values += [address for _, address in getaddresses(values) if address]
        return values

    def body_text(self) -> str:
        if self._raw is None:
            return ""
        texts = []
        for part in email.message_from_bytes(self._raw, policy=default_policy).walk():
            if part.get_content_maintype() == "text":
                try:
                    texts.append(str(part.get_content()))
                except (LookupError, ValueError):
                    continue
        return "\n".join(texts)

    def sent(self) -> date | None:
        values = self.header("date")
        try:
            return parsedate_to_datetime(values[0]).date() if values else None
        except (TypeError, ValueError, IndexError):
            return None
