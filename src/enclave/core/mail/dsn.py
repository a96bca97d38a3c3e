"""Delivery status notifications (RFC 3464, with RFC 6533 for UTF-8 addresses) and what a
sender asked to be told (RFC 3461), as bytes and plain values. Pure."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Any

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


NOTIFY_VALUES = frozenset({"SUCCESS", "FAILURE", "DELAY", "NEVER"})


@dataclass(frozen=True)
class RecipientDsn:
    """RCPT's NOTIFY (empty: not given) and ORCPT (address type, decoded address)."""

    notify: tuple[str, ...] = ()
    orcpt: tuple[str, str] | None = None


@dataclass(frozen=True)
class DsnRequest:
    """What the sender asked to be told (RFC 3461): MAIL's RET and ENVID, and per recipient
    NOTIFY and ORCPT."""

    ret: str | None = None  # FULL | HDRS
    envid: str | None = None
    recipients: dict[str, RecipientDsn] = field(default_factory=dict)

    def of(self, recipient: str) -> RecipientDsn | None:
        """The request for a recipient (addresses compared as written, then caseless)."""
        found = self.recipients.get(recipient)
        if found is None:
            folded = recipient.casefold()
            found = next((d for a, d in self.recipients.items() if a.casefold() == folded), None)
        return found

    def row(self, recipient: str) -> str | None:
        """The JSON kept with one recipient's queue row (None when nothing was asked)."""
        rcpt = self.of(recipient)
        if self.ret is None and self.envid is None and rcpt is None:
            return None
        value: dict[str, Any] = {"ret": self.ret, "envid": self.envid}
        if rcpt is not None:
            value |= {"notify": list(rcpt.notify), "orcpt": list(rcpt.orcpt or []) or None}
        return json.dumps(value)

    @staticmethod
    def from_row(text: str | None, recipient: str) -> DsnRequest:
        if not text:
            return DsnRequest()
        value = json.loads(text)
        orcpt = value.get("orcpt")
        rcpt = RecipientDsn(
            notify=tuple(value.get("notify") or ()),
            orcpt=(str(orcpt[0]), str(orcpt[1])) if orcpt else None,
        )
        return DsnRequest(ret=value.get("ret"), envid=value.get("envid"),
                          recipients={recipient: rcpt})  # fmt: skip

    @staticmethod
    def from_rows(rows: list[tuple[str | None, str]]) -> DsnRequest:
        """One message's request from its rows' (JSON, recipient) pairs."""
        parts = [DsnRequest.from_row(text, recipient) for text, recipient in rows]
        recipients = {r: d for part in parts for r, d in part.recipients.items()}
        first = parts[0] if parts else DsnRequest()
        return DsnRequest(ret=first.ret, envid=first.envid, recipients=recipients)


def wants(request: DsnRequest, recipient: str, action: str) -> bool:
    """Whether the sender asked for a report of ``action`` (failed, delayed, relayed,
    delivered) about ``recipient``. Without NOTIFY only failures are reported."""
    rcpt = request.of(recipient)
    notify = rcpt.notify if rcpt is not None else ()
    if not notify:
        return action == "failed"
    if notify == ("NEVER",):
        return False
    needed = {"failed": "FAILURE", "delayed": "DELAY"}.get(action, "SUCCESS")
    return needed in notify


@dataclass(frozen=True)
class Entry:
    """One recipient's line in a report."""

    recipient: str
    action: str  # failed | delayed | relayed | delivered
    status: str  # RFC 3463, e.g. 5.1.1
    diagnostic: str | None  # the remote reply, if there was one
    orcpt: tuple[str, str] | None = None


