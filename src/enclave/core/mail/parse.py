"""What the store keeps about a message besides its bytes, parsed once at delivery. Pure.

Header values are kept raw (encoded words included), as IMAP's ENVELOPE wants them; the MIME
tree keeps each part's type, parameters, transfer encoding, disposition and size. ``VERSION``
lets a later reader recompute summaries made by an older parser.
"""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from typing import Any

VERSION = 1
ENVELOPE_HEADERS = (
    "date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to",
    "message-id",
)  # fmt: skip


def bare_line_ending(data: bytes) -> bool:
    """True if ``data`` holds a CR or LF that is not part of a CRLF pair (smuggling bait)."""
    return data.count(b"\n") != data.count(b"\r\n") or data.count(b"\r") != data.count(b"\r\n")


def _structure(part: Message) -> dict[str, Any]:
    params = part.get_params(header="content-type") or []
    node: dict[str, Any] = {
        "type": part.get_content_maintype(),
        "subtype": part.get_content_subtype(),
        "params": {str(k).lower(): str(v) for k, v in params[1:]},
        "id": part.get("content-id"),
        "description": part.get("content-description"),
        "encoding": (part.get("content-transfer-encoding") or "7bit").lower(),
        "disposition": part.get_content_disposition(),
        "filename": part.get_filename(),
    }
    if part.is_multipart():
        payload = part.get_payload()
        children = payload if isinstance(payload, list) else []
        node["parts"] = [_structure(p) for p in children if isinstance(p, Message)]
    else:
        body = part.get_payload(decode=False)
        text = body if isinstance(body, str) else ""
        node["size"] = len(text.encode("utf-8", "surrogateescape"))
        node["lines"] = text.count("\n")
    return node


def summarise(raw: bytes) -> dict[str, Any]:
    """Envelope headers and MIME structure of an RFC 5322 message."""
    message = message_from_bytes(raw, policy=compat32)
    envelope = {}
    for name in ENVELOPE_HEADERS:
        value = message.get(name)
        envelope[name] = None if value is None else str(value)
    return {"version": VERSION, "envelope": envelope, "structure": _structure(message)}
