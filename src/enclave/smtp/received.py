"""The trace header a receiving server prepends (RFC 5321 section 4.4). Pure."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime


def received_header(
    *,
    helo: str | None,
    peer: str | None,
    by: str,
    protocol: str,
    queue_id: str,
    recipient: str | None,
    when: datetime,
) -> bytes:
    clean_helo = "".join(ch for ch in (helo or "unknown") if ch.isprintable() and ch not in "()")
    parts = [f"Received: from {clean_helo[:200]} ([{peer or 'unknown'}])"]
    parts.append(f"\tby {by} (Enclave) with {protocol} id {queue_id}")
    if recipient:
        parts.append(f"\tfor <{recipient}>")
    text = "\r\n".join(parts) + f"; {format_datetime(when)}\r\n"
    return text.encode("utf-8")
