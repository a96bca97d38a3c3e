"""The inbound (MX) handler: accepts mail for local recipients only, checks SPF, DKIM and
DMARC, stores it durably, and answers 250 only after every recipient's copy is committed."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from enclave.core import context
from enclave.core.errors import QuotaExceeded
from enclave.core.mail.routing import Recipient
from enclave.smtp import replies
from enclave.smtp.authentication import Verdict, authenticate, strip_forged
from enclave.smtp.handler import (
    HandlerBase,
    declared_size,
    envelope_list,
    peer_address,
)

log = structlog.get_logger("enclave.smtp")
RECIPIENTS = "enclave_recipients"


def examine(
    raw: bytes, *, trace: bytes, authserv_id: str, ip: str | None, mail_from: str,
    helo: str | None,
) -> tuple[bytes, Verdict]:  # fmt: skip
    """The message as stored (our trace and results above what was sent, forged results
    removed) and the verdict. Every step reads the whole message: call it in a thread."""
    raw = strip_forged(raw, authserv_id)
    verdict = authenticate(raw, authserv_id=authserv_id, ip=ip, mail_from=mail_from, helo=helo)
    return trace + verdict.header + raw, verdict


class InboundHandler(HandlerBase):
    chunking = True

    async def route_recipient(self, envelope: Envelope, address: str) -> str | None:
        size = declared_size(envelope.mail_options)
        route = await self.services.mail_router.route(address, size)
        if not route.local:
            return replies.relay_denied(address)
        if route.recipient is None:
            return replies.unknown_user(address)
        if route.full:
            return replies.mailbox_full(address)
        envelope_list(envelope, RECIPIENTS).append(route.recipient)
        return None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refused = await self.refusal(session, envelope)  # smuggling, header size
        if refused:
            return refused
        queue_id = uuid.uuid4().hex[:12].upper()
        message, verdict = await asyncio.to_thread(
            examine,
            envelope.original_content or b"",
            trace=self.trace(session, envelope, queue_id),
            authserv_id=self.hostname,
            ip=peer_address(session),
            mail_from=envelope.mail_from or "",
            helo=session.host_name,
        )
        action = self.services.settings.smtp.dmarc_reject_action
        if verdict.dmarc_rejects and action == "reject":
            log.info("rejected by DMARC", domain=verdict.from_domain, peer=peer_address(session))
            return replies.dmarc_rejected(verdict.from_domain)
        junk = verdict.dmarc_quarantines or verdict.dmarc_rejects
        recipients: list[Recipient] = envelope_list(envelope, RECIPIENTS)
        by_tenant: dict[str, list[str]] = defaultdict(list)
        for recipient in recipients:
            by_tenant[recipient.tenant_id].extend(recipient.user_ids)
        context.source_address.set(peer_address(session))
        # One reply answers for every recipient: with several tenants, check every quota
        # before storing anything, so a refusal never leaves a copy with some of them (one
        # tenant's delivery checks them all in its own transaction, all or nothing).
        store = self.services.mail_store
        for recipient in recipients if len(by_tenant) > 1 else ():
            for user_id in recipient.user_ids:
                if not await store.room_for(recipient.tenant_id, user_id, len(message)):
                    return replies.NO_MAILBOX_FULL
        try:
            for tenant_id, user_ids in by_tenant.items():
                await self.services.mail_store.deliver(
                    tenant_id, user_ids, message, special_use="\\Junk" if junk else None
                )
        except QuotaExceeded:
            return replies.NO_MAILBOX_FULL
        except Exception:
            log.exception("delivery failed", queue_id=queue_id)
            return replies.TRY_AGAIN
        log.info(
            "delivered", queue_id=queue_id, recipients=len(envelope.rcpt_tos), size=len(message)
        )
        return replies.queued(queue_id)
