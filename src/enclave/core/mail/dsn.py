"""Delivery status notifications (RFC 3464), as bytes. Pure."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from email.utils import format_datetime

_ENHANCED = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\b")


def status_code(reply_code: int, message: str, *, expired: bool = False) -> str:
    """The RFC 3463 status for a failed recipient."""
    if expired:
        return "4.4.7"
    found = _ENHANCED.match(message.strip())
    if found:
        return found.group(1)
    return "5.0.0" if 500 <= reply_code < 600 else "4.0.0"


def address_type(address: str) -> str:
    """RFC 6533: an address that is not ASCII is of type utf-8, not rfc822."""
    return "rfc822" if address.isascii() else "utf-8"


def diagnostic_type(diagnostic: str) -> str:
    return "smtp" if diagnostic.isascii() else "utf-8"


def status_type(fields: str) -> str:
    """RFC 6533: a status part that is not ASCII is message/global-delivery-status."""
    return "message/delivery-status" if fields.isascii() else "message/global-delivery-status"


def failure_report(
    *,
    reporting_mta: str,
    sender: str,
    failures: list[tuple[str, str, str]],  # (recipient, status, diagnostic)
    original_headers: bytes,
    arrival: datetime,
    now: datetime,
) -> bytes:
    """A multipart/report telling ``sender`` which recipients could not be reached."""
    boundary = f"=_enclave_dsn_{uuid.uuid4().hex}"
    lines = "\r\n".join(f"  <{recipient}>: {diagnostic}" for recipient, _, diagnostic in failures)
    human = (
        "This is the mail system at host " + reporting_mta + ".\r\n\r\n"
        "Your message could not be delivered to one or more recipients. It has been\r\n"
        "given up on; the details follow.\r\n\r\n" + lines + "\r\n"
    )
    per_recipient = "".join(
        f"\r\nFinal-Recipient: {address_type(recipient)}; {recipient}\r\nAction: failed\r\n"
        f"Status: {status}\r\nDiagnostic-Code: {diagnostic_type(diagnostic)}; {diagnostic}\r\n"
        for recipient, status, diagnostic in failures
    )
    status_part = (
        f"Reporting-MTA: dns; {reporting_mta}\r\nArrival-Date: {format_datetime(arrival)}\r\n"
        + per_recipient
    )
    head = (
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>\r\n"
        f"To: <{sender}>\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(now)}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@{reporting_mta}>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
    )
    body = (
        f"\r\n--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n"
        "Content-Description: Notification\r\n\r\n"
        + human
        + f"\r\n--{boundary}\r\nContent-Type: {status_type(status_part)}\r\n"
        "Content-Description: Delivery report\r\n\r\n"
        + status_part
        + f"\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n"
        "Content-Description: Undelivered message headers\r\n\r\n"
    )
    return (head + body).encode() + original_headers + f"\r\n--{boundary}--\r\n".encode()


def headers_of(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    return raw if end < 0 else raw[: end + 2]
