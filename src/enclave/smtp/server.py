"""Starting SMTP listeners on the process's event loop."""

from __future__ import annotations

import asyncio
import logging
import ssl
import warnings
from typing import Any

from aiosmtpd.smtp import SMTP

from enclave.core.mail.dsn import RecipientDsn
from enclave.services import Services
from enclave.smtp import replies
from enclave.smtp.chunking import ChunkingSMTP
from enclave.smtp.dsnparams import DsnSyntax, take_mail, take_rcpt
from enclave.smtp.handler import DSN_MAIL, DSN_RCPT, HandlerBase
from enclave.smtp.inbound import InboundHandler
from enclave.smtp.submission import SubmissionHandler

# aiosmtpd's own logger is chatty (and warns about its own deprecated attributes); our
# handlers log what matters through structlog.
logging.getLogger("mail.log").setLevel(logging.ERROR)


class EnclaveSMTP(ChunkingSMTP):
    implicit_tls = False

    async def smtp_STARTTLS(self, arg: str) -> None:
        if self._tls_protocol is not None or self.implicit_tls:  # no TLS inside TLS
            await self.push("554 5.5.1 TLS is already active")
            return
        await super().smtp_STARTTLS(arg)

    @property
    def dsn(self) -> bool:
        return bool(getattr(self.event_handler, "dsn", False))

    async def smtp_MAIL(self, arg: str | None) -> None:
        ret = envid = None
        if arg and self.dsn:
            try:
                arg, ret, envid = take_mail(arg)
            except DsnSyntax as bad:
                await self.push(str(bad))
                return
        fresh = self.envelope is not None and not self.envelope.mail_from
        await super().smtp_MAIL(arg)
        if fresh and self.envelope is not None and self.envelope.mail_from:
            setattr(self.envelope, DSN_MAIL, (ret, envid))

    async def smtp_RCPT(self, arg: str | None) -> None:
        request = None
        if arg and self.dsn:
            try:
                arg, request = take_rcpt(arg)
            except DsnSyntax as bad:
                await self.push(str(bad))
                return
        before = len(self.envelope.rcpt_tos) if self.envelope is not None else 0
        await super().smtp_RCPT(arg)
        envelope = self.envelope
        if request is not None and envelope is not None and len(envelope.rcpt_tos) > before:
            asked: dict[str, RecipientDsn] = getattr(envelope, DSN_RCPT, {})
            asked[envelope.rcpt_tos[-1]] = request
            setattr(envelope, DSN_RCPT, asked)

    async def smtp_AUTH(self, arg: str) -> None:
        # aiosmtpd answers a wrong number of arguments without an enhanced status code
        if not arg or len(arg.split()) > 2:
            await self.push(replies.AUTH_SYNTAX)
            return
        await super().smtp_AUTH(arg)


class ImplicitTlsSMTP(EnclaveSMTP):
    """Submission over TLS from the first byte (RFC 8314): the server's socket does the
    handshake before the greeting, so no STARTTLS is offered and AUTH is offered at once."""

    implicit_tls = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with warnings.catch_warnings():  # "AUTH without TLS": the transport itself is TLS
            warnings.simplefilter("ignore")
            super().__init__(*args, **kwargs, tls_context=None, auth_require_tls=False)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if transport.get_extra_info("sslcontext") is None:  # never served without TLS
            transport.close()
            return
        assert self.session is not None
        self.session.ssl = {
            name: transport.get_extra_info(name) for name in ("cipher", "peercert", "sslcontext")
        }


def smtp_hostname(services: Services) -> str:
    return services.settings.smtp.hostname or services.settings.deployment.hostnames[0]


async def _listen(
    services: Services,
    handler: HandlerBase,
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    *,
    submission: bool,
    implicit: bool = False,
) -> asyncio.Server:
    settings = services.settings.smtp
    loop = asyncio.get_running_loop()
    kind = ImplicitTlsSMTP if implicit else EnclaveSMTP

    def protocol() -> SMTP:
        options: dict[str, Any] = {} if implicit else {"tls_context": tls, "auth_require_tls": True}
        return kind(
            handler,
            data_size_limit=settings.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=handler.hostname,
            ident="Enclave ESMTP",
            require_starttls=submission and not implicit,  # no credentials in clear
            timeout=settings.timeout_seconds,
            auth_required=submission,
            loop=loop,
            **options,
        )

    return await loop.create_server(protocol, host=host, port=port, ssl=tls if implicit else None)


async def start_inbound(
    services: Services, host: str, port: int, tls: ssl.SSLContext | None
) -> asyncio.Server:
    """The MX listener: anyone may connect; only local recipients are accepted."""
    handler = InboundHandler(services, smtp_hostname(services))
    return await _listen(services, handler, host, port, tls, submission=False)


async def start_submission(
    services: Services, host: str, port: int, tls: ssl.SSLContext, *, implicit: bool = False
) -> asyncio.Server:
    """The submission listener: STARTTLS, then AUTH, then mail from the user's addresses;
    with ``implicit``, TLS from the first byte (RFC 8314 "submissions") and AUTH at once."""
    handler = SubmissionHandler(services, smtp_hostname(services))
    return await _listen(services, handler, host, port, tls, submission=True, implicit=implicit)