_SUBJECTS = {
    "failed": "Undelivered Mail Returned to Sender",
    "delayed": "Delayed Mail (still being retried)",
    "relayed": "Successful Mail Delivery Report",
    "delivered": "Successful Mail Delivery Report",
}
_SAYINGS = {
    "failed": "could not be delivered to one or more recipients. It has been\r\ngiven up on",
    "delayed": "has not been delivered to one or more recipients yet. Delivery\r\n"
    "will be tried again; you need do nothing",
    "relayed": "was handed to the next mail server for one or more recipients. That\r\n"
    "server does not report delivery, so this is the last word from here",
    "delivered": "was delivered to one or more recipients' mailboxes",
}


def report(
    *,
    reporting_mta: str,
    sender: str,
    entries: list[Entry],
    original: bytes,
    request: DsnRequest | None = None,
    arrival: datetime,
    now: datetime,
) -> bytes:
    """A multipart/report (RFC 3464) telling ``sender`` what became of ``entries`` (all of
    one action). RET=FULL returns the whole message with a failure; anything else, and every
    other action, returns its header only (RFC 3461 4.3)."""
    request = request or DsnRequest()
    action = entries[0].action
    boundary = f"=_enclave_dsn_{uuid.uuid4().hex}"
    lines = "\r\n".join(
        f"  <{e.recipient}>" + (f": {e.diagnostic}" if e.diagnostic else "") for e in entries
    )
    human = (
        "This is the mail system at host " + reporting_mta + ".\r\n\r\n"
        f"Your message {_SAYINGS[action]}; the details follow.\r\n\r\n" + lines + "\r\n"
    )
    per_message = f"Reporting-MTA: dns; {reporting_mta}\r\n"
    if request.envid:
        per_message += f"Original-Envelope-Id: {request.envid}\r\n"
    per_message += f"Arrival-Date: {format_datetime(arrival)}\r\n"
    per_recipient = ""
    for e in entries:
        per_recipient += "\r\n"
        if e.orcpt:
            per_recipient += f"Original-Recipient: {e.orcpt[0]}; {e.orcpt[1]}\r\n"
        per_recipient += (
            f"Final-Recipient: {address_type(e.recipient)}; {e.recipient}\r\n"
            f"Action: {e.action}\r\nStatus: {e.status}\r\n"
        )
        if e.diagnostic:
            per_recipient += f"Diagnostic-Code: {diagnostic_type(e.diagnostic)}; {e.diagnostic}\r\n"
    status_part = per_message + per_recipient
    head = (
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>\r\n"
        f"To: <{sender}>\r\n"
        f"Subject: {_SUBJECTS[action]}\r\n"
        f"Date: {format_datetime(now)}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@{reporting_mta}>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
    )
    full = action == "failed" and request.ret == "FULL" and bool(original)
    returned = (
        "Content-Type: message/rfc822\r\nContent-Description: Undelivered message\r\n\r\n"
        if full
        else "Content-Type: text/rfc822-headers\r\nContent-Description: Message headers\r\n\r\n"
    )
    body = (
        f"\r\n--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n"
        "Content-Description: Notification\r\n\r\n"
        + human
        + f"\r\n--{boundary}\r\nContent-Type: {status_type(status_part)}\r\n"
        "Content-Description: Delivery report\r\n\r\n"
        + status_part
        + f"\r\n--{boundary}\r\n"
        + returned
    )
    content = original if full else headers_of(original)
    if content and not content.endswith(b"\r\n"):
        content += b"\r\n"
    return (head + body).encode() + content + f"\r\n--{boundary}--\r\n".encode()


def failure_report(
    *,
    reporting_mta: str,
    sender: str,
    failures: list[tuple[str, str, str]],  # (recipient, status, diagnostic)
    original_headers: bytes,
    arrival: datetime,
    now: datetime,
) -> bytes:
    """A report that ``failures`` (recipient, status, diagnostic) could not be reached."""
    entries = [Entry(r, "failed", status, diagnostic) for r, status, diagnostic in failures]
    return report(reporting_mta=reporting_mta, sender=sender, entries=entries,
                  original=original_headers, arrival=arrival, now=now)  # fmt: skip


def headers_of(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    return raw if end < 0 else raw[: end + 2]
