"""What the inbound and submission handlers share: the EHLO extensions, recipient
bookkeeping on the envelope, the checks on the whole message (smuggling, header size) and the
trace header."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session, TLSSetupException

from enclave.core import clock
from enclave.core.mail.dsn import DsnRequest
from enclave.core.mail.headers import header_length
from enclave.core.mail.parse import bare_line_ending
from enclave.services import Services
from enclave.smtp import replies
from enclave.smtp.address import reverse_path_ok
from enclave.smtp.chunking import is_binary
from enclave.smtp.received import received_header

log = structlog.get_logger("enclave.smtp")


def declared_size(mail_options: list[str]) -> int:
    for option in mail_options:
        key, _, value = option.partition("=")
        if key.upper() == "SIZE" and value.isdigit():
            return int(value)
    return 0


def peer_address(session: Session) -> str | None:
    peer = session.peer
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return None


DSN_MAIL = "enclave_dsn_mail"  # (RET, ENVID) of MAIL, kept by the protocol (smtp.server)
DSN_RCPT = "enclave_dsn_rcpt"  # RCPT address -> RecipientDsn


def dsn_request(envelope: Envelope) -> DsnRequest | None:
    """The sender's DSN request (RFC 3461) for this transaction, if any was made."""
    ret, envid = getattr(envelope, DSN_MAIL, None) or (None, None)
    recipients = getattr(envelope, DSN_RCPT, None) or {}
    if ret is None and envid is None and not recipients:
        return None
    return DsnRequest(ret=ret, envid=envid, recipients=dict(recipients))


def smuggled(content: bytes, *, binary: bool) -> bool:
    """A bare CR or LF (SMTP smuggling); in a BINARYMIME body anything goes, so only the
    header counts there."""
    if binary:
        end = content.find(b"\r\n\r\n")
        content = content if end < 0 else content[: end + 4]
    return bare_line_ending(content)


def content_refusal(content: bytes, *, binary: bool, max_header: int) -> str | None:
    """The reply refusing the message as a whole, or None. Reads all of it: call it in a
    thread."""
    if smuggled(content, binary=binary):
        return replies.BARE_LINE_ENDING
    if header_length(content) > max_header:
        return replies.header_too_large(max_header)
    return None


def envelope_list(envelope: Envelope, name: str) -> list[Any]:
    """Per-transaction lists kept on the envelope (aiosmtpd makes a new one per MAIL)."""
    found: list[Any] | None = getattr(envelope, name, None)
    if found is None:
        found = []
        setattr(envelope, name, found)
    return found


class HandlerBase:
    """aiosmtpd hooks (``handle_<VERB>``) common to every listener; each returns a reply."""

    advertise_auth = False
    chunking = False  # BDAT, BODY=BINARYMIME (RFC 3030; smtp.chunking)
    dsn = False  # NOTIFY, ORCPT, RET, ENVID (RFC 3461; smtp.server, smtp.dsnparams)
    protocol = "ESMTP"

    def __init__(self, services: Services, hostname: str) -> None:
        self.services = services
        self.hostname = hostname
        self.max_recipients = services.settings.smtp.max_recipients
        self.max_header = services.settings.smtp.max_header_bytes

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:  # fmt: skip
        session.host_name = hostname
        kept = [r for r in responses[:-1] if self.advertise_auth or not r.startswith("250-AUTH")]
        extra = ["250-CHUNKING", "250-BINARYMIME"] if self.chunking else []
        extra += ["250-DSN"] if self.dsn else []
        return [*kept, "250-PIPELINING", "250-ENHANCEDSTATUSCODES", *extra, responses[-1]]

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        mail_options: list[str],
    ) -> str:  # fmt: skip
        if not reverse_path_ok(address, utf8=bool(envelope.smtp_utf8)):
            return replies.bad_sender(address)
        refusal = await self.check_sender(session, address)
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return replies.OK_SENDER

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:  # fmt: skip
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        if "@" not in address or not address.rpartition("@")[2]:
            return replies.bad_address(address)
        refusal = await self.route_recipient(envelope, address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.OK_RECIPIENT

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd's hook for anything a command raised. A TLS handshake the client gave up
        on (closed, sent plain text, refused our certificate) is an ordinary disconnect:
        aiosmtpd closes the connection itself and sends nothing."""
        if isinstance(error, TLSSetupException):
            cause = error.__cause__ or error
            log.info("TLS handshake abandoned", reason=str(cause) or type(cause).__name__)
            return replies.TLS_FAILED
        log.error("SMTP command failed", exc_info=error)
        return replies.INTERNAL_ERROR

    async def check_sender(self, session: Session, address: str) -> str | None:
        """A refusal reply for this MAIL FROM, or None (hook)."""
        return None

    async def route_recipient(self, envelope: Envelope, address: str) -> str | None:
        """Record where the recipient goes on the envelope, or return a refusal (hook)."""
        raise NotImplementedError

    async def refusal(self, session: Session, envelope: Envelope) -> str | None:
        """``content_refusal`` for this transaction, off the event loop."""
        refused = await asyncio.to_thread(
            content_refusal,
            envelope.original_content or b"",
            binary=is_binary(envelope),
            max_header=self.max_header,
        )
        if refused:
            log.warning("message refused", reply=refused, peer=peer_address(session))
        return refused

    def trace(self, session: Session, envelope: Envelope, queue_id: str) -> bytes:
        protocol = self.protocol + ("S" if session.ssl else "")
        if session.authenticated:
            protocol += "A"
        return received_header(
            helo=session.host_name,
            peer=peer_address(session),
            by=self.hostname,
            protocol=protocol,
            queue_id=queue_id,
            recipient=envelope.rcpt_tos[0] if len(envelope.rcpt_tos) == 1 else None,
            when=clock.now(),
        )
