"""The inbound (MX) handler: accepts mail for local recipients only, stores it durably, and
answers 250 only after every recipient's copy is committed."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from enclave.core import clock, context
from enclave.core.errors import QuotaExceeded
from enclave.core.mail.parse import bare_line_ending
from enclave.core.mail.routing import Recipient
from enclave.services import Services
from enclave.smtp import replies
from enclave.smtp.received import received_header

log = structlog.get_logger("enclave.smtp")


def declared_size(mail_options: list[str]) -> int:
    for option in mail_options:
        key, _, value = option.partition("=")
        if key.upper() == "SIZE" and value.isdigit():
            return int(value)
    return 0


class InboundHandler:
    """aiosmtpd hooks (``handle_<VERB>``); each returns the reply line."""

    def __init__(self, services: Services, hostname: str) -> None:
        self._services = services
        self._hostname = hostname
        self._max_recipients = services.settings.smtp.max_recipients

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:  # fmt: skip
        session.host_name = hostname
        # No AUTH on the MX port: authenticated mail goes to submission.
        kept = [r for r in responses[:-1] if not r.startswith("250-AUTH")]
        return [*kept, "250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        mail_options: list[str],
    ) -> str:  # fmt: skip
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        _recipients(envelope).clear()
        return replies.OK_SENDER

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:  # fmt: skip
        if len(envelope.rcpt_tos) >= self._max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        domain = address.rpartition("@")[2]
        if not domain or not await self._services.mail_router.is_local_domain(domain):
            return replies.relay_denied(address)
        recipient = await self._services.mail_router.resolve(address)
        if recipient is None:
            return replies.unknown_user(address)
        size = declared_size(envelope.mail_options)
        for user_id in recipient.user_ids:
            if not await self._services.mail_store.room_for(recipient.tenant_id, user_id, size):
                return replies.mailbox_full(address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        _recipients(envelope).append(recipient)
        return replies.OK_RECIPIENT

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if bare_line_ending(raw):  # SMTP smuggling: never let a bare LF/CR through
            log.warning("rejected bare line ending", peer=_peer(session))
            return replies.BARE_LINE_ENDING
        queue_id = uuid.uuid4().hex[:12].upper()
        recipients: list[Recipient] = _recipients(envelope)
        by_tenant: dict[str, list[str]] = defaultdict(list)
        for recipient in recipients:
            by_tenant[recipient.tenant_id].extend(recipient.user_ids)
        trace = received_header(
            helo=session.host_name,
            peer=_peer(session),
            by=self._hostname,
            protocol="ESMTPS" if session.ssl else "ESMTP",
            queue_id=queue_id,
            recipient=envelope.rcpt_tos[0] if len(envelope.rcpt_tos) == 1 else None,
            when=clock.now(),
        )
        context.source_address.set(_peer(session))
        try:
            for tenant_id, user_ids in by_tenant.items():
                await self._services.mail_store.deliver(tenant_id, user_ids, trace + raw)
        except QuotaExceeded:
            return replies.NO_MAILBOX_FULL
        except Exception:
            log.exception("delivery failed", queue_id=queue_id)
            return replies.TRY_AGAIN
        log.info("delivered", queue_id=queue_id, recipients=len(envelope.rcpt_tos),
                 size=len(raw))  # fmt: skip
        return replies.queued(queue_id)


def _recipients(envelope: Envelope) -> list[Any]:
    found: list[Any] | None = getattr(envelope, "enclave_recipients", None)
    if found is None:
        found = []
        envelope.enclave_recipients = found  # type: ignore[attr-defined]
    return found


def _peer(session: Session) -> str | None:
    peer = session.peer
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return None
